"""The manifest's status vocabulary: what became of one input sample (docs/manifest.md).

One enum, used by every module that writes or reads a status. Its values are the strings the
Parquet manifests have always held, so parts written before the enum existed read back equal
(``Status.OK == "ok"``). The codec knows nothing of it: ``archive.outcomes`` turns the codec's
typed refusals into statuses.
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """A manifest row's ``status``; it prints and formats as its value (``ok``), on every Python."""

    OK = "ok"
    """Coded, decoded again (decode-verify), measured; the bitstream is in the output tar."""
    BAD_INPUT = "bad_input"
    """Not an image the imaging module accepts, no image member, or already a ``.s2c`` sample."""
    ENCODE_ERROR = "encode_error"
    VERIFY_FAILED = "verify_failed"
    """The bitstream did not decode again, or decoded to the wrong size."""
    SKIPPED_TOO_LARGE = "skipped_too_large"
    BAD_NAME = "bad_name"
    """Names ``decompress`` could not write back as files; members carried verbatim, not coded."""
    SHARD_PROBLEM = "shard_problem"
    """Not a sample: one problem the reader found in the input tar (truncated, unreadable)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

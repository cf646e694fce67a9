"""The status a manifest records for an image the codec did not code.

The codec knows images and bytes: it raises a typed ``NotCoded`` for an image it refuses or fails
on. The manifest knows statuses. ``s2c compress`` (a row per image) and ``s2c analyze`` (what
compress would record) both turn one into the other here, so they cannot disagree.
"""

from __future__ import annotations

from s2c_pipeline.archive.status import Status
from s2c_pipeline.codec.encode_and_verify import (
    EncodeFailed,
    ImageTooLarge,
    ImageUnreadable,
    NotCoded,
    VerifyFailed,
)

_STATUSES = (
    (ImageTooLarge, Status.SKIPPED_TOO_LARGE),
    (ImageUnreadable, Status.BAD_INPUT),
    (EncodeFailed, Status.ENCODE_ERROR),
    (VerifyFailed, Status.VERIFY_FAILED),
)


def status_of(failure: NotCoded) -> Status:
    """The manifest status of ``failure``."""
    for kind, status in _STATUSES:
        if isinstance(failure, kind):
            return status
    raise TypeError(f"no manifest status for {type(failure).__name__}: {failure}")

"""Writes an S2CFile as `.s2c` bytes (layout in `docs/bitstream.md`)."""

from __future__ import annotations

import zlib

from s2c_pipeline.bitstream.format import (
    CHUNK_ENTRY,
    COUNT,
    CRC,
    FIXED_HEADER,
    MAGIC,
    PREFIX,
    STRING_ENTRY,
    S2CFile,
)


def _token(text: str) -> bytes:
    raw = text.encode("ascii")
    return COUNT.pack(len(raw)) + raw


def _header(f: S2CFile) -> bytes:
    h = f.header
    chunks = f.chunks()
    return b"".join(
        [
            FIXED_HEADER.pack(h.quality_q8, h.width, h.height, h.colour, bytes.fromhex(h.weights_id)),
            _token(h.model_name),
            _token(h.source_mode),
            COUNT.pack(len(f.latent_strings)),
            *(STRING_ENTRY.pack(len(s), zlib.crc32(s)) for s in f.latent_strings),
            COUNT.pack(len(chunks)),
            *(CHUNK_ENTRY.pack(tag, len(data), zlib.crc32(data)) for tag, data in chunks),
        ]
    )


def encode_container(f: S2CFile) -> bytes:
    """The complete `.s2c` file for `f`, in the header's format version (FORMAT_VERSION unless the
    codec asked for another; versions 1 and 2 share one layout, and the version names the decoder
    path the latent strings need, so it must be the one the codec coded them with).

    The records validate themselves on construction, so invalid fields raise ValueError when the
    S2CHeader or S2CFile is built; this raises ValueError too if handed anything else. The output is
    deterministic: the same S2CFile always gives the same bytes.
    """
    if not isinstance(f, S2CFile):
        raise ValueError(f"encode_container needs an S2CFile, got {type(f).__name__}")
    header = _header(f)
    head = PREFIX.pack(MAGIC, f.header.format_version, len(header)) + header
    return b"".join([head, CRC.pack(zlib.crc32(head)), *f.latent_strings, *(d for _, d in f.chunks())])

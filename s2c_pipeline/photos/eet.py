"""Pull the full-size JPEG out of an Enlightenment ``.edj`` (Eet) archive.

The Eet layout (all big-endian uint32): a header ``(magic, n_entries, directory_size)`` at byte 0,
then ``n_entries`` directory records of ``(offset, size, data_size, name_offset, name_size, flags)``.
Edje stores background images as plain JPEG entries (flags 0, bytes starting ``FF D8 FF``), with
smaller renditions beside the full-size one; the largest is the original.
"""

from __future__ import annotations

import struct
from pathlib import Path

EET_MAGIC = 0x1EE70F42
_JPEG_SOI = b"\xff\xd8\xff"


class EetError(ValueError):
    """The file is not an Eet archive, or holds no stored JPEG image."""


def largest_jpeg(path: Path) -> bytes:
    """The bytes of the largest stored JPEG entry named ``edje/images/*`` in the archive at ``path``."""
    data = Path(path).read_bytes()
    if len(data) < 12:
        raise EetError(f"{path}: {len(data)} bytes, too short for an Eet header")
    magic, n_entries, _ = struct.unpack_from(">III", data, 0)
    if magic != EET_MAGIC:
        raise EetError(f"{path}: magic {magic:#010x} is not Eet ({EET_MAGIC:#010x})")
    best = b""
    for i in range(n_entries):
        offset, size, _, name_offset, name_size, flags = struct.unpack_from(">6I", data, 12 + 24 * i)
        name = data[name_offset : name_offset + name_size].rstrip(b"\0")
        entry = data[offset : offset + size]
        if name.startswith(b"edje/images/") and flags == 0 and entry.startswith(_JPEG_SOI):
            best = max(best, entry, key=len)
    if not best:
        raise EetError(f"{path}: no stored JPEG entry under edje/images/")
    return best

"""A streaming tar parser that reports damage instead of hiding it.

Python's ``tarfile`` ends iteration quietly when a header after the first one is truncated, and
accepts an archive that stops at a member boundary without its end marker: a truncated shard would
look complete. This parser reads the stream once, front to back, and raises :class:`TarDamage` with
the byte position for every such case. Header fields are decoded by ``tarfile.TarInfo.frombuf``
(checksums, base-256 sizes, ustar prefixes); pax and GNU long-name headers are applied here.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

BLOCK = 512
CHUNK = 2**20
MAX_EXTENDED_HEADER = 2**20  # pax / GNU long-name payloads above this are damage, not names
_EMPTY_BLOCK = bytes(BLOCK)
_EXTENDED_TYPES = {
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
}
# Types whose header carries no data blocks, whatever its size field says (as tarfile reads them).
_KINDS_WITHOUT_DATA = {
    tarfile.DIRTYPE: "directory",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "fifo",
}
_REGULAR = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE}
_COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


class TarDamage(Exception):
    """The archive cannot be parsed past this point; the message says where and why.

    Deliberately not an ``OSError``: damage is a property of the bytes, and retrying the read
    would give the same bytes.

    Attributes:
        member: name of the member whose data was cut off, when the damage is inside one.
    """

    def __init__(self, message: str, member: str | None = None) -> None:
        super().__init__(message)
        self.member = member


class ByteSource(Protocol):
    """A forward-only byte stream; ``read`` returns fewer bytes than asked only at the real end."""

    position: int

    def read(self, size: int) -> bytes: ...


@dataclass(frozen=True)
class TarEntry:
    """One archive member. ``data`` is None for non-files and for files over the size limit."""

    name: str
    kind: str  # "file", "directory", "symlink", "hardlink", "character device", "block device", "fifo", "type 'X'"
    offset: int
    size: int
    data: bytes | None
    linkname: str = ""


def iter_tar(source: ByteSource, *, max_member_bytes: int) -> Iterator[TarEntry]:
    """Yield the members of an uncompressed tar stream until its end-of-archive marker.

    Raises:
        TarDamage: truncation, a corrupt header, a compressed or non-tar stream.
    """
    extended: dict[str, str | int] = {}
    first_offset: int | None = None
    while True:
        header_offset = source.position
        block = source.read(BLOCK)
        if len(block) < BLOCK:
            raise TarDamage(_describe_end(header_offset, block, extended))
        if block == _EMPTY_BLOCK:
            if extended:
                raise TarDamage(f"corrupt archive: an extended header at byte {first_offset} has no member")
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise TarDamage(_describe_bad_header(header_offset, block, exc)) from None
        offset = header_offset if first_offset is None else first_offset
        if info.type in _EXTENDED_TYPES:
            first_offset = offset
            _read_extended(source, info, header_offset, extended)
            continue
        name = str(extended.get("path", info.name))
        size = int(extended.get("size", info.size))
        linkname = str(extended.get("linkpath", info.linkname))
        extended, first_offset = {}, None
        if info.type in _KINDS_WITHOUT_DATA:
            yield TarEntry(name, _KINDS_WITHOUT_DATA[info.type], offset, 0, None, linkname)
            continue
        kind = "file" if info.type in _REGULAR else f"type {info.type.decode('latin-1')!r}"
        wanted = kind == "file" and size <= max_member_bytes
        data = _read_data(source, size, name, keep=wanted, member=name)
        yield TarEntry(name, kind, offset, size, data, linkname)


def _read_data(
    source: ByteSource, size: int, name: str, *, keep: bool, member: str | None = None
) -> bytes | None:
    """Read (or skip, chunk by chunk) ``size`` bytes, then the padding to the next block."""
    parts: list[bytes] = []
    padding = -size % BLOCK
    done = 0
    while done < size + padding:
        want = min(CHUNK, size + padding - done)
        chunk = source.read(want)
        if keep and done < size:
            parts.append(chunk[: size - done])
        done += len(chunk)
        if len(chunk) < want:
            raise TarDamage(
                f"truncated at byte {source.position}: member {name} incomplete "
                f"({min(done, size)} of {size} bytes)",
                member,
            )
    return b"".join(parts) if keep else None


def _read_extended(source: ByteSource, info: tarfile.TarInfo, offset: int, extended: dict) -> None:
    if info.size > MAX_EXTENDED_HEADER:
        raise TarDamage(f"corrupt header at byte {offset}: a {info.size}-byte extended header")
    payload = _read_data(source, info.size, f"(extended header at byte {offset})", keep=True) or b""
    if info.type == tarfile.GNUTYPE_LONGNAME:
        extended["path"] = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    elif info.type == tarfile.GNUTYPE_LONGLINK:
        extended["linkpath"] = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    elif info.type != tarfile.XGLTYPE:  # global pax headers set defaults we have no use for
        extended.update(_pax_records(payload, offset))


def _pax_records(payload: bytes, offset: int) -> dict[str, str | int]:
    """``path``, ``linkpath`` and ``size`` from pax records ("LENGTH key=value\\n" each)."""
    records: dict[str, str | int] = {}
    position = 0
    while position < len(payload) and payload[position] != 0:
        length_text, space, _ = payload[position : position + 24].partition(b" ")
        if not space or not length_text.isdigit() or int(length_text) <= len(length_text) + 1:
            raise TarDamage(f"corrupt pax header at byte {offset}: bad record at position {position}")
        length = int(length_text)
        record = payload[position + len(length_text) + 1 : position + length]
        if len(record) != length - len(length_text) - 1 or not record.endswith(b"\n") or b"=" not in record:
            raise TarDamage(f"corrupt pax header at byte {offset}: bad record at position {position}")
        key, _, value = record[:-1].partition(b"=")
        text = value.decode("utf-8", "surrogateescape")
        if key in (b"path", b"linkpath"):
            records[key.decode()] = text
        elif key == b"size":
            if not text.isdigit():
                raise TarDamage(f"corrupt pax header at byte {offset}: size {text!r}")
            records["size"] = int(text)
        position += length
    return records


def _describe_end(offset: int, block: bytes, extended: dict) -> str:
    if offset == 0 and not block:
        return "empty file (0 bytes): not a tar archive"
    if block:
        return f"truncated at byte {offset + len(block)}: the archive ends inside a header"
    if extended:
        return f"truncated at byte {offset}: the archive ends after an extended header"
    return f"truncated at byte {offset}: the archive ends without its end-of-archive marker"


def _describe_bad_header(offset: int, block: bytes, exc: tarfile.HeaderError) -> str:
    if offset == 0:
        for magic, kind in _COMPRESSED_MAGIC.items():
            if block.startswith(magic):
                return f"not a plain tar: the shard is {kind}-compressed (only uncompressed .tar shards are read)"
        return f"not a tar archive: no valid header at byte 0 ({exc})"
    return f"corrupt header at byte {offset} ({exc}); nothing after it was read"

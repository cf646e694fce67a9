"""A streaming tar parser that reports damage instead of hiding it.

Python's ``tarfile`` ends iteration quietly when a header after the first one is truncated, and
accepts an archive that stops at a member boundary without its end marker: a truncated shard would
look complete. This parser reads the stream once, front to back, and raises :class:`TarDamage` with
the byte position for every such case. Header fields are decoded by ``tarfile.TarInfo.frombuf``
(checksums, base-256 sizes, ustar prefixes); pax and GNU long-name headers are applied here.

Like GNU tar's ``--ignore-zeros``, it reads past end-of-archive markers to the end of the stream, so
concatenated archives (``cat a.tar b.tar``) give all their members.
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


class TarDamage(Exception):
    """The archive cannot be parsed past this point; the message says where and why.

    Deliberately not an ``OSError``: damage is a property of the bytes, and retrying the read
    would give the same bytes.

    Attributes:
        member: name of the member whose data was cut off, when the damage is inside one.
        after_end_marker: the damage follows an end-of-archive marker with no member since, so
            the members before it formed a complete archive.
    """

    def __init__(self, message: str, member: str | None = None, *, after_end_marker: bool = False) -> None:
        super().__init__(message)
        self.member = member
        self.after_end_marker = after_end_marker


class NotATar(TarDamage):
    """The stream has no tar header at byte 0 (empty, shorter than a block, or something else).

    Attributes:
        head: the stream's first bytes (up to one block), to say what the file is instead; None
            when the source failed before giving any (a gzip stream corrupt from the start).
    """

    def __init__(self, message: str, head: bytes | None) -> None:
        super().__init__(message)
        self.head = head


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
    """Yield the members of an uncompressed tar stream, reading on past end-of-archive markers to
    the end of the stream (zero blocks are skipped, as ``tar --ignore-zeros`` does).

    Raises:
        NotATar: no tar header at byte 0.
        TarDamage: truncation, a corrupt header (also one after an end-of-archive marker).
    """
    extended: dict[str, str | int] = {}
    first_offset: int | None = None
    ended_at: int | None = None  # the latest end-of-archive marker, until a header follows it
    while True:
        header_offset = source.position
        block = _read_header_block(source, header_offset, ended_at)
        if len(block) < BLOCK:
            if ended_at is not None and block.count(0) == len(block):
                return
            if header_offset == 0:
                raise NotATar(_describe_end(header_offset, block, extended), block)
            raise TarDamage(
                _describe_end(header_offset, block, extended, ended_at), after_end_marker=ended_at is not None
            )
        if block == _EMPTY_BLOCK:
            if extended:
                raise TarDamage(f"corrupt archive: an extended header at byte {first_offset} has no member")
            ended_at = header_offset if ended_at is None else ended_at
            continue
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            if header_offset == 0:
                raise NotATar(f"no valid tar header at byte 0 ({exc})", block) from None
            raise TarDamage(
                _describe_bad_header(header_offset, exc, ended_at), after_end_marker=ended_at is not None
            ) from None
        ended_at = None
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


def _read_header_block(source: ByteSource, offset: int, ended_at: int | None) -> bytes:
    """One block. Damage the source reports (a gzip error) before the first block means nothing
    could be read (:class:`NotATar`); after an end-of-archive marker it is marked as such."""
    try:
        return source.read(BLOCK)
    except TarDamage as damage:
        if offset == 0:
            raise NotATar(str(damage), None) from None
        damage.after_end_marker = ended_at is not None
        raise


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


def _describe_end(offset: int, block: bytes, extended: dict, ended_at: int | None = None) -> str:
    if offset == 0 and not block:
        return "empty file (0 bytes): not a tar archive"
    if ended_at is not None:
        return (
            f"{len(block)} bytes at byte {offset}, after the end-of-archive marker at byte {ended_at}, "
            "are not a tar header; not read"
        )
    if block:
        return f"truncated at byte {offset + len(block)}: the archive ends inside a header"
    if extended:
        return f"truncated at byte {offset}: the archive ends after an extended header"
    return f"truncated at byte {offset}: the archive ends without its end-of-archive marker"


def _describe_bad_header(offset: int, exc: tarfile.HeaderError, ended_at: int | None) -> str:
    after = f" after the end-of-archive marker at byte {ended_at}" if ended_at is not None else ""
    return f"corrupt header at byte {offset}{after} ({exc}); nothing after it was read"

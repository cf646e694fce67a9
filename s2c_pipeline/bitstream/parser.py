"""Reads `.s2c` bytes back into an S2CFile, refusing anything `docs/bitstream.md` does not allow.

Every length is checked against the bytes present before it is used, and every refusal is a
BitstreamError whose message names the source and the cause; the checks run in the order of spec
section 6, so a damaged file gets the most specific message available.
"""

from __future__ import annotations

import logging
import struct
import zlib

from s2c_pipeline.bitstream.errors import BitstreamError
from s2c_pipeline.bitstream.format import (
    CHUNK_ENTRY,
    CHUNK_TAGS,
    COUNT,
    CRC,
    FIXED_HEADER,
    MAGIC,
    MAX_CHUNKS,
    MAX_HEADER_LENGTH,
    MAX_MODEL_NAME,
    MAX_SOURCE_MODE,
    MAX_STRINGS,
    MIN_HEADER_LENGTH,
    PREFIX,
    QUALITY_SCALE,
    READABLE_VERSIONS,
    STRING_ENTRY,
    S2CFile,
    S2CHeader,
    is_critical_tag,
    is_valid_tag,
)

logger = logging.getLogger(__name__)

_FIELD_BY_TAG = {tag: field for field, tag in CHUNK_TAGS.items()}


def _check_prefix(data: bytes, source: str) -> tuple[int, int]:
    """Checks magic, version and header length; returns (format_version, end of the header)."""
    size = len(data)
    if size == 0:
        raise BitstreamError(source, "empty file (0 bytes), not an .s2c file")
    if data[: len(MAGIC)] != MAGIC:
        if size < len(MAGIC) and MAGIC.startswith(data):
            raise BitstreamError(source, f"truncated: {size} bytes, the .s2c magic alone needs {len(MAGIC)}")
        found = data[: len(MAGIC)].hex(" ")
        if data[1:4] == MAGIC[1:4]:
            raise BitstreamError(
                source,
                f"not an .s2c file: damaged magic bytes ({found}, expected {MAGIC.hex(' ')}); "
                "was it copied in text mode (line endings or 7-bit transfer)?",
            )
        raise BitstreamError(source, f"not an .s2c file (starts with {found}, expected {MAGIC.hex(' ')})")
    if size < PREFIX.size:
        raise BitstreamError(source, f"truncated: {size} bytes, the fixed prefix needs {PREFIX.size}")
    _, version, header_length = PREFIX.unpack_from(data)
    if version > max(READABLE_VERSIONS):
        raise BitstreamError(
            source,
            f"format version {version} is newer than this s2c-pipeline reads (versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}); a newer s2c-pipeline is needed to decode it",
        )
    if version not in READABLE_VERSIONS:
        raise BitstreamError(source, f"invalid format version {version}; the file is corrupt")
    if not MIN_HEADER_LENGTH <= header_length <= MAX_HEADER_LENGTH:
        raise BitstreamError(
            source,
            f"header length {header_length} is outside {MIN_HEADER_LENGTH}..{MAX_HEADER_LENGTH} "
            f"allowed in format version {version}; the file is corrupt",
        )
    header_end = PREFIX.size + header_length
    if size < header_end + CRC.size:
        raise BitstreamError(
            source,
            f"truncated header: expected at least {header_end + CRC.size} bytes, file has {size}",
        )
    return version, header_end


class _HeaderReader:
    """Steps through the header, refusing any field that would run past its declared end."""

    def __init__(self, data: bytes, end: int, source: str) -> None:
        self.data, self.end, self.source, self.pos = data, end, source, PREFIX.size

    def fail(self, reason: str) -> BitstreamError:
        return BitstreamError(self.source, f"invalid header: {reason}")

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > self.end:
            raise self.fail(
                f"{what} needs {n} bytes at header offset {self.pos - PREFIX.size}, "
                f"past the end of the {self.end - PREFIX.size}-byte header"
            )
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def unpack(self, layout: struct.Struct, what: str) -> tuple:
        return layout.unpack(self.take(layout.size, what))

    def count(self, what: str, low: int, high: int) -> int:
        (value,) = self.unpack(COUNT, what)
        if not low <= value <= high:
            raise self.fail(f"{what} is {value}, must be {low}..{high}")
        return value

    def token(self, what: str, max_len: int) -> str:
        # latin-1 maps every byte to one character, so S2CHeader sees (and refuses) non-ASCII bytes
        return self.take(self.count(f"{what} length", 1, max_len), what).decode("latin-1")


def _parse_header(
    data: bytes, version: int, header_end: int, source: str
) -> tuple[S2CHeader, list[tuple[int, int]], list[tuple[bytes, int, int]]]:
    """The header record, the string table (length, crc) and the chunk table (tag, length, crc)."""
    reader = _HeaderReader(data, header_end, source)
    quality_q8, width, height, colour, weights_id = reader.unpack(FIXED_HEADER, "the fixed fields")
    model_name = reader.token("model_name", MAX_MODEL_NAME)
    source_mode = reader.token("source_mode", MAX_SOURCE_MODE)
    n_strings = reader.count("string_count", 1, MAX_STRINGS)
    strings = [reader.unpack(STRING_ENTRY, f"string table entry {i}") for i in range(n_strings)]
    n_chunks = reader.count("chunk_count", 0, MAX_CHUNKS)
    chunks = [reader.unpack(CHUNK_ENTRY, f"chunk table entry {i}") for i in range(n_chunks)]
    if reader.pos != header_end:
        raise reader.fail(f"{header_end - reader.pos} bytes left over after the chunk table")
    try:
        header = S2CHeader(
            model_name=model_name,
            weights_id=weights_id.hex(),
            quality=quality_q8 / QUALITY_SCALE,
            width=width,
            height=height,
            source_mode=source_mode,
            colour=colour,
            format_version=version,
        )
    except ValueError as e:
        raise reader.fail(str(e)) from None
    seen: set[bytes] = set()
    for i, (tag, length, _) in enumerate(chunks):
        if not is_valid_tag(tag):
            raise reader.fail(f"chunk {i} has tag {tag!r}, expected 4 ASCII letters")
        name = tag.decode("ascii")
        if tag in seen:
            raise reader.fail(f"chunk '{name}' appears more than once")
        seen.add(tag)
        if tag in _FIELD_BY_TAG and length == 0:
            raise reader.fail(f"chunk '{name}' is empty (a writer omits an absent chunk)")
        if tag not in _FIELD_BY_TAG and is_critical_tag(tag):
            raise BitstreamError(
                source,
                f"chunk '{name}' is critical and unknown to this s2c-pipeline; "
                "a newer s2c-pipeline is needed to decode this file",
            )
    return header, strings, chunks


def _read_payload(
    data: bytes,
    start: int,
    strings: list[tuple[int, int]],
    chunks: list[tuple[bytes, int, int]],
    source: str,
) -> list[bytes]:
    """Every string then every chunk, in table order, after checking sizes first and CRCs second."""
    size = len(data)
    entries = [(f"latent string {i} of {len(strings)}", n, crc) for i, (n, crc) in enumerate(strings)]
    entries += [(f"chunk '{tag.decode('ascii')}'", n, crc) for tag, n, crc in chunks]
    for label, length, _ in entries:
        if length > size:
            raise BitstreamError(
                source, f"{label} declares {length} bytes, more than the whole file ({size} bytes)"
            )
    expected = start + sum(length for _, length, _ in entries)
    if size < expected:
        raise BitstreamError(source, f"truncated payload: expected {expected} bytes in all, file has {size}")
    if size > expected:
        raise BitstreamError(
            source, f"{size - expected} trailing bytes after the payload (expected {expected} bytes in all)"
        )
    pieces = []
    for label, length, crc in entries:
        piece = data[start : start + length]
        start += length
        if zlib.crc32(piece) != crc:
            raise BitstreamError(
                source,
                f"{label}: CRC32 mismatch (stored {crc:08x}, computed {zlib.crc32(piece):08x}); it is corrupt",
            )
        pieces.append(piece)
    return pieces


def decode_container(data: bytes, *, source: str = "<bytes>") -> S2CFile:
    """Parses and verifies a complete `.s2c` file.

    source names the file in error messages (a path or a shard member). Raises BitstreamError, and
    nothing else, for any content that breaks the spec; raises TypeError only if `data` is not
    bytes-like. Unknown ancillary chunks are checked, then dropped (logged at INFO).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_container needs bytes, got {type(data).__name__}")
    data = bytes(data)
    version, header_end = _check_prefix(data, source)
    (stored,) = CRC.unpack_from(data, header_end)
    computed = zlib.crc32(memoryview(data)[:header_end])
    if stored != computed:
        raise BitstreamError(
            source,
            f"header CRC32 mismatch (stored {stored:08x}, computed {computed:08x}); the header is corrupt",
        )
    header, strings, chunks = _parse_header(data, version, header_end, source)
    pieces = _read_payload(data, header_end + CRC.size, strings, chunks, source)
    carried = {}
    for (tag, length, _), piece in zip(chunks, pieces[len(strings) :], strict=True):
        if tag in _FIELD_BY_TAG:
            carried[_FIELD_BY_TAG[tag]] = piece
        else:
            logger.info(
                "%s: ignoring unknown ancillary chunk %r (%d bytes)", source, tag.decode("ascii"), length
            )
    return S2CFile(header=header, latent_strings=tuple(pieces[: len(strings)]), **carried)

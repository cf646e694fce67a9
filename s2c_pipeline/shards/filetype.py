"""Say what a file is from its first bytes, so that a refused input shard is named for what it is.

Only used once a file has failed to parse as a tar: the signatures here never decide whether a
file is read (except ``GZIP_MAGIC``, which the reader uses to decompress), they make the message.
"""

from __future__ import annotations

GZIP_MAGIC = b"\x1f\x8b"

_PACK = "pack images into WebDataset tar shards first (see docs/pipeline.md)"
_RECOMPRESS = (
    "only plain and gzip-compressed tar shards are read: decompress it, or recompress it with gzip "
    "(see docs/pipeline.md)"
)
_LIST = "to pass a list of shard URLs, name the file *.txt or give it as @FILE (see docs/pipeline.md)"
_REWRITE = "nothing in it could be read: write the shard again (see docs/pipeline.md)"
_TAR_ONLY = "s2c compress reads WebDataset tar shards, plain or gzip-compressed (see docs/pipeline.md)"

# (offset, signature, what the file is, what to do about it)
_SIGNATURES: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"\xff\xd8\xff", "a JPEG image", _PACK),
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image", _PACK),
    (0, b"GIF87a", "a GIF image", _PACK),
    (0, b"GIF89a", "a GIF image", _PACK),
    (8, b"WEBP", "a WebP image", _PACK),
    (0, b"II*\x00", "a TIFF image", _PACK),
    (0, b"MM\x00*", "a TIFF image", _PACK),
    (4, b"ftypavif", "an AVIF image", _PACK),
    (4, b"ftypheic", "a HEIC image", _PACK),
    (0, b"\xff\x0a", "a JPEG XL image", _PACK),
    (0, b"\x00\x00\x00\x0cJXL \r\n\x87\n", "a JPEG XL image", _PACK),
    (0, b"PK\x03\x04", "a zip archive", _PACK),
    (0, b"PK\x05\x06", "a zip archive", _PACK),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7z archive", _PACK),
    (0, b"BZh", "bzip2-compressed", _RECOMPRESS),
    (0, b"\xfd7zXZ\x00", "xz-compressed", _RECOMPRESS),
    (0, b"\x28\xb5\x2f\xfd", "zstd-compressed", _RECOMPRESS),
    (0, b"\x04\x22\x4d\x18", "lz4-compressed", _RECOMPRESS),
    (0, b"\x89S2C\r\n\x1a\n", "an .s2c bitstream", _TAR_ONLY),
    (0, b"PAR1", "a Parquet file", _TAR_ONLY),
    (0, b"%PDF", "a PDF document", _TAR_ONLY),
)
_TEXT_BYTES = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}
_TAR_HEADER = 512
_USTAR, _USTAR_OFFSET = b"ustar", 257  # POSIX and GNU tar headers carry this magic


def not_a_tar_message(url: str, head: bytes | None, *, gzipped: bool, detail: str) -> str:
    """One line for a file that has no valid tar header at byte 0, e.g. "x/photo.jpg is a JPEG
    image, not a tar shard; pack images into WebDataset tar shards first (see docs/pipeline.md)".

    Args:
        head: the file's first bytes (up to one 512-byte block), decompressed when ``gzipped``;
            None when the gzip stream broke before giving a block.
        detail: why the first block was refused, used when the bytes are not recognised.
    """
    if head is None:
        return f"{url} is gzip-compressed, but no tar header could be decompressed from it ({detail}); {_REWRITE}"
    subject, advice = _identify(head, detail)
    if gzipped:
        subject = f"is gzip-compressed, and what it holds {subject}"
    return f"{url} {subject}; {advice}"


def _identify(head: bytes, detail: str) -> tuple[str, str]:
    """(what the file is, what to do)."""
    if not head:
        return "is empty (0 bytes), not a tar shard", _TAR_ONLY
    if head[_USTAR_OFFSET : _USTAR_OFFSET + len(_USTAR)] == _USTAR:  # first, as a name can be anything
        return f"is a tar shard that cannot be read: {detail}", _REWRITE
    for offset, signature, what, advice in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return f"is {what}, not a tar shard", advice
    if all(byte in _TEXT_BYTES for byte in head):
        return "is a text file, not a tar shard", _LIST
    if len(head) < _TAR_HEADER:
        return (
            f"is only {len(head)} byte{'s' if len(head) > 1 else ''} long (one tar header alone is {_TAR_HEADER}), not a tar shard",
            _TAR_ONLY,
        )
    return f"is not a tar shard: {detail}", _TAR_ONLY

"""Gzip-compressed shards (``.tar.gz``, ``.tgz``), decompressed as they are read.

WebDataset reads gzipped shards natively, so datasets ship them. Memory stays bounded: at most one
``CHUNK`` of compressed input and the bytes the caller asked for are held, however well the data
compresses (a 1 GiB member of zeros is skipped in 1 MiB steps, never held).
"""

from __future__ import annotations

import zlib

from s2c_pipeline.shards.filetype import GZIP_MAGIC
from s2c_pipeline.shards.tarstream import CHUNK, ByteSource, TarDamage

_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer (CRC-32, length) checked by zlib


class GzipSource:
    """A :class:`ByteSource` of the decompressed bytes of a gzip stream; ``position`` counts them.

    Concatenated gzip members (``cat a.tar.gz b.tar.gz``) read as one stream, and zero bytes after
    a member are skipped, as ``gzip -d`` does. Truncation and corrupt data raise
    :class:`TarDamage`: re-reading the same bytes would not help.
    """

    def __init__(self, raw: ByteSource) -> None:
        self._raw = raw
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._input = b""
        self.position = 0

    def read(self, size: int) -> bytes:
        parts: list[bytes] = []
        wanted = size
        while wanted:
            if self._inflater.eof and not self._next_member():
                break
            if not self._input:
                self._input = self._raw.read(CHUNK)
                if not self._input:
                    raise TarDamage(
                        f"truncated gzip stream: it ends at compressed byte {self._raw.position}, inside a "
                        f"gzip member (after decompressed byte {self.position})"
                    )
            start = self._raw.position - len(self._input)
            try:
                data = self._inflater.decompress(self._input, wanted)
            except zlib.error as exc:
                raise TarDamage(
                    f"corrupt gzip data after compressed byte {start} ({exc}); nothing after it was read"
                ) from None
            self._input = self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
            parts.append(data)
            wanted -= len(data)
            self.position += len(data)
        return b"".join(parts)

    def _next_member(self) -> bool:
        """After a member's trailer: skip zero padding; True when another gzip member follows."""
        while not self._input.strip(b"\0"):
            self._input = self._raw.read(CHUNK)
            if not self._input:
                return False
        self._input = self._input.lstrip(b"\0")
        start = self._raw.position - len(self._input)
        if len(self._input) < len(GZIP_MAGIC):
            self._input += self._raw.read(len(GZIP_MAGIC))
        if not self._input.startswith(GZIP_MAGIC):
            raise TarDamage(
                f"data after the gzip stream at compressed byte {start} is not gzip; nothing after it was read"
            )
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        return True

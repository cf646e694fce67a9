"""Write output shards: a plain tar built in memory, with each member's data offset returned.

The offsets go into the manifest so that one ``.s2c`` bitstream can be fetched with a single
byte-range request (``read_range``) instead of downloading its shard.
"""

from __future__ import annotations

import io
import tarfile

from s2c_pipeline.shards.names import UnsafeName, member_name_problem
from s2c_pipeline.shards.tarstream import BLOCK


class TarShardWriter:
    """An uncompressed, reproducible tar (pax format, mtime 0, owner 0, mode 0644), built in memory.

    Output shards hold bitstreams of tens of KB each, so a shard of a few thousand images is tens of
    MB; keeping it in memory lets the caller publish it with one atomic PUT.
    """

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._tar = tarfile.TarFile(
            fileobj=self._buffer, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8"
        )
        self._finished = False

    def add(self, name: str, data: bytes) -> int:
        """Append a member and return the byte offset of its DATA (not its header) in the tar.

        Raises:
            UnsafeName: a name no tar member may have (``shards.names.member_name_problem``:
                readers would refuse it).
            ValueError: a writer that is already finished.
        """
        if self._finished:
            raise ValueError("TarShardWriter.add after finish()")
        if (problem := member_name_problem(name)) is not None:
            raise UnsafeName(f"member name {name!r} {problem}: not a relative file path")
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o644
        info.uname = info.gname = ""
        self._tar.addfile(info, io.BytesIO(data))
        padded_size = -(-len(data) // BLOCK) * BLOCK
        return self._buffer.tell() - padded_size

    def finish(self) -> bytes:
        """Write the end-of-archive marker and return the whole tar."""
        if not self._finished:
            self._tar.close()
            self._finished = True
        return self._buffer.getvalue()

"""Read a whole WebDataset shard, or nothing: the pipeline's unit of work starts here.

Error policy, by kind:
- transient storage errors (resets, timeouts, 5xx, a stream that ends before the object does):
  the WHOLE shard is read again from byte 0, never resumed mid-stream (a resumed tar stream can lose
  or misalign samples silently); after ``attempts`` tries, :class:`ShardReadError`.
- permanent storage errors (not found, permission denied): :class:`ShardReadError` at once.
- not a tar at all (no tar header at byte 0: an image, a zip, an empty file, a gzip stream that
  breaks before its first block): :class:`ShardReadError` at once, not retried, naming what the
  file is, so that it never becomes a done shard.
- damage in the tar itself (truncation, corrupt header, corrupt gzip data): not retried, the bytes
  would not change. Samples before the damage are returned and the damage becomes a problem line.
- hostile or unusable members (names ``shards.names`` refuses, links, devices, no extension): skipped,
  each named in a problem line. Repeated keys: both samples kept, the repeat reported.

Gzip-compressed shards (recognised by their magic bytes, whatever the suffix) are decompressed as
they stream in; concatenated tars are read through every end-of-archive marker.
"""

from __future__ import annotations

import hashlib
import logging
import time

from fsspec.spec import AbstractBufferedFile

from s2c_pipeline.shards.filetype import GZIP_MAGIC, not_a_tar_message
from s2c_pipeline.shards.gzipstream import GzipSource
from s2c_pipeline.shards.names import member_name_problem
from s2c_pipeline.shards.records import DEFAULT_MAX_MEMBER_BYTES, Member, Sample, ShardContents, split_name
from s2c_pipeline.shards.storage import STORAGE_ERRORS, describe_error, filesystem, is_transient
from s2c_pipeline.shards.tarstream import CHUNK, NotATar, TarDamage, TarEntry, iter_tar

logger = logging.getLogger(__name__)


class ShardReadError(IOError):
    """A shard could not be read completely. One line naming the URL and the cause.

    Attributes:
        url: the shard.
        attempts: how many whole-shard reads were tried.
        retryable: True when the last cause was transient (a later run may succeed).
    """

    def __init__(self, message: str, url: str = "", attempts: int = 0, retryable: bool = False) -> None:
        super().__init__(message)
        self.url = url
        self.attempts = attempts
        self.retryable = retryable

    def __reduce__(self):  # keeps the attributes when Ray pickles the error across processes
        return (type(self), (str(self), self.url, self.attempts, self.retryable))


class StreamEndedEarly(ConnectionError):
    """The stream stopped before the object's known size: a transport failure, not a short tar."""


def read_shard(
    url: str,
    *,
    storage_options: dict | None = None,
    attempts: int = 3,
    backoff_s: float = 0.5,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
) -> ShardContents:
    """Read every member of the tar (plain or gzip-compressed) at ``url`` and group members into samples.

    Memory: the returned samples (the shard's member bytes) plus one storage read buffer (s3fs:
    ``default_block_size`` in ``storage_options``, 50 MiB unless set) and, for a gzip shard, one
    1 MiB chunk of compressed input. A member larger than
    ``max_member_bytes`` is skipped chunk by chunk and returned with ``data=b""`` and ``omitted``
    set, so its sample can still get a manifest row.

    Args:
        attempts: whole-shard reads to try on transient storage errors.
        backoff_s: sleep before retry ``n`` is ``backoff_s * 2 ** (n - 1)``.

    Raises:
        ShardReadError: the shard could not be read completely (see the module's error policy).
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    for attempt in range(1, attempts + 1):
        try:
            return _read_once(url, storage_options, max_member_bytes)
        except NotATar as refused:
            raise ShardReadError(str(refused), url, attempt, False) from None
        except STORAGE_ERRORS as exc:
            cause = describe_error(exc)
            if not is_transient(exc):
                raise ShardReadError(f"shard {url}: {cause} (not retried)", url, attempt, False) from exc
            if attempt == attempts:
                raise ShardReadError(
                    f"shard {url}: read failed {attempts} times, last: {cause}", url, attempt, True
                ) from exc
            delay = backoff_s * 2 ** (attempt - 1)
            logger.warning(
                "shard %s: attempt %d/%d failed (%s); rereading the whole shard in %.2f s",
                url,
                attempt,
                attempts,
                cause,
                delay,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


class _CountingReader:
    """Hashes and counts what comes from storage, and turns an early end of stream into an error.

    ``peek`` looks ahead without consuming; ``position`` counts the bytes consumed by ``read``.
    """

    def __init__(self, handle, size: int) -> None:
        self._handle = handle
        self._sha256 = hashlib.sha256()
        self._fetched = 0
        self._ahead = b""
        self.size = size
        self.position = 0

    def peek(self, size: int) -> bytes:
        """The next ``size`` bytes (fewer only at the end), left for ``read`` to return."""
        if len(self._ahead) < size:
            self._ahead += self._fetch(size - len(self._ahead))
        return self._ahead[:size]

    def read(self, size: int) -> bytes:
        data, self._ahead = self._ahead[:size], self._ahead[size:]
        if len(data) < size:
            data += self._fetch(size - len(data))
        self.position += len(data)
        return data

    def _fetch(self, size: int) -> bytes:
        parts: list[bytes] = []
        wanted = size
        while wanted:
            chunk = self._handle.read(wanted)
            if not chunk:
                break
            parts.append(chunk)
            wanted -= len(chunk)
        data = b"".join(parts)
        self._sha256.update(data)
        self._fetched += len(data)
        if wanted and self._fetched < self.size:
            raise StreamEndedEarly(f"stream ended at byte {self._fetched} of {self.size}")
        return data

    def drain(self) -> None:
        """Read to the end, for the hash and the size."""
        while self.read(CHUNK):
            pass

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


def _read_once(url: str, storage_options: dict | None, max_member_bytes: int) -> ShardContents:
    fs, path = filesystem(url, storage_options)
    with fs.open(path, "rb") as handle:
        size = handle.size if isinstance(handle, AbstractBufferedFile) else fs.size(path)
        raw = _CountingReader(handle, size)
        gzipped = raw.peek(len(GZIP_MAGIC)) == GZIP_MAGIC
        source = GzipSource(raw) if gzipped else raw
        grouper = _SampleGrouper(max_member_bytes)
        try:
            for entry in iter_tar(source, max_member_bytes=max_member_bytes):
                grouper.add(entry)
            grouper.finish()
        except NotATar as refused:
            message = not_a_tar_message(url, refused.head, gzipped=gzipped, detail=str(refused))
            raise NotATar(message, refused.head) from None
        except TarDamage as damage:
            grouper.damaged(damage)
        raw.drain()
    contents = ShardContents(
        url=url,
        samples=tuple(grouper.samples),
        problems=tuple(grouper.problems),
        size_bytes=raw.position,
        sha256=raw.hexdigest(),
    )
    if contents.problems:
        logger.warning(
            "shard %s: %d problem(s), first: %s", url, len(contents.problems), contents.problems[0]
        )
    return contents


class _SampleGrouper:
    """Applies the WebDataset grouping rule (adjacent members with one key form a sample)."""

    def __init__(self, max_member_bytes: int) -> None:
        self.max_member_bytes = max_member_bytes
        self.samples: list[Sample] = []
        self.problems: list[str] = []
        self._key: str | None = None
        self._members: list[Member] = []
        self._first_offset: dict[str, int] = {}

    def add(self, entry: TarEntry) -> None:
        if entry.kind == "directory":
            return  # tar's own bookkeeping, never part of a sample
        where = f"member {entry.name!r} at byte {entry.offset}"
        if entry.kind != "file":
            target = f" -> {entry.linkname!r}" if entry.linkname else ""
            self.problems.append(f"{where} is a {entry.kind}{target}; not read")
            return
        unsafe = member_name_problem(entry.name)
        if unsafe:
            self.problems.append(f"{where} {unsafe}; not read")
            return
        split = split_name(entry.name)
        if split is None:
            self.problems.append(f"{where} has no extension, so it belongs to no sample; not read")
            return
        key, extension = split
        if key != self._key or any(m.extension == extension for m in self._members):
            self._close()
            if key in self._first_offset:
                self.problems.append(
                    f"duplicate key {key!r}: {where} repeats the sample at byte {self._first_offset[key]}; "
                    "both kept"
                )
            self._first_offset.setdefault(key, entry.offset)
            self._key = key
        omitted = None
        if entry.data is None:
            omitted = (
                f"{entry.size / 2**20:.1f} MiB member over the {self.max_member_bytes / 2**20:.1f} MiB "
                "limit (--max-member-bytes); not read"
            )
        self._members.append(Member(entry.name, extension, entry.data or b"", entry.offset, omitted))

    def finish(self) -> None:
        self._close()

    def damaged(self, damage: TarDamage) -> None:
        """Record damage. The sample in progress is returned only when it had ended: the damage
        follows an end-of-archive marker, or the damaged member starts a new key. Otherwise it may
        be missing members and is dropped."""
        cut = split_name(damage.member) if damage.member else None
        if damage.after_end_marker or (cut is not None and cut[0] != self._key):
            self._close()
        message = str(damage)
        if self._members:
            names = ", ".join(m.name for m in self._members)
            message += f"; sample {self._key!r} (read so far: {names}) not returned, it may be incomplete"
        self.problems.append(message)
        self._members = []
        self._key = None

    def _close(self) -> None:
        if self._members:
            assert self._key is not None
            self.samples.append(Sample(self._key, tuple(self._members)))
        self._members = []


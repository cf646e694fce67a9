"""Storage access through fsspec: open a URL, publish an object atomically, read a byte range.

Every other module goes through :func:`filesystem`, so local paths, ``file://``, ``s3://`` and
``gs://`` behave the same and error messages name the URL. :func:`is_transient` is the one place that
decides which storage errors are worth retrying.
"""

from __future__ import annotations

import http.client
import logging
import os
import tempfile
import uuid
from pathlib import Path

import fsspec
import fsspec.core
import fsspec.utils
from fsspec import AbstractFileSystem
from fsspec.exceptions import FSTimeoutError

logger = logging.getLogger(__name__)

LOCAL_PROTOCOLS = frozenset({"file", "local"})
# Stores where a single PUT is atomic: readers see the old object or the whole new one, never a part.
OBJECT_STORE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "memory"})
# Errors that mean "the store said no", not "the network hiccuped": retrying them cannot help.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    FileExistsError,
)


def _optional_error_types() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(transient, permanent) error classes from the optional S3 stack, when it is installed."""
    transient: list[type[BaseException]] = []
    permanent: list[type[BaseException]] = []
    try:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )
    except ImportError:
        pass
    else:
        transient += [BotoCoreError, ClientError]
        permanent += [NoCredentialsError, PartialCredentialsError]
    try:
        from aiohttp import ClientError as AiohttpClientError
    except ImportError:
        pass
    else:
        transient.append(AiohttpClientError)
    return tuple(transient), tuple(permanent)


_OPTIONAL_TRANSIENT, _OPTIONAL_PERMANENT = _optional_error_types()
# Everything a storage read or write can raise. Programming errors (TypeError, KeyError...) are not
# here, so they propagate untouched instead of being retried or recorded.
STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    http.client.HTTPException,
    FSTimeoutError,
    *_OPTIONAL_TRANSIENT,
)


def is_transient(exc: BaseException) -> bool:
    """True for storage errors that a fresh attempt may not hit (resets, timeouts, 5xx, throttling)."""
    if isinstance(exc, PERMANENT_ERRORS + _OPTIONAL_PERMANENT):
        return False
    status = getattr(exc, "response", None)
    if isinstance(status, dict):  # botocore ClientError: retry 5xx, 408 and 429 only
        code = status.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code >= 500 or code in (408, 429)
    return isinstance(exc, STORAGE_ERRORS)


def describe_error(exc: BaseException) -> str:
    """One line: the exception class and its message (multi-line server messages are folded)."""
    message = " ".join(str(exc).split()) or repr(exc)
    return f"{type(exc).__name__}: {message}"


def is_local(fs: AbstractFileSystem) -> bool:
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    return bool(protocols & LOCAL_PROTOCOLS)


def filesystem(url: str, storage_options: dict | None = None) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for ``url`` and the path inside it.

    ``storage_options`` (credentials, endpoint) go to remote filesystems only, so one dict can serve
    a run that reads local shards and writes to S3.

    Raises:
        ImportError: the protocol needs a package that is not installed (gcsfs for ``gs://``).
        ValueError: fsspec does not know the protocol.
    """
    protocol = fsspec.utils.get_protocol(url)
    options = {} if protocol in LOCAL_PROTOCOLS else dict(storage_options or {})
    try:
        return fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        raise ImportError(f"{url}: {protocol}:// needs an extra package: {exc}") from exc
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise ValueError(f"{url}: unknown storage protocol {protocol!r}") from exc
        raise


def to_url(fs: AbstractFileSystem, path: str) -> str:
    """The canonical URL for a path of ``fs``: an absolute path for local files, ``proto://...`` else."""
    if is_local(fs):
        return os.path.abspath(path)
    return fs.unstrip_protocol(path)


def publish(data: bytes, url: str, *, storage_options: dict | None = None) -> None:
    """Write ``data`` to ``url`` so that no reader ever sees a partial object there.

    - Local files: written to a hidden temporary file in the same directory (``.NAME.*.tmp``),
      fsynced, then renamed over ``url`` with ``os.replace`` (atomic on POSIX).
    - Object stores (S3, GCS, Azure, memory): one direct PUT. A PUT (and a multipart upload, which
      s3fs uses above 100 MB) only becomes visible when complete, so a temporary key plus copy would
      double the traffic for no gain. An interrupted multipart upload leaves invisible parts: add an
      ``AbortIncompleteMultipartUpload`` lifecycle rule to the bucket.
    - Other filesystems (SFTP, HDFS...): a temporary name next to ``url``, then ``fs.mv``.
    """
    fs, path = filesystem(url, storage_options)
    if is_local(fs):
        _publish_local(data, Path(path))
        return
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    if protocols & OBJECT_STORE_PROTOCOLS:
        fs.pipe_file(path, data)
        return
    temporary = f"{path}.tmp-{uuid.uuid4().hex}"
    fs.pipe_file(temporary, data)
    try:
        fs.mv(temporary, path)
    except STORAGE_ERRORS:
        logger.warning("publish %s: move from %s failed; removing the temporary object", url, temporary)
        fs.rm_file(temporary)
        raise


def _publish_local(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # makes the rename itself durable
    finally:
        os.close(directory)


def read_range(url: str, offset: int, length: int, *, storage_options: dict | None = None) -> bytes:
    """``length`` bytes of ``url`` starting at byte ``offset`` (one ranged GET on object stores).

    Raises:
        ValueError: negative offset or length.
        OSError: the object is shorter than ``offset + length`` (an offset from another version of
            the shard, most likely).
    """
    if offset < 0 or length < 0:
        raise ValueError(f"{url}: offset and length must be >= 0, got offset={offset} length={length}")
    if length == 0:
        return b""
    fs, path = filesystem(url, storage_options)
    data = fs.cat_file(path, start=offset, end=offset + length)
    if len(data) != length:
        raise OSError(
            f"{url}: asked for {length} bytes at offset {offset} but the object ends after {len(data)} "
            "of them (is the offset from another version of this shard?)"
        )
    return data

"""Storage access through fsspec: open a URL, publish an object atomically, read a byte range.

Every other module goes through :func:`filesystem`, so local paths, ``file://``, ``s3://`` and
``gs://`` behave the same and error messages name the URL. :func:`is_transient` is the one place that
decides which storage errors are worth retrying.
"""

from __future__ import annotations

import errno
import http.client
import logging
import os
import tempfile
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

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


def _connect_error_types() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(botocore, aiohttp) error classes for "could not connect", when those packages are installed."""
    botocore: tuple[type[BaseException], ...] = ()
    aiohttp: tuple[type[BaseException], ...] = ()
    try:
        from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
    except ImportError:
        pass
    else:
        botocore = (EndpointConnectionError, ConnectTimeoutError)
    try:
        from aiohttp import ClientConnectorError
    except ImportError:
        pass
    else:
        aiohttp = (ClientConnectorError,)
    return botocore, aiohttp


_BOTOCORE_CONNECT_ERRORS, _AIOHTTP_CONNECT_ERRORS = _connect_error_types()
_CONNECT_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH})


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


def unreachable_endpoint_message(exc: BaseException) -> str | None:
    """One line for an error that means "nothing answered at the storage endpoint", or None.

    Looks through ``exc``, the errors it was raised from and the one botocore wraps, for botocore's
    connection errors and aiohttp's connector error: what s3fs raises for a stopped server, a wrong
    port or no route. The line names the endpoint (``scheme://host:port``, not the request path) and
    what to check. Any other error gives None: it is not about reaching the server.
    """
    endpoint = reason = None
    for error in _error_chain(exc):
        if endpoint is None and isinstance(error, _BOTOCORE_CONNECT_ERRORS):
            url = urllib.parse.urlsplit(str(error.kwargs.get("endpoint_url", "")))
            endpoint = f"{url.scheme}://{url.netloc}" if url.netloc else None
        if endpoint is None and isinstance(error, _AIOHTTP_CONNECT_ERRORS):
            endpoint = f"{error.host}:{error.port}"
        if reason is None and isinstance(error, OSError) and error.errno in _CONNECT_ERRNOS:
            reason = os.strerror(error.errno).lower()
        elif reason is None and isinstance(error, TimeoutError):
            reason = "timed out"
    if endpoint is None:
        return None
    return (
        f"cannot connect to the storage endpoint {endpoint} ({reason or type(exc).__name__}): check that "
        "the S3 server is running and listening there, that the URL and port are right (--s3-endpoint), "
        "and that this machine can reach it over the network (firewall, proxy)"
    )


def _error_chain(exc: BaseException) -> list[BaseException]:
    """``exc``, the errors it was raised from, and the one botocore keeps in ``kwargs["error"]``."""
    chain: list[BaseException] = []
    pending: list[object] = [exc]
    while pending:
        error = pending.pop(0)
        if not isinstance(error, BaseException) or any(error is seen for seen in chain):
            continue
        chain.append(error)
        kwargs = getattr(error, "kwargs", None)
        pending += [
            error.__cause__,
            error.__context__,
            kwargs.get("error") if isinstance(kwargs, dict) else None,
        ]
    return chain


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
      fsynced, then renamed over ``url`` with ``os.replace`` (atomic on POSIX). The file's mode
      follows the umask (``create_new_file``): 0644 under the usual 022.
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
    handle, temporary = create_new_file(path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # makes the rename itself durable
    finally:
        os.close(directory)


def create_new_file(directory: Path, *, prefix: str, suffix: str) -> tuple[int, Path]:
    """A new file under a random name in ``directory``, opened for writing: (descriptor, path).

    Unlike ``tempfile.mkstemp`` (always 0600) the file is created with mode 0666 and the kernel
    applies the umask and any default ACL of the folder, as ``cp`` and ``tar`` do: 0644 under the
    usual umask 022, so other users and services on a shared filesystem can read the archive, and
    0600 under umask 077 for whoever wants it private. Every local file the package writes through
    ``publish`` is created here.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(tempfile.TMP_MAX):
        path = directory / f"{prefix}{uuid.uuid4().hex[:12]}{suffix}"
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(
        errno.EEXIST, f"no free temporary name in {directory} after {tempfile.TMP_MAX} tries"
    )


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


def s3_storage_options(endpoint: str | None) -> dict[str, Any]:
    """fsspec options for an S3-compatible endpoint; credentials come from the environment only.

    Also sets the botocore checksum mode S3-compatible servers need (botocore >= 1.36 sends CRC32
    checksums they refuse) unless the user already chose one.
    """
    if endpoint is None:
        return {}
    os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    os.environ.setdefault("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
    return {"client_kwargs": {"endpoint_url": endpoint}}

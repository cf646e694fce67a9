"""Manifest parts as Parquet: rows to an Arrow table, atomic writes, and reading a run's parts back."""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from s2c_pipeline.manifest.schema import MANIFEST_SCHEMA, ManifestRow
from s2c_pipeline.shards.storage import filesystem, publish, to_url
from s2c_pipeline.shards.urls import expand_inputs

logger = logging.getLogger(__name__)

MANIFEST_DIR = "manifest"
_READ_BATCH = 256  # parts fetched concurrently per request batch (s3fs cat runs them in parallel)


def rows_to_table(rows: Sequence[ManifestRow]) -> pa.Table:
    """An Arrow table with exactly ``MANIFEST_SCHEMA`` (an empty one for no rows)."""
    names = MANIFEST_SCHEMA.names
    columns = {name: [getattr(row, name) for row in rows] for name in names}
    columns["carried_members"] = [list(value) for value in columns["carried_members"]]
    return pa.Table.from_pydict(columns, schema=MANIFEST_SCHEMA)


def manifest_bytes(rows: Sequence[ManifestRow]) -> bytes:
    """The Parquet file for ``rows`` (zstd, one row group: a part is one shard's rows)."""
    sink = pa.BufferOutputStream()
    pq.write_table(rows_to_table(rows), sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def write_manifest(rows: Sequence[ManifestRow], url: str, *, storage_options: dict | None = None) -> None:
    """Write one manifest part to ``url`` atomically (see ``shards.publish``)."""
    publish(manifest_bytes(rows), url, storage_options=storage_options)
    logger.debug("wrote %d manifest rows to %s", len(rows), url)


def read_manifests(
    prefix_or_urls: str | Sequence[str],
    *,
    storage_options: dict | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """All manifest rows of a run, as one table (parts in sorted URL order).

    Args:
        prefix_or_urls: an output prefix (its ``manifest/*.parquet`` parts are read; a prefix that
            is itself the manifest folder works too), one ``.parquet`` URL, or a list of URLs,
            globs or brace ranges as ``expand_inputs`` takes them.
        columns: read only these columns.

    Raises:
        FileNotFoundError: no manifest parts found.
    """
    if isinstance(prefix_or_urls, str) and not prefix_or_urls.endswith(".parquet"):
        urls = _parts_under(prefix_or_urls, storage_options)
    else:
        names = [prefix_or_urls] if isinstance(prefix_or_urls, str) else list(prefix_or_urls)
        urls = expand_inputs(names, storage_options=storage_options)
    selected = list(columns) if columns is not None else None
    by_filesystem: dict[int, tuple[AbstractFileSystem, list[str]]] = {}
    order: dict[str, int] = {}
    for index, url in enumerate(urls):
        fs, path = filesystem(url, storage_options)
        by_filesystem.setdefault(id(fs), (fs, []))[1].append(path)
        order[path] = index
    tables: dict[int, pa.Table] = {}
    for fs, paths in by_filesystem.values():
        for start in range(0, len(paths), _READ_BATCH):
            batch = paths[start : start + _READ_BATCH]
            contents = fs.cat(batch, on_error="raise")
            if not isinstance(contents, dict):  # fsspec returns bare bytes for a single path
                contents = {batch[0]: contents}
            for path in batch:
                # use_threads=False: parts are small, and Arrow's decode thread pool can abort the
                # interpreter at exit (apache/arrow#34314; seen here with pyarrow 26, ~3% of runs).
                reader = pa.BufferReader(contents[path])
                tables[order[path]] = pq.read_table(reader, columns=selected, use_threads=False)
    return pa.concat_tables([tables[index] for index in sorted(tables)], promote_options="default")


def _parts_under(prefix: str, storage_options: dict | None) -> list[str]:
    fs, path = filesystem(prefix, storage_options)
    root = path.rstrip("/")
    for folder in (posixpath.join(root, MANIFEST_DIR), root):
        parts = sorted(to_url(fs, p) for p in fs.glob(posixpath.join(folder, "*.parquet")))
        if parts:
            return parts
    raise FileNotFoundError(
        f"no manifest parts under {prefix.rstrip('/')}/{MANIFEST_DIR}/ (has the run committed any shard yet?)"
    )

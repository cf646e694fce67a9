"""Reading a run's manifest parts back: committed shards only, older parts with today's columns.

A part ``ROOT/manifest/ID.parquet`` belongs to a committed shard once its marker
``ROOT/_done/ID.json`` exists: the pipeline publishes the marker last, so a part without one is a
shard still being written or one a crash left behind, and may be overwritten by the next run.
Readers skip such parts unless they ask for them (``include_uncommitted``).

Columns are only ever added within a manifest version (docs/manifest.md): a part written before a
column existed reads back with that column null.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from s2c_pipeline.archive.layout import MANIFEST_DIR, MARKER_DIR
from s2c_pipeline.archive.manifest.schema import MANIFEST_SCHEMA
from s2c_pipeline.archive.marker import marker_ids_in
from s2c_pipeline.shards.storage import filesystem, to_url
from s2c_pipeline.shards.urls import expand_inputs

logger = logging.getLogger(__name__)

_READ_BATCH = 256  # parts fetched concurrently per request batch (s3fs cat runs them in parallel)


def read_manifests(
    prefix_or_urls: str | Sequence[str],
    *,
    storage_options: dict | None = None,
    columns: Sequence[str] | None = None,
    include_uncommitted: bool = False,
) -> pa.Table:
    """The manifest rows of a run's committed shards, as one table (parts in sorted URL order).

    Args:
        prefix_or_urls: an output prefix (its ``manifest/*.parquet`` parts are read; a prefix that
            is itself the manifest folder works too), one ``.parquet`` URL, or a list of URLs,
            globs or brace ranges as ``expand_inputs`` takes them.
        columns: read only these columns.
        include_uncommitted: also read parts whose shard has no commit marker (``_done/ID.json``
            next to the ``manifest/`` folder): shards in flight, or left by a crash.

    Every column of ``MANIFEST_SCHEMA`` (or of ``columns``) is in the result, null in the rows of
    parts written before it existed.

    Raises:
        FileNotFoundError: no manifest parts found, or none of them committed.
        ValueError: ``columns`` names a column that is not in the manifest.
    """
    if isinstance(prefix_or_urls, str) and not prefix_or_urls.endswith(".parquet"):
        urls = _parts_under(prefix_or_urls, storage_options)
    else:
        names = [prefix_or_urls] if isinstance(prefix_or_urls, str) else list(prefix_or_urls)
        urls = expand_inputs(names, storage_options=storage_options)
    if not include_uncommitted:
        urls = _committed(urls, storage_options)
    wanted = list(columns) if columns is not None else MANIFEST_SCHEMA.names
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
                part = _read_part(contents[path], columns)
                tables[order[path]] = add_missing_columns(part, wanted, source=urls[order[path]])
    return pa.concat_tables([tables[index] for index in sorted(tables)], promote_options="default")


def _read_part(data: bytes, columns: Sequence[str] | None) -> pa.Table:
    # use_threads=False: parts are small, and Arrow's decode thread pool can abort the
    # interpreter at exit (apache/arrow#34314; seen here with pyarrow 26, ~3% of runs).
    part = pq.ParquetFile(pa.BufferReader(data))
    present = set(part.schema_arrow.names)
    selected = None if columns is None else [c for c in columns if c in present]
    return part.read(columns=selected, use_threads=False)


def add_missing_columns(table: pa.Table, names: Sequence[str], *, source: str = "manifest") -> pa.Table:
    """``table`` with the columns ``names`` in that order, those it lacks added as nulls; other
    columns (from a newer writer) follow.

    Raises:
        ValueError: a missing name is not a manifest column (``source`` names the part).
    """
    columns, fields = [], []
    for name in names:
        if name in table.column_names:
            columns.append(table.column(name))
            fields.append(table.schema.field(name))
        elif name in MANIFEST_SCHEMA.names:
            field = MANIFEST_SCHEMA.field(name).with_nullable(True)
            columns.append(pa.nulls(table.num_rows, field.type))
            fields.append(field)
        else:
            raise ValueError(
                f"{source}: no column {name!r}; manifest columns are {', '.join(MANIFEST_SCHEMA.names)}"
            )
    for name in table.column_names:
        if name not in names:
            columns.append(table.column(name))
            fields.append(table.schema.field(name))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=table.schema.metadata))


def _committed(urls: Sequence[str], storage_options: dict | None) -> list[str]:
    """The parts of ``urls`` whose shard has a commit marker, in order.

    The marker of ``ROOT/FOLDER/ID.parquet`` is ``ROOT/_done/ID.json``; each marker folder is
    listed once.
    """
    markers: dict[tuple[int, str], set[str]] = {}
    committed: list[str] = []
    uncommitted: list[tuple[str, str]] = []
    for url in urls:
        fs, path = filesystem(url, storage_options)
        folder = posixpath.join(posixpath.dirname(posixpath.dirname(path)), MARKER_DIR)
        if (id(fs), folder) not in markers:
            markers[(id(fs), folder)] = marker_ids_in(fs, folder)
        shard_id = posixpath.basename(path).removesuffix(".parquet")
        if shard_id in markers[(id(fs), folder)]:
            committed.append(url)
        else:
            uncommitted.append((url, to_url(fs, folder)))
    if uncommitted and not committed:
        url, folder = uncommitted[0]
        raise FileNotFoundError(
            f"no committed manifest parts: {len(uncommitted)} part(s) ({url}...) have no commit marker in "
            f"{folder}/ (their shards are still being written, or a run stopped before committing them); "
            "pass include_uncommitted=True to read them anyway"
        )
    if uncommitted:
        logger.info(
            "left out %d manifest part(s) without a commit marker (%s...); include_uncommitted=True reads them",
            len(uncommitted),
            uncommitted[0][0],
        )
    return committed


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

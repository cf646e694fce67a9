"""Manifest parts as Parquet: rows to an Arrow table, and atomic writes (reading: ``reader``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from s2c_pipeline.archive.manifest.schema import MANIFEST_SCHEMA, ManifestRow
from s2c_pipeline.shards.storage import publish

logger = logging.getLogger(__name__)


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

"""Manifests out: one Parquet part per input shard, one row per input sample (docs/manifest.md)."""

from s2c_pipeline.manifest.parquet import manifest_bytes, rows_to_table, write_manifest
from s2c_pipeline.manifest.reader import MANIFEST_DIR, MARKER_DIR, add_missing_columns, read_manifests
from s2c_pipeline.manifest.schema import MANIFEST_SCHEMA, MANIFEST_VERSION, STATUSES, ManifestRow

__all__ = [
    "MANIFEST_DIR",
    "MANIFEST_SCHEMA",
    "MANIFEST_VERSION",
    "MARKER_DIR",
    "STATUSES",
    "ManifestRow",
    "add_missing_columns",
    "manifest_bytes",
    "read_manifests",
    "rows_to_table",
    "write_manifest",
]

"""The manifest: one Parquet part per input shard, one row per input sample (docs/manifest.md).

``read_manifests`` is the library's reader of any parts (a prefix, a folder, URLs); the pipeline
reads a prefix's committed state through ``archive.committed`` instead.
"""

from s2c_pipeline.archive.manifest.reader import add_missing_columns, read_manifests
from s2c_pipeline.archive.manifest.schema import MANIFEST_SCHEMA, MANIFEST_VERSION, ManifestRow
from s2c_pipeline.archive.manifest.writer import manifest_bytes, rows_to_table, write_manifest

__all__ = [
    "MANIFEST_SCHEMA",
    "MANIFEST_VERSION",
    "ManifestRow",
    "add_missing_columns",
    "manifest_bytes",
    "read_manifests",
    "rows_to_table",
    "write_manifest",
]

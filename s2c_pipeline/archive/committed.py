"""The committed state of an output prefix, read one way: markers first, then their shards' rows.

A shard is committed once its marker ``_done/ID.json`` exists (the commit writes it last). Resume,
decompress, verify, ``s2c report`` and ``s2c analyze`` read committed state through here, so they
agree on what a prefix holds: the rows of exactly the shards that have a marker, nothing else.
What is not committed (a shard in flight, or one a crash left) is named apart, by
``uncommitted_files`` and ``uncommitted_sources``, for the reports that list it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from s2c_pipeline.archive.layout import OutputLayout
from s2c_pipeline.archive.manifest import MANIFEST_SCHEMA, read_manifests
from s2c_pipeline.archive.marker import Marker, list_marker_ids, read_markers
from s2c_pipeline.shards import filesystem

SHARD_COLUMN = "_shard_id"
"""Added to the committed rows: the shard id (marker, output tar) each row belongs to."""


@dataclass(frozen=True)
class CommittedPrefix:
    """The markers of a prefix and the manifest rows of those shards, in shard-id order."""

    layout: OutputLayout
    markers: Mapping[str, Marker]
    rows: pd.DataFrame
    """One row per manifest row of a committed shard, with ``SHARD_COLUMN``."""


class CommittedRowsMismatch(ValueError):
    """The manifest parts hold another number of rows than their markers count."""


def read_committed(
    layout: OutputLayout,
    storage_options: Mapping[str, Any],
    *,
    columns: Sequence[str] | None = None,
    allow_empty: bool = False,
) -> CommittedPrefix:
    """The committed shards of ``layout``: markers, and their rows (only ``columns`` if given).

    Raises:
        FileNotFoundError: nothing is committed under the prefix (unless ``allow_empty``: then
            no markers and no rows).
        CommittedRowsMismatch: a part's rows differ from its marker's count (run ``s2c verify``).
    """
    markers = read_markers(layout, storage_options)
    wanted = list(columns) if columns is not None else MANIFEST_SCHEMA.names
    if not markers:
        if not allow_empty:
            raise FileNotFoundError(f"{layout.prefix}: no committed shards (no markers under _done/)")
        empty = MANIFEST_SCHEMA.empty_table().select(wanted).to_pandas()
        return CommittedPrefix(layout, {}, empty.assign(**{SHARD_COLUMN: pd.Series(dtype=str)}))
    ids = list(markers)  # sorted: read_manifests keeps the order of the URLs it is given
    table = read_manifests(
        [layout.manifest(i) for i in ids],
        storage_options=dict(storage_options),
        columns=columns,
        include_uncommitted=True,  # every one of these has a marker: no second listing of _done/
    )
    frame = table.to_pandas()
    counts = [markers[i].rows for i in ids]
    if sum(counts) != len(frame):
        raise CommittedRowsMismatch(
            f"{layout.prefix}: the manifests hold {len(frame)} rows but the markers count {sum(counts)}; "
            "run `s2c verify` to find the shard"
        )
    frame[SHARD_COLUMN] = [i for i, n in zip(ids, counts, strict=True) for _ in range(n)]
    return CommittedPrefix(layout, markers, frame)


def uncommitted_files(layout: OutputLayout, storage_options: Mapping[str, Any]) -> list[str]:
    """Output tars, then manifest parts, that have no marker: a run died before committing them,
    or is writing them now. A re-run of compress overwrites them."""
    committed = list_marker_ids(layout, storage_options)
    found = []
    for folder, suffix in ((layout.shards_dir, ".tar"), (layout.manifests_dir, ".parquet")):
        fs, path = filesystem(folder, dict(storage_options))
        try:
            names = [n.rsplit("/", 1)[-1] for n in fs.ls(path, detail=False)]
        except FileNotFoundError:
            continue
        found += [
            f"{folder}/{name}"
            for name in sorted(names)
            if name.endswith(suffix) and not name.startswith(".") and name[: -len(suffix)] not in committed
        ]
    return found


def uncommitted_sources(layout: OutputLayout, storage_options: Mapping[str, Any]) -> tuple[str, ...]:
    """Input shards named by manifest parts that have no marker, sorted."""
    parts = [url for url in uncommitted_files(layout, storage_options) if url.endswith(".parquet")]
    if not parts:
        return ()
    table = read_manifests(
        parts, storage_options=dict(storage_options), columns=["source_shard"], include_uncommitted=True
    )
    return tuple(sorted(set(table.column("source_shard").to_pylist())))

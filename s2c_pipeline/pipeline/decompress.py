"""``decompress``: chosen samples of a compressed prefix back to PNG files or WebDataset shards.

Rows are chosen from the committed manifests (all, a key list, a filter), grouped by output
shard, and decoded on actors, which check each image against the manifest's hash and write the
results. Problems are collected, not raised: the summary lists them and the CLI exits non-zero.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from s2c_pipeline.pipeline.config import DecodeConfig
from s2c_pipeline.pipeline.decode_job import FORMATS, PNG, DecodeTask
from s2c_pipeline.pipeline.decode_run import SHARD_COLUMN, committed_manifest, run_decode_tasks
from s2c_pipeline.pipeline.layout import OutputLayout
from s2c_pipeline.pipeline.output_paths import UnsafeName, check_relative_name
from s2c_pipeline.pipeline.output_reader import sample_rows
from s2c_pipeline.pipeline.selection import select_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecompressSummary:
    selected: int
    decoded: int
    restored: int
    written: int
    errors: tuple[str, ...]
    failed_shards: tuple[str, ...]
    wall_s: float

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failed_shards

    def format(self) -> str:
        lines = [
            f"selected {self.selected} sample(s): {self.decoded} decoded and hash-checked, "
            f"{self.restored} not coded (original restored), {self.written} file(s) written, "
            f"{len(self.errors)} error(s), {len(self.failed_shards)} failed shard(s), {self.wall_s:.1f} s"
        ]
        lines += [f"ERROR {e}" for e in self.errors[:50]]
        if len(self.errors) > 50:
            lines.append(f"... and {len(self.errors) - 50} more errors")
        lines += [f"FAILED {s}" for s in self.failed_shards]
        return "\n".join(lines)


def decompress(
    prefix: str,
    output: str,
    *,
    keys: Iterable[str] | None = None,
    where: str | None = None,
    format: str = PNG,
    config: DecodeConfig | None = None,
) -> DecompressSummary:
    """Decode the chosen samples of ``prefix`` into ``output`` (a folder or URL).

    Raises SelectionError for a bad filter or unknown keys, FileNotFoundError for a prefix with
    nothing committed, ValueError for an unknown format.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown output format {format!r}; choose one of {', '.join(FORMATS)}")
    config = config or DecodeConfig()
    started = time.monotonic()
    layout = OutputLayout.of(prefix)
    _, frame = committed_manifest(layout, config.storage_options)
    selected = select_rows(frame, keys=keys, where=where)
    errors = _refused(selected, format)
    refused_rows = {i for i, _ in errors}
    tasks = []
    for shard_id, rows in frame.groupby(SHARD_COLUMN, sort=True):
        refs = sample_rows(rows.to_dict("records"))
        positions = _positions(rows, selected.index, refused_rows)
        chosen = tuple(refs[p] for p in positions)
        if chosen:
            tasks.append(DecodeTask(shard_id, layout.shard(shard_id), chosen, len(refs), str(output), format))
    log.info(
        "decompress: %d sample(s) selected in %d shard(s) -> %s (%s)",
        len(selected),
        len(tasks),
        output,
        format,
    )
    results, report = run_decode_tasks(tasks, layout, config, role="decompress")
    all_errors = [e for _, e in errors] + [e for r in results for e in r.errors]
    return DecompressSummary(
        selected=len(selected),
        decoded=sum(r.decoded for r in results),
        restored=sum(r.restored for r in results),
        written=sum(r.written for r in results),
        errors=tuple(all_errors),
        failed_shards=tuple(f"{f.name}: {f.errors[-1]}" for f in report.failures),
        wall_s=time.monotonic() - started,
    )


def _refused(selected: pd.DataFrame, format: str) -> list[tuple[int, str]]:
    """(row index, message) for rows not decoded: unsafe keys, and repeated keys in PNG output."""
    refused = []
    for index, key in selected["key"].items():
        try:
            check_relative_name(key)
        except UnsafeName as exc:
            refused.append((index, f"sample key refused: {exc}; it would write outside the output folder"))
    if format == PNG:
        seen = Counter()
        for index, key in selected.loc[selected["status"] != "shard_problem", "key"].items():
            seen[key] += 1
            if seen[key] > 1:
                refused.append(
                    (
                        index,
                        f"key {key!r} repeats: PNG files would overwrite each other; "
                        "use --format webdataset or choose one with --where",
                    )
                )
    return refused


def _positions(rows: pd.DataFrame, selected_index: pd.Index, refused: set[int]) -> list[int]:
    """Positions (among the shard's sample rows) of its selected, not refused rows."""
    positions = []
    position = 0
    for index, status in rows["status"].items():
        if status == "shard_problem":
            continue
        if index in selected_index and index not in refused:
            positions.append(position)
        position += 1
    return positions

"""``decompress``: chosen samples of a compressed prefix back to PNG files or WebDataset shards.

Rows are chosen from the committed manifests (all, a key list, a filter), grouped by output
shard, and decoded on actors, which check each image against the manifest's hash and write the
results. Problems are collected, not raised: the summary lists them and the CLI exits non-zero.

Rows with status ``shard_problem`` record a problem with an input shard, not a sample: they are
counted and listed apart, and never make the run fail (compress already reported them).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from s2c_pipeline.archive.committed import SHARD_COLUMN, read_committed
from s2c_pipeline.archive.layout import OutputLayout
from s2c_pipeline.archive.pairing import sample_rows
from s2c_pipeline.archive.status import Status
from s2c_pipeline.pipeline.config import DecodeConfig
from s2c_pipeline.pipeline.decompress.decode_actors import run_decode_tasks
from s2c_pipeline.pipeline.decompress.decode_task import FORMATS, PNG, DecodeResult, DecodeTask
from s2c_pipeline.pipeline.decompress.selection import select_rows
from s2c_pipeline.shards.names import UnsafeName, check_relative_name

log = logging.getLogger(__name__)

_LISTED = 50
"""Errors and shard problems listed one per line in the summary; the rest are counted."""


@dataclass(frozen=True)
class DecompressSummary:
    selected: int
    """Sample rows chosen (shard-problem rows are not samples: see ``shard_problems``)."""
    decoded: int
    restored: int
    written: int
    errors: tuple[str, ...]
    failed_shards: tuple[str, ...]
    wall_s: float
    shard_problems: tuple[str, ...] = ()
    """Chosen rows that record a problem with an input shard: reported, not errors."""

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failed_shards

    def format(self) -> str:
        lines = [
            f"selected {self.selected} sample(s): {self.decoded} decoded and hash-checked, "
            f"{self.restored} not coded (original restored), {self.written} file(s) written, "
            f"{len(self.errors)} error(s), {len(self.failed_shards)} failed shard(s), {self.wall_s:.1f} s"
        ]
        if self.shard_problems:
            lines.append(
                f"{len(self.shard_problems)} manifest row(s) record problems with input shards; they are "
                "not samples and nothing was restored for them (repair the input shard and compress it again):"
            )
            lines += _listed("NOTE", self.shard_problems, "input shard problems")
        lines += _listed("ERROR", self.errors, "errors")
        lines += [f"FAILED {s}" for s in self.failed_shards]
        return "\n".join(lines)


def _listed(label: str, items: tuple[str, ...], what: str) -> list[str]:
    lines = [f"{label} {item}" for item in items[:_LISTED]]
    if len(items) > _LISTED:
        lines.append(f"... and {len(items) - _LISTED} more {what}")
    return lines


@dataclass(frozen=True)
class DecompressPlan:
    """What ``decompress`` will do, decided on the driver from the manifests alone."""

    tasks: tuple[DecodeTask, ...]
    selected: int
    """Sample rows chosen."""
    refused: tuple[str, ...]
    """Chosen sample rows that will not be decoded, one error line each."""
    shard_problems: tuple[str, ...]
    """Chosen shard-problem rows, one line each: ``source shard: problem``."""


def plan_decompress(
    frame: pd.DataFrame,
    layout: OutputLayout,
    output: str,
    *,
    keys: Iterable[str] | None = None,
    where: str | None = None,
    format: str = PNG,
) -> DecompressPlan:
    """Choose rows of ``frame`` (``archive.committed.read_committed``) and group them into decode tasks.

    Raises SelectionError for a bad filter or unknown keys, ValueError for an unknown format.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown output format {format!r}; choose one of {', '.join(FORMATS)}")
    chosen = select_rows(frame, keys=keys, where=where)
    is_problem = chosen["status"] == Status.SHARD_PROBLEM
    problems = chosen[is_problem]
    selected = chosen[~is_problem]
    errors = _refused(selected, format)
    refused_rows = {i for i, _ in errors}
    tasks = []
    for shard_id, rows in frame.groupby(SHARD_COLUMN, sort=True):
        refs = sample_rows(rows.to_dict("records"))
        positions = _positions(rows, selected.index, refused_rows)
        if positions:
            wanted = tuple(refs[p] for p in positions)
            tasks.append(DecodeTask(shard_id, layout.shard(shard_id), wanted, len(refs), str(output), format))
    return DecompressPlan(
        tasks=tuple(tasks),
        selected=len(selected),
        refused=tuple(e for _, e in errors),
        shard_problems=tuple(f"{r.source_shard}: {r.error}" for r in problems.itertuples()),
    )


def summarise(
    plan: DecompressPlan, results: Iterable[DecodeResult], failed_shards: Iterable[str], wall_s: float
) -> DecompressSummary:
    """The summary of a plan run: ``results`` of its tasks, ``failed_shards`` one line each."""
    results = list(results)
    return DecompressSummary(
        selected=plan.selected,
        decoded=sum(r.decoded for r in results),
        restored=sum(r.restored for r in results),
        written=sum(r.written for r in results),
        errors=(*plan.refused, *(e for r in results for e in r.errors)),
        failed_shards=tuple(failed_shards),
        wall_s=wall_s,
        shard_problems=plan.shard_problems,
    )


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
    config = config or DecodeConfig()
    started = time.monotonic()
    layout = OutputLayout.of(prefix)
    frame = read_committed(layout, config.storage_options).rows
    plan = plan_decompress(frame, layout, str(output), keys=keys, where=where, format=format)
    log.info(
        "decompress: %d sample(s) selected in %d shard(s) -> %s (%s)",
        plan.selected,
        len(plan.tasks),
        output,
        format,
    )
    results, report = run_decode_tasks(plan.tasks, layout, config, role="decompress")
    failed = [f"{f.name}: {f.errors[-1]}" for f in report.failures]
    return summarise(plan, results, failed, time.monotonic() - started)


def _refused(selected: pd.DataFrame, format: str) -> list[tuple[int, str]]:
    """(row index, message) for sample rows not decoded: keys that are not safe file names, and in
    PNG output, ``bad_name`` samples and keys that repeat (their files would replace each other).

    ``bad_name`` rows have verbatim names by design (compress found them unwritable); they are
    restored only into WebDataset tars.
    """
    refused = []
    bad_name = selected["status"] == Status.BAD_NAME
    for index, key in selected.loc[~bad_name, "key"].items():
        try:
            check_relative_name(key)
        except UnsafeName as exc:
            refused.append((index, f"sample key refused: {exc}; it would write outside the output folder"))
    if format != PNG:
        return refused
    for index, row in selected[bad_name].iterrows():
        refused.append((index, f"{row['source_shard']}: sample {row['key']!r} not restored: {row['error']}"))
    seen: Counter[str] = Counter()
    for index, key in selected.loc[~bad_name, "key"].items():
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
        if status == Status.SHARD_PROBLEM:
            continue
        if index in selected_index and index not in refused:
            positions.append(position)
        position += 1
    return positions

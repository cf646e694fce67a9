"""The one place a run reports progress: a tqdm bar, a periodic log line, the final table.

The bar counts shards (its total is known after listing); images are shown in its postfix. It is
drawn only on a terminal. Every ``log_interval_s`` a log line gives the rates, so that runs under a
job scheduler without a terminal still show progress in their logs.
"""

from __future__ import annotations

import logging
import math
import time

from tqdm import tqdm

from s2c_pipeline.archive.shard_stats import ShardStats
from s2c_pipeline.pipeline.compress.results import RunSummary, ShardResult

log = logging.getLogger(__name__)


class CompressProgress:
    def __init__(self, total_shards: int, *, enabled: bool = True, log_interval_s: float = 10.0) -> None:
        self.stats = ShardStats()
        self._start = time.monotonic()
        self._last_log = self._start
        self._interval = log_interval_s
        self._total = total_shards
        self._done = 0
        self._bar = tqdm(  # disable=None: drawn only on a terminal, never into a log file
            total=total_shards, unit="shard", desc="compress", disable=None if enabled else True, leave=False
        )

    def add(self, result: ShardResult) -> None:
        self.stats = self.stats.merge(result.stats)
        self._done += 1
        s = self.stats
        self._bar.set_postfix(
            images=s.samples, failed=s.images_failed, bpp=f"{s.mean_bpp:.3f}", refresh=False
        )
        self._bar.update(1)

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._last_log >= self._interval:
            self._last_log = now
            log.info("%s", self.line())

    def line(self) -> str:
        s, elapsed = self.stats, max(time.monotonic() - self._start, 1e-9)
        return (
            f"{self._done}/{self._total} shards, {s.samples} images ({s.images_ok} ok, {s.images_failed} failed), "
            f"{s.samples / elapsed:.1f} images/s, {s.source_bytes / elapsed / 1e6:.2f} MB/s in, "
            f"mean {_fmt(s.mean_bpp, '.3f')} bpp, PSNR {_fmt(s.mean_psnr, '.2f')} dB"
        )

    def close(self) -> None:
        self._bar.close()


def _fmt(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def format_summary(summary: RunSummary) -> str:
    """A two-column table for the terminal; failed shards listed under it with their last error."""
    s = summary.stats
    if summary.dry_run:
        return f"dry run: {len(summary.todo)} shard(s) to do, {summary.shards_skipped} already done"
    rows = [
        ("output", summary.output_prefix),
        (
            "shards",
            f"{summary.shards_done} done, {summary.shards_skipped} skipped, {summary.shards_failed} failed "
            f"(of {summary.shards_total})",
        ),
        ("images", f"{s.images_ok} ok, {s.images_failed} not coded (of {s.samples} samples)"),
        ("statuses", ", ".join(f"{k} {v}" for k, v in sorted(s.statuses.items())) or "-"),
        ("input bytes", _mb(s.source_bytes)),
        ("output bytes", _mb(s.output_bytes)),
        (
            "ratio",
            f"{_fmt(s.ratio, '.2f')}x over the samples coded (images alone: {_fmt(s.image_bytes_ok / s.s2c_bytes if s.s2c_bytes else math.nan, '.2f')}x)",
        ),
        ("mean bpp", _fmt(s.mean_bpp, ".4f")),
        ("mean PSNR", f"{_fmt(s.mean_psnr, '.2f')} dB"),
        (
            "wall time",
            f"{summary.wall_s:.1f} s ({s.samples / summary.wall_s if summary.wall_s else 0:.2f} images/s)",
        ),
        (
            "actors",
            f"ready after {summary.actor_start_s:.1f} s, {summary.actor_deaths} died, "
            f"{summary.retries} shard retries, {len(summary.nodes)} node(s)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    for failure in summary.failed:
        lines.append(f"FAILED {failure.name}: {failure.errors[-1] if failure.errors else 'unknown error'}")
    if any(failure.retryable for failure in summary.failed):
        lines.append("re-run the same command to retry the failed shards")
    return "\n".join(lines)

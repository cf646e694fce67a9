"""``s2c report``: what a finished or partial ``s2c compress`` prefix holds, from manifests and markers.

Only committed shards count, read as every other reader reads them (``archive.committed``): a
shard's manifest part is trusted once its marker ``_done/<id>.json`` exists (the pipeline writes
the marker last), so parts of a shard still in flight, or left by a crash, are listed but left out
of every total. Timings come from the markers (read and encode
seconds per shard, commit time), sizes of whole shards from the markers too, and per-image numbers
from the manifest rows.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from s2c_pipeline.analysis.stats import Summary, summarize
from s2c_pipeline.archive.committed import read_committed, uncommitted_sources
from s2c_pipeline.archive.layout import OutputLayout
from s2c_pipeline.archive.marker import Marker
from s2c_pipeline.archive.run_record import read_run_record
from s2c_pipeline.archive.status import Status

log = logging.getLogger(__name__)

COLUMNS = ("key", "source_shard", "source_member", "source_bytes", "s2c_bytes", "width", "height", "quality", "bpp",
           "psnr", "ms_ssim", "status", "error", "encode_ms", "decode_ms")
_NUMBER = re.compile(r"\d+(\.\d+)?")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


@dataclass(frozen=True)
class ShardTiming:
    shard_id: str
    source_url: str
    samples: int
    read_s: float
    encode_s: float
    device: str
    node_id: str
    committed_at: datetime | None
    source_bytes: int = 0
    output_bytes: int = 0
    """The output tar's bytes (from the marker)."""

    @property
    def seconds(self) -> float:
        return self.read_s + self.encode_s


@dataclass(frozen=True)
class FailureGroup:
    """Rows with one status and one error once numbers and quoted names are blanked out."""

    status: str
    error: str
    count: int
    example: str
    """``shard:member`` of the first such row, to look at."""


@dataclass(frozen=True)
class PrefixSummary:
    prefix: str
    identity: Mapping[str, Any]
    """model, weights_id, quality or target... from run.json (empty when it is missing)."""
    run_starts: tuple[datetime, ...]
    shards: tuple[ShardTiming, ...]
    """Committed shards, in commit order."""
    uncommitted_sources: tuple[str, ...]
    """Source shards with manifest rows but no marker: in flight or crashed, left out of totals."""
    statuses: Mapping[str, int]
    source_shard_bytes: int
    output_shard_bytes: int
    manifest_bytes: int
    image_bytes_ok: int
    s2c_bytes_ok: int
    quality: Summary
    """Quality levels of the coded images (one value, unless the run coded to a target PSNR or bpp)."""
    bpp: Summary
    psnr: Summary
    ms_ssim: Summary
    encode_ms: Summary
    decode_ms: Summary
    values: Mapping[str, np.ndarray]
    """Per ok row: bpp, psnr, ms_ssim (for the histograms)."""
    failures: tuple[FailureGroup, ...]

    @property
    def samples(self) -> int:
        return sum(self.statuses.values())

    @property
    def saved_bytes(self) -> int:
        return self.source_shard_bytes - self.output_shard_bytes


def summarize_prefix(prefix: str, *, storage_options: Mapping[str, Any] | None = None) -> PrefixSummary:
    """Read the manifests, markers and run.json under ``prefix`` and sum them up.

    Raises:
        FileNotFoundError: no manifest parts under the prefix, committed or not.
    """
    options = dict(storage_options or {})
    layout = OutputLayout.of(prefix)
    committed = read_committed(layout, options, columns=COLUMNS, allow_empty=True)
    uncommitted = uncommitted_sources(layout, options)
    if not committed.markers and not uncommitted:
        raise FileNotFoundError(f"no manifest parts under {layout.manifests_dir}/ (has the run committed any shard yet?)")
    markers = committed.markers
    run = read_run_record(layout, options)
    frame = committed.rows
    ok = frame[frame["status"] == Status.OK]
    values = {name: ok[name].to_numpy(dtype=float) for name in ("bpp", "psnr", "ms_ssim")}
    shards = sorted((_timing(shard_id, m) for shard_id, m in markers.items()),
                    key=lambda t: (t.committed_at is None, t.committed_at or datetime.min, t.shard_id))
    return PrefixSummary(
        prefix=layout.prefix,
        identity=dict(run.identity) if run else {},
        run_starts=run.run_starts if run else (),
        shards=tuple(shards),
        uncommitted_sources=uncommitted,
        statuses=frame["status"].value_counts().sort_index().to_dict(),
        source_shard_bytes=sum(t.source_bytes for t in shards),
        output_shard_bytes=sum(t.output_bytes for t in shards),
        manifest_bytes=sum(m.manifest_bytes for m in markers.values()),
        image_bytes_ok=int(ok["source_bytes"].sum()),
        s2c_bytes_ok=int(ok["s2c_bytes"].sum()),
        quality=summarize(ok["quality"].to_numpy(dtype=float)),
        bpp=summarize(values["bpp"]),
        psnr=summarize(values["psnr"]),
        ms_ssim=summarize(values["ms_ssim"]),
        encode_ms=summarize(ok["encode_ms"].to_numpy(dtype=float)),
        decode_ms=summarize(ok["decode_ms"].to_numpy(dtype=float)),
        values=values,
        failures=_failure_groups(frame[frame["status"] != Status.OK]),
    )


def throughput(summary: PrefixSummary, bins: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(seconds since start, cumulative samples) per commit, and (bin start, samples/s) per time bin.

    The start is the first run's start from run.json, or the first commit minus its own duration.
    """
    timed = [s for s in summary.shards if s.committed_at is not None]
    if not timed:
        return (np.array([]),) * 4
    if summary.run_starts:
        start = min(summary.run_starts)
    else:
        start = timed[0].committed_at - timedelta(seconds=timed[0].seconds if math.isfinite(timed[0].seconds) else 0)
    elapsed = np.array([(s.committed_at - start).total_seconds() for s in timed])
    cumulative = np.cumsum([s.samples for s in timed])
    span = max(float(elapsed[-1]), 1.0)
    edges = np.linspace(0, span, min(bins, len(timed)) + 1)
    counts, _ = np.histogram(elapsed, bins=edges, weights=[s.samples for s in timed])
    return elapsed, cumulative, edges[:-1], counts / np.diff(edges)


def _timing(shard_id: str, marker: Marker) -> ShardTiming:
    return ShardTiming(
        shard_id=shard_id,
        source_url=marker.source_url,
        samples=marker.stats.samples,
        read_s=marker.read_s,
        encode_s=marker.encode_s,
        device=marker.device,
        node_id=marker.node_id,
        committed_at=marker.committed_at,
        source_bytes=marker.stats.source_bytes,
        output_bytes=marker.tar_bytes,
    )


def _failure_groups(failed) -> tuple[FailureGroup, ...]:
    groups: dict[tuple[str, str], list] = {}
    for row in failed.itertuples(index=False):
        pattern = _NUMBER.sub("N", _QUOTED.sub("'…'", str(row.error or "")))
        groups.setdefault((row.status, pattern), []).append(row)
    out = [
        FailureGroup(status, error, len(rows), f"{rows[0].source_shard}:{rows[0].source_member or rows[0].key}")
        for (status, error), rows in groups.items()
    ]
    return tuple(sorted(out, key=lambda g: (-g.count, g.status, g.error)))

"""The records that cross module and process boundaries: a shard's result and the run summary.

They travel from actors to the driver through Ray, so they stay small (counts and sums, no
images: ``archive.shard_stats``) and pickle as plain frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass

from s2c_pipeline.archive.shard_stats import ShardStats
from s2c_pipeline.pipeline.execution.pool_records import TaskFailure


@dataclass(frozen=True)
class ShardResult:
    """What an actor returns for one input shard."""

    shard_id: str
    source_url: str
    committed: bool
    """False when the shard's marker already existed and the actor did nothing (a race on resume)."""
    stats: ShardStats
    node_id: str = ""
    device: str = ""
    attempt: int = 1
    seconds: float = 0.0


@dataclass(frozen=True)
class RunSummary:
    """The end of a compress run: what the CLI prints and what decides the exit code."""

    output_prefix: str
    shards_total: int
    shards_done: int
    """Committed by this run."""
    shards_skipped: int
    """Already committed by an earlier run."""
    failed: tuple[TaskFailure, ...]
    stats: ShardStats
    wall_s: float
    actor_deaths: int = 0
    retries: int = 0
    nodes: tuple[str, ...] = ()
    actor_start_s: float = 0.0
    """Time until the first actors had loaded their model (part of ``wall_s``)."""
    dry_run: bool = False
    todo: tuple[str, ...] = ()
    """Shard ids that were (or, for a dry run, would be) processed."""

    @property
    def shards_failed(self) -> int:
        return len(self.failed)

    @property
    def ok(self) -> bool:
        return not self.failed

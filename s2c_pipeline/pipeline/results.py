"""The records that cross module and process boundaries: a shard's result and the run summary.

They travel from actors to the driver through Ray, so they stay small (counts and sums, no
images) and pickle as plain frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from s2c_pipeline.pipeline.pool_records import TaskFailure


@dataclass(frozen=True)
class ShardStats:
    """Sums over one shard's samples; ``merge`` adds them up for the run."""

    samples: int = 0
    images_ok: int = 0
    images_failed: int = 0
    statuses: Mapping[str, int] = field(default_factory=dict)
    source_bytes: int = 0
    """Bytes of the input shard file."""
    output_bytes: int = 0
    """Bytes of the output shard file."""
    image_bytes_ok: int = 0
    """Source bytes of the images coded ok (their ratio to s2c_bytes is the codec's saving)."""
    s2c_bytes: int = 0
    coded_input_bytes: int = 0
    """Member bytes of the samples coded ok (image and other members), as read from the input."""
    coded_output_bytes: int = 0
    """Member bytes the same samples take in the output (.s2c plus the members carried)."""
    pixels_ok: int = 0
    psnr_sum: float = 0.0
    """Sum of finite PSNRs of ok images (identical reconstructions have infinite PSNR)."""
    psnr_count: int = 0
    encode_ms: float = 0.0
    decode_ms: float = 0.0

    def merge(self, other: ShardStats) -> ShardStats:
        statuses = dict(self.statuses)
        for k, v in other.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
        summed = {
            name: getattr(self, name) + getattr(other, name)
            for name in self.__dataclass_fields__
            if name != "statuses"
        }
        return ShardStats(statuses=statuses, **summed)

    @property
    def mean_bpp(self) -> float:
        """Pixel-weighted: total s2c bits over total pixels of ok images (what storage sees)."""
        return self.s2c_bytes * 8 / self.pixels_ok if self.pixels_ok else float("nan")

    @property
    def ratio(self) -> float:
        """Input over output bytes of the samples coded ok, so samples not coded (carried as they
        are) and shards not read do not dilute it; tar headers are left out on both sides."""
        return self.coded_input_bytes / self.coded_output_bytes if self.coded_output_bytes else float("nan")

    @property
    def mean_psnr(self) -> float:
        return self.psnr_sum / self.psnr_count if self.psnr_count else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["statuses"] = dict(self.statuses)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ShardStats:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


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

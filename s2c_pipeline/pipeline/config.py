"""The settings of one pipeline run, and which of them decide the bytes written.

Only the *identity* fields (model, weights, quality, layout version) change what a shard's output
looks like, so only they are compared on resume; the rest (actors, attempts, pixel limit) are
execution settings a re-run may change. Storage options can hold credentials: they are excluded
from ``repr`` and never serialised (run.json is built from ``identity`` and ``execution_dict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from s2c_pipeline.codec.target import RateTarget
from s2c_pipeline.imaging import DEFAULT_MAX_PIXELS
from s2c_pipeline.shards import DEFAULT_MAX_MEMBER_BYTES


@dataclass(frozen=True)
class ExecutionConfig:
    """How a run uses the cluster and the store: what ``compress``, ``decompress`` and ``verify``
    share. ``RunConfig`` and ``DecodeConfig`` extend it, so each of these settings is defined and
    checked once and callers still write ``RunConfig(actors=2)``."""

    actors: int | None = None
    """None = one per GPU, or (cluster CPUs // cpus_per_actor) CPU actors when there is no GPU."""
    cpus_per_actor: int = 1
    """CPU cores reserved per actor; also its torch thread count on CPU."""
    max_attempts: int = 3
    """Tries per shard, actor deaths and application errors counted together."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Larger images are not coded or decoded (OOM guard): compress records them skipped_too_large."""
    address: str | None = None
    """Ray address; None = the running Ray in this process, else a new local one."""
    in_flight_per_actor: int = 2
    """Shards queued per actor: the second one is read while the first is processed."""
    actor_start_timeout_s: float = 600.0
    """How long a pending actor may wait for resources before the run fails with a message."""
    show_progress: bool = True
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """fsspec options for inputs and outputs (may carry credentials: never logged or written)."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.cpus_per_actor < 1:
            raise ValueError("cpus_per_actor must be at least 1")
        if self.actors is not None and self.actors < 1:
            raise ValueError("actors must be at least 1")
        if self.in_flight_per_actor < 1:
            raise ValueError("in_flight_per_actor must be at least 1")
        if self.max_pixels < 1:
            raise ValueError("max_pixels must be positive")


@dataclass(frozen=True)
class RunConfig(ExecutionConfig):
    """What ``compress`` needs besides inputs and an output prefix."""

    model: str | None = None
    """Zoo name; None = the bundled default model."""
    weights: str | None = None
    """A checkpoint file (local path, read on the driver and shipped to every actor)."""
    quality: float | None = None
    """None = the middle of the model's quality range."""
    target: RateTarget | None = None
    """Per-image rate control (``--target-psnr`` / ``--target-bpp``); excludes ``quality``."""
    batch_size: int | None = None
    """Images of one padded size per g_a / g_s pass; None = 8 on a GPU actor, 1 on a CPU actor."""
    refine_steps: int = 0
    """Encoder-side latent refinement steps per image (``codec.refine``); 0 = off."""
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
    """Larger tar members are not read into memory: an image one is skipped_too_large, others are
    not carried (the row's error names them)."""
    retry_failed: bool = False
    dry_run: bool = False
    log_interval_s: float = 10.0

    def __post_init__(self) -> None:
        if self.target is not None and self.quality is not None:
            raise ValueError("give either a quality or a target, not both")
        super().__post_init__()
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.refine_steps < 0:
            raise ValueError("refine_steps must be 0 or more")
        if self.max_member_bytes < 1:
            raise ValueError("max_member_bytes must be at least 1 (--max-member-bytes)")

    def execution_dict(self) -> dict[str, Any]:
        """The execution settings as recorded in run.json (no storage options, no address)."""
        return {
            "actors": self.actors,
            "cpus_per_actor": self.cpus_per_actor,
            "batch_size": self.batch_size,
            "refine_steps": self.refine_steps,
            "max_attempts": self.max_attempts,
            "max_pixels": self.max_pixels,
            "max_member_bytes": self.max_member_bytes,
            "in_flight_per_actor": self.in_flight_per_actor,
        }


@dataclass(frozen=True)
class DecodeConfig(ExecutionConfig):
    """What ``decompress`` and ``verify --decode`` need besides the prefix."""

    extra_weights: tuple[str, ...] = ()
    """Checkpoint files to search besides the bundled ones (bitstreams name their weights)."""

"""The Ray actors: each loads its codec(s) once and then processes whole shards.

Resources are not declared here but by the driver (``ActorPlan.options``): ``num_gpus=1`` per GPU,
or ``num_cpus=k`` on a GPU-less cluster. ``max_concurrency=2`` lets a second shard be read or
written while the first is encoded; encoding itself is serialised by a lock (one model, one
device). A user-supplied checkpoint travels as bytes, so nodes need no shared filesystem, and
loads from memory. Each actor is given its checkpoint(s) and one frozen settings object, built
once on the driver.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ray

from s2c_pipeline.archive.layout import OutputLayout
from s2c_pipeline.codec.batching import default_batch_size
from s2c_pipeline.codec.encode_and_verify import EncodeSettings
from s2c_pipeline.codec.refine import RefineSettings
from s2c_pipeline.pipeline.compress.results import ShardResult
from s2c_pipeline.pipeline.compress.resume import ShardTask
from s2c_pipeline.pipeline.compress.shard_task import WorkerContext, run_shard_task
from s2c_pipeline.pipeline.compress.weights_spec import CodecSpec
from s2c_pipeline.pipeline.config import DecodeConfig, RunConfig
from s2c_pipeline.pipeline.decompress.decode_task import CodecCache, DecodeResult, DecodeTask, run_decode_task

log = logging.getLogger(__name__)

ACTOR_CONCURRENCY = 2


def device_label(codec: Any) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``, as recorded in manifests (docs/manifest.md)."""
    import torch

    device = codec.device
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type


@dataclass(frozen=True)
class CompressSettings:
    """What every compress actor is given besides the weights: resolved once on the driver."""

    layout: OutputLayout
    quality: float
    """The resolved quality (``weights_spec.resolve_quality``); unused under a rate target."""
    config: RunConfig


class CompressWorker:
    """Holds one loaded codec; ``process`` runs ``run_shard_task`` for one shard."""

    def __init__(self, spec: CodecSpec, settings: CompressSettings) -> None:
        config = settings.config
        self._codec = spec.load(None, config.cpus_per_actor)
        self._device = device_label(self._codec)
        self._settings = EncodeSettings(
            quality=settings.quality,
            max_pixels=config.max_pixels,
            device=self._device,
            target=config.target,
            batch_size=config.batch_size or default_batch_size(self._codec.device.type),
            refine=RefineSettings(config.refine_steps) if config.refine_steps else None,
        )
        self._layout = settings.layout
        self._storage_options = dict(config.storage_options)
        self._max_member_bytes = config.max_member_bytes
        self._lock = threading.Lock()
        self._worker = WorkerContext(ray.get_runtime_context().get_node_id(), self._device, os.getpid())

    def ready(self) -> dict[str, Any]:
        return {
            "node_id": self._worker.node_id,
            "pid": self._worker.pid,
            "device": self._device,
            "batch_size": self._settings.batch_size,
        }

    def pid(self) -> int:
        return os.getpid()

    def process(self, task: ShardTask, attempt: int) -> ShardResult:
        return run_shard_task(
            task,
            attempt=attempt,
            codec=self._codec,
            settings=self._settings,
            layout=self._layout,
            storage_options=self._storage_options,
            worker=self._worker,
            encode_lock=self._lock,
            max_member_bytes=self._max_member_bytes,
        )


def remote_class(cls: type, options: dict[str, Any]):
    """``cls`` as a Ray actor class with the plan's resources; no automatic restarts (the
    scheduler replaces dead actors itself, so a shard is never silently re-run on a restarted
    actor behind its back)."""
    return ray.remote(cls).options(max_concurrency=ACTOR_CONCURRENCY, max_restarts=0, **options)


class DecodeWorker:
    """Holds the codecs met so far; ``process`` decodes (and writes) one output shard."""

    def __init__(self, weights: Sequence[tuple[str, bytes]], config: DecodeConfig) -> None:
        import torch

        torch.set_num_threads(config.cpus_per_actor)
        self._codecs = CodecCache(weights)
        self._max_pixels = config.max_pixels
        self._storage_options = dict(config.storage_options)
        self._lock = threading.Lock()

    def ready(self) -> dict[str, Any]:
        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def pid(self) -> int:
        return os.getpid()

    def process(self, task: DecodeTask, attempt: int) -> DecodeResult:
        return run_decode_task(
            task,
            codecs=self._codecs,
            max_pixels=self._max_pixels,
            storage_options=self._storage_options,
            decode_lock=self._lock,
        )

"""The Ray actors: each loads its codec(s) once and then processes whole shards.

Resources are not declared here but by the driver (``ActorPlan.options``): ``num_gpus=1`` per GPU,
or ``num_cpus=k`` on a GPU-less cluster. ``max_concurrency=2`` lets a second shard be read or
written while the first is encoded; encoding itself is serialised by a lock (one model, one
device). A user-supplied checkpoint travels as bytes, so nodes need no shared filesystem.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import ray

from s2c_pipeline.codec.batching import default_batch_size
from s2c_pipeline.codec.image_coding import EncodeSettings
from s2c_pipeline.codec.refine import RefineSettings
from s2c_pipeline.codec.target import RateTarget
from s2c_pipeline.pipeline.codec_spec import CodecSpec, write_weights_files
from s2c_pipeline.pipeline.decode_job import CodecCache, DecodeResult, DecodeTask, run_decode_task
from s2c_pipeline.pipeline.layout import OutputLayout
from s2c_pipeline.pipeline.results import ShardResult
from s2c_pipeline.pipeline.resume import ShardTask
from s2c_pipeline.pipeline.shard_job import WorkerContext, run_shard_task
from s2c_pipeline.shards import DEFAULT_MAX_MEMBER_BYTES

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


class CompressWorker:
    """Holds one loaded codec; ``process`` runs ``run_shard_task`` for one shard."""

    def __init__(
        self,
        spec: CodecSpec,
        quality: float,
        max_pixels: int,
        layout: OutputLayout,
        storage_options: dict[str, Any],
        threads: int,
        target: RateTarget | None = None,
        batch_size: int | None = None,
        refine_steps: int = 0,
        max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
    ) -> None:
        self._codec = spec.load(None, threads)
        self._device = device_label(self._codec)
        self._settings = EncodeSettings(
            quality=quality,
            max_pixels=max_pixels,
            device=self._device,
            target=target,
            batch_size=batch_size or default_batch_size(self._codec.device.type),
            refine=RefineSettings(refine_steps) if refine_steps else None,
        )
        self._layout = layout
        self._storage_options = storage_options
        self._max_member_bytes = max_member_bytes
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

    def __init__(
        self, weights: list[tuple[str, bytes]], max_pixels: int, storage_options: dict[str, Any], threads: int
    ) -> None:
        import torch

        torch.set_num_threads(threads)
        self._codecs = CodecCache(write_weights_files(weights))
        self._max_pixels = max_pixels
        self._storage_options = storage_options
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

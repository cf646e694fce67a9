"""Data-parallel training on Ray Train (``TorchTrainer``): multi-GPU, multi-node, or CPU with gloo.

Each worker runs the same ``train`` loop as a single process, with the model wrapped in DDP by
``ray.train.torch.prepare_model``; rank 0 writes checkpoints, so resume works exactly as locally.
"""

from __future__ import annotations

import dataclasses
import logging

import torch

from s2c_pipeline.train.config import TrainConfig

log = logging.getLogger(__name__)


def _worker(config: dict) -> None:
    import ray.train
    import ray.train.torch

    from s2c_pipeline.train.loop import train

    ctx = ray.train.get_context()
    cfg = TrainConfig(**config)
    rank = ctx.get_world_rank()
    cfg = dataclasses.replace(cfg, seed=cfg.seed + rank, device="cuda" if torch.cuda.is_available() else "cpu")
    train(
        cfg,
        is_main=rank == 0,
        wrap_model=lambda m: ray.train.torch.prepare_model(m, move_to_device=True),
        report=lambda record: ray.train.report({"step": record["step"]}),
    )


def train_on_ray(cfg: TrainConfig, *, num_workers: int, use_gpu: bool | None = None) -> None:
    """Run ``cfg`` on ``num_workers`` Ray Train workers (joins a running cluster, else starts one)."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    if use_gpu is None:
        use_gpu = torch.cuda.is_available()
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True)
    trainer = TorchTrainer(
        _worker,
        train_loop_config=cfg.to_dict(),
        scaling_config=ScalingConfig(
            num_workers=num_workers, use_gpu=use_gpu, resources_per_worker={"CPU": 1}
        ),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=RunConfig(name="s2c-train", storage_path=str(_storage_dir(cfg))),
    )
    result = trainer.fit()
    if result.error:
        raise result.error
    log.info("Ray Train finished: %s", result.metrics)


def _storage_dir(cfg: TrainConfig):
    from pathlib import Path

    path = Path(cfg.out).resolve() / "ray"
    path.mkdir(parents=True, exist_ok=True)
    return path

"""The training loop: one code path for CPU, one GPU, and each Ray Train worker.

Checkpoints (``last.pt``) hold the model, both optimizers, the step and the RNG state, so a run
stopped at any point (``max_minutes``, a 10-minute GPU lease, Ctrl-C) resumes where it left off.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.profiler import record_function
from tqdm import tqdm

from s2c_pipeline.codec.model import S2CFormer
from s2c_pipeline.codec.weights import load_checkpoint
from s2c_pipeline.codec.zoo import create_model
from s2c_pipeline.train.config import TrainConfig, save_effective_config
from s2c_pipeline.train.crops import CropSampler, DeviceCropSampler, Prefetcher
from s2c_pipeline.train.datapack import DataPack
from s2c_pipeline.train.loss import RDLoss, rate_distortion
from s2c_pipeline.train.profiling import step_profiler

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    model: S2CFormer
    optimizer: torch.optim.Optimizer
    aux_optimizer: torch.optim.Optimizer
    step: int = 0
    wall_seconds: float = 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def validation_batch(images: Sequence[np.ndarray], size: int = 256) -> torch.Tensor:
    """Centre crops of (H, W, 3) uint8 images, all cut to the largest size that every image allows
    (a multiple of 64, at most ``size``), as one float batch in [0, 1]."""
    crops = []
    for im in images:
        s = min(size, im.shape[0] // 64 * 64, im.shape[1] // 64 * 64)
        y, x = (im.shape[0] - s) // 2, (im.shape[1] - s) // 2
        crops.append(torch.from_numpy(np.ascontiguousarray(im[y : y + s, x : x + s])).permute(2, 0, 1))
    s = min(c.shape[1] for c in crops)
    return torch.stack([c[:, :s, :s] for c in crops]).float() / 255.0


def validation_images(cfg: TrainConfig, pack: DataPack) -> list[np.ndarray]:
    """The validation split's photos when ``cfg.validation`` names a photo folder, else the pack's
    last ``val_images`` images (a held-out slice of the training distribution)."""
    if cfg.validation.endswith(".tar"):  # the split packed (datapack): what travels to a GPU machine
        split = DataPack(cfg.validation)
        return [split.image(i) for i in range(len(split))]
    if cfg.validation:
        from PIL import Image

        from s2c_pipeline.photos import validation_photo_files

        images = []
        for path in validation_photo_files(Path(cfg.validation)):
            with Image.open(path) as img:
                images.append(np.asarray(img.convert("RGB")))
        return images
    return [pack.image(i) for i in range(len(pack) - cfg.val_images, len(pack))]


def make_state(cfg: TrainConfig, device: torch.device) -> TrainState:
    overrides = {"lambdas": tuple(cfg.lambdas)} if cfg.lambdas else {}
    model = create_model(cfg.model, **overrides).to(device)
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    main_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    return TrainState(
        model,
        # fused: one kernel for all parameters instead of a dozen per tensor (CPU and CUDA)
        torch.optim.Adam(main_params, lr=cfg.lr, fused=cfg.fused_adam or None),
        torch.optim.Adam(aux_params, lr=cfg.aux_lr, fused=cfg.fused_adam or None),
    )


def save_training_checkpoint(state: TrainState, cfg: TrainConfig, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "step": state.step,
            "wall_seconds": state.wall_seconds,
            "train_config": cfg.to_dict(),
            "model_config": state.model.config.to_dict(),
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "aux_optimizer": state.aux_optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
        },
        tmp,
    )
    tmp.replace(path)


def load_training_checkpoint(state: TrainState, path: Path) -> None:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt["model_config"] != state.model.config.to_dict():
        raise ValueError(f"{path} was trained with another model config; use a fresh --out directory")
    state.model.load_state_dict(ckpt["model"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.aux_optimizer.load_state_dict(ckpt["aux_optimizer"])
    torch.set_rng_state(ckpt["torch_rng"])
    state.step = ckpt["step"]
    state.wall_seconds = ckpt["wall_seconds"]


def init_weights(state: TrainState, path: Path) -> None:
    """Copy an exported checkpoint's weights (fp16 on disk) into a fresh state's model.

    The checkpoint may have other rate points than this run: its gain tables are then remapped
    onto this run's lambdas (``remap_gains``); every other weight must match in shape.
    """
    model, _ = load_checkpoint(path, "cpu")
    target = state.model.config
    if dataclasses.replace(model.config, lambdas=target.lambdas) != target:
        raise ValueError(
            f"{path} holds {model.config.name} with another config than this run's {target.name}; "
            "init_from needs the same model (only lambdas may differ)"
        )
    weights = model.state_dict()
    # Lower bounds (likelihood 1e-9, scale 0.11) are constants of the layers, not learned; the fp16
    # export rounds 1e-9 to 0, and training without that bound reaches log(0) within steps.
    for name, value in state.model.state_dict().items():
        if name.endswith(".bound"):
            weights[name] = value
    for name in ("log_gain", "log_inverse_gain"):
        weights[name] = remap_gains(weights[name], model.config.lambdas, target.lambdas)
    state.model.load_state_dict(weights)


def quality_sampling_weights(
    weights: Sequence[float], levels: int, device: torch.device | str = "cpu"
) -> torch.Tensor | None:
    """``quality_weights`` as a tensor for ``torch.multinomial``; None for uniform sampling."""
    if not weights:
        return None
    if len(weights) != levels or any(not w >= 0 for w in weights) or not sum(weights) > 0:
        raise ValueError(
            f"quality_weights needs {levels} non-negative weights (one per quality level) with a "
            f"positive sum, got {tuple(weights)}"
        )
    return torch.tensor(weights, dtype=torch.float32, device=device)


def remap_gains(table: torch.Tensor, lambdas: Sequence[float], new_lambdas: Sequence[float]) -> torch.Tensor:
    """Per-channel log-gains (len(lambdas), M) -> (len(new_lambdas), M), piecewise linear in
    log-lambda between trained rate points and extended along the end segments beyond them."""
    if list(lambdas) == list(new_lambdas):
        return table.clone()
    if len(lambdas) < 2 or any(b <= a for a, b in itertools.pairwise(lambdas)):
        raise ValueError(f"remapping gains needs at least two increasing lambdas, got {tuple(lambdas)}")
    known = np.log(np.asarray(lambdas, dtype=np.float64))
    rows = []
    for lam in new_lambdas:
        x = math.log(lam)
        i = int(np.clip(np.searchsorted(known, x) - 1, 0, len(known) - 2))
        t = (x - known[i]) / (known[i + 1] - known[i])
        rows.append(table[i] + t * (table[i + 1] - table[i]))
    return torch.stack(rows)


def learning_rate(cfg: TrainConfig, state: TrainState) -> float:
    """The main optimizer's lr for the coming step: warmup, then ``cfg.lr``, tenfold lower once dropped.

    With ``lr_reference_batch`` set, ``cfg.lr`` is the lr of that batch size and scales with the
    square root of ``batch_size`` over it (Adam's usual rule for larger batches).
    """
    lr = cfg.lr * (0.1 if lr_dropped(cfg, state) else 1.0)
    if cfg.lr_reference_batch > 0:
        lr *= math.sqrt(cfg.batch_size / cfg.lr_reference_batch)
    if cfg.lr_warmup_steps > 0:
        lr *= min(1.0, (state.step + 1) / cfg.lr_warmup_steps)
    return lr


def lr_dropped(cfg: TrainConfig, state: TrainState) -> bool:
    """Past the tenfold lr drop: after ``lr_drop_minutes`` of training when set, else at
    ``lr_drop_at`` of ``steps``."""
    if cfg.lr_drop_minutes > 0:
        return state.wall_seconds >= cfg.lr_drop_minutes * 60
    return state.step >= cfg.lr_drop_at * cfg.steps


@torch.no_grad()
def validate(model: S2CFormer, batch: torch.Tensor) -> list[dict[str, float]]:
    """Estimated bpp, PSNR and rate-distortion loss (at the level's lambda) per quality level on
    fixed held-out crops."""
    model.eval()
    rows = []
    for q, lam in enumerate(model.config.lambdas):
        idx = torch.full((batch.shape[0],), q, dtype=torch.long, device=batch.device)
        rd = rate_distortion(
            batch, model(batch, idx), torch.full((batch.shape[0],), lam, device=batch.device)
        )
        rows.append(
            {
                "quality": q + 1,
                "bpp": rd.bpp.mean().item(),
                "psnr": rd.psnr.mean().item(),
                "loss": rd.loss.item(),
            }
        )
    model.train()
    return rows


def validation_score(rows: Sequence[dict[str, float]]) -> float:
    """One number per validation, lower is better: the levels' losses averaged, every level alike."""
    return sum(r["loss"] for r in rows) / len(rows)


def keep_if_best(state: TrainState, cfg: TrainConfig, rows: Sequence[dict[str, float]]) -> bool:
    """Save ``best.pt`` (and ``best.json``) when this validation beats every earlier one of the run:
    with a validation split, it is the split that picks the checkpoint to export, not the last step."""
    out = Path(cfg.out)
    score = validation_score(rows)
    record = out / "best.json"
    if record.exists() and json.loads(record.read_text())["score"] <= score:
        return False
    save_training_checkpoint(state, cfg, out / "best.pt")
    record.write_text(json.dumps({"step": state.step, "score": score}) + "\n")
    return True


@dataclass
class TrainingRun:
    """What every step of one run shares, made once by ``start_run``."""

    cfg: TrainConfig
    state: TrainState
    device: torch.device
    net: torch.nn.Module
    loss_of: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], RDLoss]
    sampler: CropSampler | DeviceCropSampler
    prefetcher: Prefetcher | None
    val_batch: torch.Tensor
    lambdas: torch.Tensor
    level_weights: torch.Tensor | None
    memory_format: torch.memory_format
    is_main: bool
    history: Path
    started: float = 0.0
    wall_at_start: float = 0.0

    def close(self) -> None:
        if self.prefetcher:
            self.prefetcher.close()
        self.sampler.close()


def configure_device(cfg: TrainConfig) -> torch.device:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    if device.type == "cuda":
        # Fixed input shapes: let cuDNN pick its fastest kernels. Without amp, float32 convolutions
        # and matmuls run as TF32 (10-bit mantissa products, float32 sums).
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def uses_amp(cfg: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast of the transforms: asked for, and on CUDA (ignored on CPU)."""
    return cfg.amp and device.type == "cuda"


def loss_function(
    net: torch.nn.Module, amp: bool, device: torch.device, compile_mode: str = ""
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], RDLoss]:
    """Forward pass and rate-distortion loss of a batch, compiled with ``torch.compile`` when
    ``compile_mode`` is set ("default", "reduce-overhead" = CUDA graphs, "max-autotune").

    Only this part is compiled: the backward pass follows from it (AOTAutograd compiles it too),
    and the optimizers stay plain eager code, so checkpoints and resumes do not change.
    """

    def loss_of(x: torch.Tensor, q: torch.Tensor, lambdas: torch.Tensor) -> RDLoss:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = net(x, q)
        return rate_distortion(x, out, lambdas[q])  # float32, outside autocast

    return torch.compile(loss_of, mode=compile_mode) if compile_mode else loss_of


def start_run(
    cfg: TrainConfig,
    *,
    is_main: bool = True,
    wrap_model: Callable[[S2CFormer], torch.nn.Module] | None = None,
) -> TrainingRun:
    """Set up (or resume) a run: data, model and optimizers, crops, validation batch."""
    device = configure_device(cfg)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    pack = DataPack(cfg.data)
    held_out = 0 if cfg.validation else cfg.val_images
    if len(pack) <= held_out:
        raise ValueError(f"{cfg.data} has {len(pack)} images; need more than val_images={cfg.val_images}")
    train_idx = list(range(len(pack) - held_out))
    state = make_state(cfg, device)
    last = out / "last.pt"
    if last.exists():
        load_training_checkpoint(state, last)
        log.info("resumed %s at step %d", last, state.step)
    elif cfg.init_from:
        init_weights(state, Path(cfg.init_from))
        log.info("started from the weights of %s", cfg.init_from)
    if is_main:
        save_effective_config(cfg, out)
    seed = cfg.seed + state.step
    sampler: CropSampler | DeviceCropSampler
    if cfg.crops_on_device:
        sampler = DeviceCropSampler(pack, train_idx, cfg.patch, seed, cfg.crop_candidates, device)
    else:
        sampler = CropSampler(
            pack, train_idx, cfg.patch, seed, cfg.crop_candidates, workers=cfg.loader_threads
        )
    prefetcher = (
        Prefetcher(lambda: sampler.batch(cfg.batch_size), pin=device.type == "cuda")
        if cfg.loader_threads and not cfg.crops_on_device
        else None
    )
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    state.model.to(memory_format=memory_format)
    net = wrap_model(state.model) if wrap_model else state.model
    return TrainingRun(
        cfg=cfg,
        state=state,
        device=device,
        net=net,
        loss_of=loss_function(net, uses_amp(cfg, device), device, cfg.compile),
        sampler=sampler,
        prefetcher=prefetcher,
        val_batch=validation_batch(validation_images(cfg, pack)).to(device),
        lambdas=torch.tensor(state.model.config.lambdas, device=device),
        level_weights=quality_sampling_weights(cfg.quality_weights, len(state.model.config.lambdas), device),
        memory_format=memory_format,
        is_main=is_main,
        history=out / "history.jsonl",
    )


def next_batch(run: TrainingRun) -> torch.Tensor:
    with record_function("crops"):
        x = run.prefetcher.next() if run.prefetcher else run.sampler.batch(run.cfg.batch_size)
        return x.to(run.device, non_blocking=True, memory_format=run.memory_format)


def train_step(run: TrainingRun, x: torch.Tensor) -> RDLoss:
    """One optimizer step on batch ``x``, without waiting for the GPU (no host syncs)."""
    cfg, state = run.cfg, run.state
    lr = learning_rate(cfg, state)
    for group in state.optimizer.param_groups:
        if group["lr"] != lr and run.is_main and state.step and state.step >= cfg.lr_warmup_steps:
            log.info("lr %g -> %g at step %d", group["lr"], lr, state.step)
        group["lr"] = lr
    if run.level_weights is None:
        q = torch.randint(0, len(run.lambdas), (x.shape[0],), device=run.device)
    else:
        q = torch.multinomial(run.level_weights, x.shape[0], replacement=True)
    with record_function("forward"):
        rd = run.loss_of(x, q, run.lambdas)
    with record_function("backward"):
        state.optimizer.zero_grad(set_to_none=True)
        rd.loss.backward()
    with record_function("optimizer"):
        if cfg.clip > 0:
            torch.nn.utils.clip_grad_norm_(state.model.parameters(), cfg.clip)
        state.optimizer.step()
        aux = state.model.aux_loss()
        state.aux_optimizer.zero_grad(set_to_none=True)
        aux.backward()
        state.aux_optimizer.step()
    state.step += 1
    state.wall_seconds = run.wall_at_start + time.monotonic() - run.started
    return rd


def record_validation(run: TrainingRun, report: Callable[[dict], None] | None) -> None:
    """Validate now: a line in history.jsonl and the log, best.pt when the split improves."""
    cfg, state = run.cfg, run.state
    rows = validate(state.model, run.val_batch)
    record = {
        "step": state.step,
        "wall_seconds": round(state.wall_seconds, 1),
        "lr": state.optimizer.param_groups[0]["lr"],
        "val": rows,
    }
    if run.is_main:
        with run.history.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if cfg.validation and keep_if_best(state, cfg, rows):
            log.info(
                "step %d: best validation so far (%.4f), saved best.pt", state.step, validation_score(rows)
            )
        log.info(
            "step %d val %s",
            state.step,
            " ".join(f"q{r['quality']}:{r['bpp']:.3f}bpp/{r['psnr']:.2f}dB" for r in rows),
        )
    if report:
        report(record)


def validate_and_checkpoint(
    run: TrainingRun, rd: RDLoss, bar: tqdm, report: Callable[[dict], None] | None
) -> bool:
    """After a step: show the loss, validate and checkpoint when due; True when the run should stop."""
    cfg, state = run.cfg, run.state
    done = state.step >= cfg.steps
    out_of_time = cfg.max_minutes > 0 and (time.monotonic() - run.started) > cfg.max_minutes * 60
    validating = state.step % cfg.val_every == 0 or done or out_of_time
    # Reading the loss waits for the GPU; every tenth step keeps it queued ahead.
    if state.step % 10 == 0 or validating or run.device.type != "cuda":
        loss = rd.loss.item()
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss became {loss} at step {state.step}; lower lr or clip")
        bar.set_postfix(loss=f"{loss:.3f}", bpp=f"{rd.bpp.mean():.3f}", psnr=f"{rd.psnr.mean():.2f}")
    if validating:
        record_validation(run, report)
    if run.is_main and (state.step % cfg.checkpoint_every == 0 or done or out_of_time):
        save_training_checkpoint(state, cfg, Path(cfg.out) / "last.pt")
    if out_of_time:
        log.info(
            "stopping at step %d after %.1f minutes (max_minutes); rerun to resume",
            state.step,
            cfg.max_minutes,
        )
    return done or out_of_time


def train(
    cfg: TrainConfig,
    *,
    is_main: bool = True,
    wrap_model: Callable[[S2CFormer], torch.nn.Module] | None = None,
    report: Callable[[dict], None] | None = None,
) -> TrainState:
    """Run (or resume) training until ``cfg.steps``; returns the final state.

    ``wrap_model`` lets Ray Train wrap the model in DistributedDataParallel; ``is_main`` limits
    checkpoint writing and the progress bar to rank 0.
    """
    run = start_run(cfg, is_main=is_main, wrap_model=wrap_model)
    state = run.state
    bar = tqdm(
        total=cfg.steps, initial=state.step, disable=None if is_main else True, desc=cfg.model, unit="step"
    )
    profiler = step_profiler(cfg.profile_steps, run.device, Path(cfg.out)) if is_main else None
    run.net.train()
    if state.step == 0 and cfg.init_from and cfg.validation:
        # The starting weights are the bar: step 0 in the history, and best.pt until a step beats it.
        record_validation(run, report)
    run.started, run.wall_at_start = time.monotonic(), state.wall_seconds
    try:
        stop = state.step >= cfg.steps
        while not stop:
            rd = train_step(run, next_batch(run))
            if profiler:
                profiler.step()
            bar.update(1)
            stop = validate_and_checkpoint(run, rd, bar, report)
    finally:
        if profiler:
            profiler.stop()
        run.close()
    bar.close()
    return state

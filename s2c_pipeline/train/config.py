"""Training configuration: a YAML file plus ``key=value`` overrides, saved beside the checkpoints."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # torch.compile's modes


@dataclass(frozen=True)
class TrainConfig:
    model: str = "s2c-conv-small"
    data: str = "data-cache/train-pack.tar"  # a training-data pack (s2c_pipeline.train.datapack)
    out: str = "runs/train"
    steps: int = 2000
    batch_size: int = 8
    patch: int = 128
    # Candidate crops drawn per training crop; the most detailed one (largest mean absolute
    # difference between neighbouring pixels) is kept. 1 = plain uniform crops. Wallpapers are
    # mostly smooth; photos people archive are not.
    crop_candidates: int = 1
    lr: float = 1e-4
    aux_lr: float = 1e-3
    lr_drop_at: float = 0.9  # fraction of steps after which lr is divided by 10
    # Or: divide lr by 10 after this many minutes of training (summed over resumes), for a
    # time-boxed run (a lent GPU) whose step count is not known in advance. 0 = use lr_drop_at.
    lr_drop_minutes: float = 0.0
    # Rise linearly to lr over this many first steps. Adam restarted on trained weights moves every
    # parameter by the full lr in its first steps (its update is sign-like until its moment
    # estimates settle): two steps at lr 2e-5 cost stage 5 1.6 dB at the top level.
    lr_warmup_steps: int = 0
    clip: float = 1.0
    lambdas: tuple[float, ...] = ()  # empty: the model config's own rate points
    # Relative sampling weight of each quality level per training sample; empty = uniform. Lets a
    # stage spend its steps where the curve is weakest (the top levels, where the transforms
    # saturate) without changing the rate points.
    quality_weights: tuple[float, ...] = ()
    val_every: int = 250
    val_images: int = 4  # held-out pack images (the last ones) used for validation
    # A photo folder with a validation/ split (data-cache/photos, from photos.fetch): validate on
    # centre crops of those photos instead, and train on every pack image. The split is disjoint
    # from training and evaluation, so it can choose checkpoints (docs/photos.md). Or the split as a
    # pack (data-cache/validation-pack.tar, 6.5 MB, what a GPU call can carry): the same photos as
    # stored there (WebP at quality 95), so its scores are close to the folder's, not identical.
    validation: str = ""
    checkpoint_every: int = 250
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    # bfloat16 autocast of the transforms on CUDA (the entropy model stays float32); ignored on CPU
    amp: bool = True
    threads: int = 0  # torch CPU threads; 0 leaves torch's default
    channels_last: bool = False  # NHWC tensors: about 15 % faster steps on CPU (oneDNN convolutions)
    # Threads that make training crops: 0 = in the training loop itself (a 2-core CPU has no cores
    # to spare); n > 0 = the next batches are made on a background thread, their candidate crops
    # scored on n threads, while the GPU trains. The crops are the same either way.
    loader_threads: int = 0
    # Cut, score and flip the crops on the training device, from a copy of the pack held there
    # (DeviceCropSampler): the same crops, without a CPU thread for the GPU to wait on. Replaces
    # loader_threads.
    crops_on_device: bool = False
    # Profile this many steps (after 10 unprofiled ones) into profile.txt beside the checkpoints:
    # operator times and the loop's phases (s2c_pipeline.train.profiling). 0 = off.
    profile_steps: int = 0
    # torch.compile the forward pass and loss (and through them the backward): "" = eager,
    # "default", "reduce-overhead" (adds CUDA graphs: the fix for a host-bound GPU step) or
    # "max-autotune". The first steps pay the compile time (minutes on a small CPU).
    compile: str = ""
    fused_adam: bool = False  # one fused Adam kernel over all parameters instead of per-tensor loops
    # When > 0, ``lr`` is the lr of this batch size and scales with sqrt(batch_size / it), so a
    # larger batch (more crops per GPU step) keeps a comparable update size.
    lr_reference_batch: int = 0
    max_minutes: float = 0.0  # stop (checkpointed, resumable) after this wall time; 0 = no limit
    # An exported checkpoint (13.8 MB, unlike the 76 MB last.pt with Adam state) whose weights start
    # a run that has no last.pt yet: how a GPU machine that receives at most 64 MiB continues
    # the bundled weights. Adam restarts from zero. Its rate points may differ from this run's
    # ``lambdas``: the gains of a new rate point start from the exported ones, interpolated or
    # extrapolated in log-lambda per channel.
    init_from: str = ""

    def __post_init__(self) -> None:
        if self.compile and self.compile not in COMPILE_MODES:
            raise ValueError(f"compile must be empty or one of {', '.join(COMPILE_MODES)}, not {self.compile!r}")
        if not self.validation and self.val_images < 1:
            raise ValueError(
                "val_images must be at least 1, or validation must name a photo folder with a validation/ "
                "split (validation=data-cache/photos)"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(field: dataclasses.Field, raw: Any) -> Any:
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    if isinstance(raw, str):
        if kind.startswith("tuple"):
            return tuple(float(v) for v in raw.split(",") if v)
        if kind == "bool":
            return raw.lower() in ("1", "true", "yes", "on")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        return raw
    if isinstance(raw, list):
        return tuple(raw)
    return raw


def load_train_config(path: Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """Defaults <- YAML file <- ``key=value`` overrides. Unknown keys are an error, not ignored."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    values: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of training options")
        values.update(loaded)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        values[key.strip().replace("-", "_")] = raw
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"unknown training options: {', '.join(sorted(unknown))}; known: {', '.join(fields)}")
    return TrainConfig(**{k: _coerce(fields[k], v) for k, v in values.items()})


def save_effective_config(cfg: TrainConfig, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "config.yaml"
    data = cfg.to_dict()
    data["lambdas"] = list(data["lambdas"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path

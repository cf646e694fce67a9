"""Capacity at equal budget: which model config should the next GPU minutes train (issue 18, s4)?

Each config trains from scratch on the same training packs for the same wall time, side by side
(one step of each per round, so a busy machine slows them all alike), and is validated on the
same centre crops of the validation split after each third of its budget. The validation split
chooses; the evaluation set plays no part.

What the table gives, per config:
- parameters, training FLOPs per 256x256 crop (forward + backward, counted by
  ``torch.utils.flop_counter``), crops a second here;
- the validation score (the levels' mean rate-distortion loss, as ``best.pt`` uses) after each
  third, and the BD-rate (PSNR, estimated bpp) of its final validation curve against the first
  config's;
- a projection to GPU leases: crops a lease would train, from ``--gpu-crops-per-s`` (the last
  lease's measured s2c-conv-small rate) scaled by the FLOP ratio (a compute-bound chip; a host-bound
  step would keep every config at the small one's rate, the upper end of the range printed), and the
  score a power law fitted to this run's three validations projects at one and five leases.
  Extrapolating a few thousand crops to a million is the weak link: the fit is printed, and the
  bundled weights' own score on the same crops (trained far longer) is printed beside it as a check.

    python benchmarks/capacity.py --minutes 8 --json benchmarks/results/capacity_cpu.json
    python benchmarks/capacity.py --ci   # a minute, for CI: tiny crops, 2 validation photos
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import s2c_pipeline.codec  # noqa: F401  (installs the torchvision shim before compressai loads)
from s2c_pipeline.codec import create_model
from s2c_pipeline.codec.weights import find_weights, load_checkpoint
from s2c_pipeline.evaluate.bdrate import bd_rate
from s2c_pipeline.train.config import TrainConfig
from s2c_pipeline.train.loop import (
    TrainingRun,
    next_batch,
    start_run,
    train_step,
    validate,
    validation_batch,
    validation_images,
    validation_score,
)

DEFAULT_MODELS = ("s2c-conv-small", "s2c-conv-medium", "s2c-hybrid-small")
STAGE8_LAMBDAS = (0.0009, 0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483, 0.0932)
STAGE8_LEVEL_WEIGHTS = (0.4, 0.4, 0.6, 1, 1.5, 2.5, 3, 3)
# The third lease (docs/weights.md): stage 8 trained at about 9.5 steps/s of 64 crops of 256x256.
LAST_LEASE_SMALL_CROPS_PER_S = 9.5 * 64
LEASE_TRAINING_SECONDS = 660  # what a 15-minute lease leaves for training (two calls, 7 + 4 minutes)


def training_flops_per_crop(model_name: str, patch: int = 256) -> float:
    """Forward + backward FLOPs of one crop at one quality level."""
    model = create_model(model_name, lambdas=STAGE8_LAMBDAS)
    x = torch.rand(1, 3, patch, patch)
    with FlopCounterMode(display=False) as counter:
        out = model(x, torch.zeros(1, dtype=torch.long))
        loss = out["x_hat"].float().mean() + sum(p.float().log().mean() for p in out["likelihoods"].values())
        loss.backward()
    return float(counter.get_total_flops())


@dataclass
class Contender:
    """One config's run, its timed training seconds and its validations."""

    model: str
    cfg: TrainConfig
    run: TrainingRun | None = None
    seconds: float = 0.0
    crops: int = 0
    validations: list[dict] = field(default_factory=list)
    error: str = ""

    def step(self) -> None:
        began = time.perf_counter()
        train_step(self.run, next_batch(self.run))
        self.seconds += time.perf_counter() - began
        self.crops += self.cfg.batch_size

    def validate(self, batch: torch.Tensor) -> None:
        rows = validate(self.run.state.model, batch)
        self.validations.append(
            {
                "crops": self.crops,
                "seconds": round(self.seconds, 1),
                "score": validation_score(rows),
                "levels": rows,
            }
        )
        print(
            f"{self.model}: {self.crops} crops, {self.seconds:.0f} s, score {self.validations[-1]['score']:.4f}",
            flush=True,
        )


def power_law(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(a, b) of score = a * crops**b fitted in log-log space; None with under two points, or when
    the fitted score does not fall with training (b >= 0: noise outweighs learning at this budget,
    and a projection from it would say nothing)."""
    usable = [(c, s) for c, s in points if c > 0 and s > 0]
    if len(usable) < 2:
        return None
    b, log_a = np.polyfit(np.log([c for c, _ in usable]), np.log([s for _, s in usable]), 1)
    return (float(math.exp(log_a)), float(b)) if b < 0 else None


def curve(levels: list[dict]) -> list[tuple[float, float]]:
    return [(r["bpp"], r["psnr"]) for r in levels]


def validation_crops(root: Path, count: int, size: int) -> torch.Tensor:
    """Centre crops of the first ``count`` validation photos, read as training reads them."""
    split = TrainConfig(validation=str(root), val_images=0)
    return validation_batch(validation_images(split, None)[:count], size)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--data", default="data-cache/train-pack-*.tar", help="training packs (a glob)")
    ap.add_argument("--photos", type=Path, default=Path("data-cache/photos"), help="holds validation/")
    ap.add_argument("--minutes", type=float, default=8.0, help="training wall time per config")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the other core stays free)")
    ap.add_argument("--val-photos", type=int, default=12, help="validation photos (centre crops)")
    ap.add_argument("--val-size", type=int, default=256)
    ap.add_argument(
        "--gpu-crops-per-s",
        type=float,
        default=LAST_LEASE_SMALL_CROPS_PER_S,
        help="measured s2c-conv-small training rate on a GPU (default: the last lease's)",
    )
    ap.add_argument("--ci", action="store_true", help="a minute: 64 px crops, 2 photos, 15 s per config")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.ci:
        args.minutes, args.patch, args.batch, args.val_photos, args.val_size = 0.25, 64, 2, 2, 64
    models = [m for m in args.models.split(",") if m]
    if not glob.glob(args.data) or not (args.photos / "validation").is_dir():
        print(
            f"no packs at {args.data} or no {args.photos}/validation: run `make packs` first", file=sys.stderr
        )
        return 2
    torch.set_num_threads(args.threads)
    val_batch = validation_crops(args.photos, args.val_photos, args.val_size)

    with tempfile.TemporaryDirectory() as tmp:
        contenders = []
        for model in models:
            cfg = TrainConfig(
                model=model,
                data=args.data,
                out=str(Path(tmp) / model),
                steps=10**9,
                batch_size=args.batch,
                patch=args.patch,
                lr=args.lr,
                lambdas=STAGE8_LAMBDAS,
                quality_weights=STAGE8_LEVEL_WEIGHTS,
                validation=str(args.photos),
                val_images=0,
                val_every=10**9,
                checkpoint_every=10**9,
                device="cpu",
                threads=args.threads,
                channels_last=True,
                seed=0,
            )
            contender = Contender(model, cfg)
            try:
                contender.run = start_run(cfg)
                contender.run.net.train()
                contender.run.started = time.monotonic()
            except Exception as exc:  # a config that cannot start is a row saying why
                contender.error = f"{type(exc).__name__}: {exc}"
            contenders.append(contender)
        budget = args.minutes * 60
        marks = [budget / 3, 2 * budget / 3, budget]
        active = [c for c in contenders if c.run is not None]
        while active:
            for c in active:
                c.step()
                if c.seconds >= marks[len(c.validations)]:
                    c.validate(val_batch)
            active = [c for c in active if len(c.validations) < len(marks)]
        for c in contenders:
            if c.run is not None:
                c.run.close()

    entry = find_weights("s2c-conv-small")
    reference_model, _ = load_checkpoint(entry.path)
    bundled_rows = validate(reference_model, val_batch)
    bundled = {"weights": entry.path.name, "score": validation_score(bundled_rows), "levels": bundled_rows}

    started = [c for c in contenders if not c.error]
    flops = {c.model: training_flops_per_crop(c.model) for c in started}
    rows = []
    first = started[0] if started else None
    for c in contenders:
        row: dict[str, object] = {"model": c.model}
        if c.error:
            rows.append({**row, "error": c.error})
            continue
        params = sum(p.numel() for p in c.run.state.model.parameters())
        fit = power_law([(v["crops"], v["score"]) for v in c.validations])
        compute_bound = args.gpu_crops_per_s * flops[first.model] / flops[c.model]
        host_bound = args.gpu_crops_per_s
        projection = {}
        for leases in (1, 5):
            crops = [rate * LEASE_TRAINING_SECONDS * leases for rate in (compute_bound, host_bound)]
            projection[f"{leases}_lease"] = {
                "crops": [round(n) for n in crops],
                "score": [round(fit[0] * n ** fit[1], 4) for n in crops] if fit else None,
            }
        bd = bd_rate(curve(first.validations[-1]["levels"]), curve(c.validations[-1]["levels"]), warn=False)
        row.update(
            params_m=round(params / 1e6, 2),
            train_gflop_per_crop_256=round(flops[c.model] / 1e9, 1),
            crops_per_s=round(c.crops / c.seconds, 2),
            crops=c.crops,
            scores=[round(v["score"], 4) for v in c.validations],
            bd_rate_vs_first_pct=None if bd.value_pct is None else round(bd.value_pct, 1),
            power_law=None if fit is None else {"a": round(fit[0], 4), "b": round(fit[1], 4)},
            gpu_crops_per_s=[round(compute_bound), round(host_bound)],
            projection=projection,
            validations=c.validations,
        )
        rows.append(row)

    print(
        f"\n{'model':<20}{'params M':>9}{'GFLOP/crop':>11}{'crops/s':>9}{'crops':>7}  "
        f"{'score @1/3, 2/3, 1':<26}{'BD vs 1st':>10}  projected score at 1 | 5 leases"
    )
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<20}  failed: {r['error']}")
            continue
        scores = ", ".join(f"{s:.3f}" for s in r["scores"])
        bd = "n/a" if r["bd_rate_vs_first_pct"] is None else f"{r['bd_rate_vs_first_pct']:+.1f}%"
        proj = " | ".join(
            "n/a"
            if r["projection"][k]["score"] is None
            else "{:.3f}-{:.3f}".format(*r["projection"][k]["score"])
            for k in ("1_lease", "5_lease")
        )
        print(
            f"{r['model']:<20}{r['params_m']:>9}{r['train_gflop_per_crop_256']:>11}{r['crops_per_s']:>9}"
            f"{r['crops']:>7}  {scores:<26}{bd:>10}  {proj}"
        )
    print(
        f"bundled {bundled['weights']} (trained far longer) on the same crops: score {bundled['score']:.3f}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "capacity",
                    "settings": {
                        k: (str(v) if isinstance(v, Path) else v)
                        for k, v in vars(args).items()
                        if k != "json"
                    },
                    "machine": f"{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)",
                    "rows": rows,
                    "bundled": bundled,
                },
                indent=1,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput: crops per second of one training step under each speed-up, side by side.

The step of ``s2c_pipeline.train.loop`` (crops, forward, loss, backward, both optimizers) runs
under a ladder of settings, each adding one change to the one before:

    eager          crops cut on a CPU thread-less sampler, per-tensor Adam (the old default)
    device-crops   the pack held on the training device, crops cut and scored there
    fused-adam     one fused Adam kernel over all parameters
    compile        torch.compile of forward + loss (mode reduce-overhead = CUDA graphs on a GPU)
    batch xN       the best of the above at N times the batch (lr scaled by sqrt(N))

Every setting first takes its own warm-up steps (compile time excluded and reported apart); then
the settings take turns, one step each per round, the device synchronised around each step, and
each row reports its median step: on a shared machine, load hits every setting alike. With ``--check-compile`` the compiled and eager losses of one
fixed batch (same noise: inductor's random fallback) must agree to ``--tolerance``; the script
exits 1 when they do not.

    python benchmarks/train_throughput.py --ci --check-compile --json benchmarks/results/train_throughput_cpu.json
    python benchmarks/train_throughput.py --device cuda --json "$OUT/train_throughput_gpu.json"   # a lent GPU

``--ci`` is the size a 2-core CPU finishes in minutes (64 px crops, batch 4; the compile rung
alone spends minutes compiling there); the GPU form uses the
training configs' 256 px crops at batch 64. With no ``--pack``, a pack of generated images is
written to a temporary folder: throughput does not depend on what the pixels show.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import s2c_pipeline.codec  # noqa: F401  (installs the torchvision shim before compressai loads)
from s2c_pipeline.train.config import TrainConfig
from s2c_pipeline.train.datapack import build_datapack
from s2c_pipeline.train.loop import TrainingRun, loss_function, next_batch, start_run, train_step, uses_amp

LADDER = ("eager", "device-crops", "fused-adam", "compile")


def ladder_overrides(name: str, device: torch.device) -> dict[str, object]:
    """TrainConfig overrides of one rung, including every rung below it."""
    rungs = LADDER[: LADDER.index(name) + 1]
    overrides: dict[str, object] = {"crops_on_device": False, "fused_adam": False, "compile": ""}
    if "device-crops" in rungs:
        overrides["crops_on_device"] = True
    if "fused-adam" in rungs:
        overrides["fused_adam"] = True
    if "compile" in rungs:
        overrides["compile"] = "reduce-overhead" if device.type == "cuda" else "default"
    return overrides


def generated_pack(folder: Path, count: int = 6, size: int = 512) -> Path:
    """A small pack of smooth random images with texture, written once per run."""
    rng = np.random.default_rng(0)
    files = []
    for i in range(count):
        low = rng.integers(0, 256, (size // 32, size // 32, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(low).resize((size, size), Image.BICUBIC), dtype=np.int16)
        img = np.clip(img + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
        path = folder / f"generated-{i}.png"
        Image.fromarray(img).save(path)
        files.append(path)
    return build_datapack(files, folder / "pack.tar")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Setting:
    """One row of the table: a prepared run, and the seconds of its timed steps."""

    name: str
    cfg: TrainConfig
    run: TrainingRun | None = None
    warmup_s: float = 0.0
    step_seconds: list[float] = field(default_factory=list)
    error: str = ""
    final_loss: float = float("nan")

    def prepare(self, warmup: int) -> None:
        """Start the run and take ``warmup`` untimed steps (compilation happens there)."""
        try:
            self.run = start_run(self.cfg)
            self.run.net.train()
            self.run.started = time.monotonic()
            began = time.perf_counter()
            for _ in range(warmup):
                train_step(self.run, next_batch(self.run))
            synchronize(self.run.device)
            self.warmup_s = time.perf_counter() - began
        except Exception as exc:  # a setting this machine cannot run is a row that says why
            self.fail(exc)

    def step(self) -> None:
        if self.run is None:
            return
        try:
            began = time.perf_counter()
            rd = train_step(self.run, next_batch(self.run))
            synchronize(self.run.device)
            self.step_seconds.append(time.perf_counter() - began)
            self.final_loss = rd.loss.item()
        except Exception as exc:
            self.fail(exc)

    def fail(self, exc: Exception) -> None:
        self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        self.close()

    def close(self) -> None:
        if self.run is not None:
            self.run.close()
            self.run = None

    def row(self) -> dict[str, object]:
        if self.error or not self.step_seconds:
            return {"setting": self.name, "batch": self.cfg.batch_size, "error": self.error or "no steps"}
        step = statistics.median(self.step_seconds)
        return {
            "setting": self.name,
            "batch": self.cfg.batch_size,
            "steps": len(self.step_seconds),
            "step_ms": round(1000 * step, 1),
            "step_ms_spread": [round(1000 * min(self.step_seconds), 1), round(1000 * max(self.step_seconds), 1)],
            "crops_per_s": round(self.cfg.batch_size / step, 1),
            "warmup_s": round(self.warmup_s, 1),
            "final_loss": round(self.final_loss, 4),
        }


def measure(settings: list[Setting], warmup: int, steps: int) -> None:
    """Time the settings side by side: each round gives every setting one step, so a busy machine
    slows them all alike and the ratios stay meaningful; each row is its median step."""
    for s in settings:
        s.prepare(warmup)
        print(f"prepared {s.name}" + (f" (failed: {s.error})" if s.error else f" in {s.warmup_s:.1f} s"), flush=True)
    for i in range(steps):
        for s in settings:
            s.step()
        print(f"round {i + 1}/{steps}", flush=True)


def check_compile(setting: Setting, tolerance: float) -> dict[str, object]:
    """Loss of one fixed batch through a compiled setting's step and through eager code, with the
    same training noise (inductor's random fallback must be on before it compiled)."""
    run = setting.run
    if run is None:
        return {"ok": False, "error": setting.error or "the compiled setting did not run"}
    x = next_batch(run)
    q = torch.arange(x.shape[0], device=run.device) % len(run.lambdas)
    eager = loss_function(run.net, amp=uses_amp(run.cfg, run.device), device=run.device)  # as compiled
    losses = {}
    for name, fn in (("eager", eager), ("compiled", run.loss_of)):
        torch.manual_seed(1234)
        losses[name] = fn(x, q, run.lambdas).loss.item()
    relative = abs(losses["compiled"] - losses["eager"]) / max(abs(losses["eager"]), 1e-12)
    return {**losses, "relative_difference": relative, "tolerance": tolerance, "ok": relative <= tolerance}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--model", default="s2c-conv-small")
    ap.add_argument("--pack", type=Path, default=None, help="a training pack; default: generated images")
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--crop-candidates", type=int, default=6, help="as the training configs (detail-picked)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per setting")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per setting (compiles here)")
    ap.add_argument("--settings", default=",".join(LADDER), help=f"rungs to time, of {', '.join(LADDER)}")
    ap.add_argument("--batch-multiples", default="2,4", help="--scale-setting again at these batch multiples")
    ap.add_argument("--scale-setting", default="", help="the rung run at larger batches; default: the last")
    ap.add_argument(
        "--ci", action="store_true", help="CPU size: 64 px crops, batch 4, 8 rounds; fused-adam at batch x2"
    )
    ap.add_argument("--check-compile", action="store_true", help="compiled loss must equal eager's")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="relative loss difference allowed")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.ci:
        args.patch, args.batch, args.steps, args.warmup = 64, 4, 8, 2
        args.batch_multiples, args.scale_setting = "2", "fused-adam"  # a compile per batch size is minutes here
    from s2c_pipeline.train.loop import resolve_device

    device = resolve_device(args.device)
    names = [s for s in args.settings.split(",") if s]
    unknown = set(names) - set(LADDER)
    if args.scale_setting and args.scale_setting not in LADDER:
        unknown.add(args.scale_setting)
    if unknown:
        ap.error(f"unknown settings {sorted(unknown)}; choose from {', '.join(LADDER)}")
    multiples = [int(m) for m in args.batch_multiples.split(",") if m]

    with tempfile.TemporaryDirectory() as tmp:
        pack = args.pack or generated_pack(Path(tmp), size=max(2 * args.patch, 256))
        base = TrainConfig(
            model=args.model,
            data=str(pack),
            out=str(Path(tmp) / "run"),
            steps=10**9,
            batch_size=args.batch,
            patch=args.patch,
            crop_candidates=args.crop_candidates,
            val_images=1,
            val_every=10**9,
            checkpoint_every=10**9,
            device=device.type,
        )
        if args.check_compile and "compile" in names:
            import torch._inductor.config as inductor_config

            inductor_config.fallback_random = True  # compiled code draws the noise as eager code does
        settings = [
            Setting(name, dataclasses.replace(base, out=str(Path(tmp) / name), **ladder_overrides(name, device)))
            for name in names
        ]
        top = args.scale_setting or names[-1]  # by default the most sped-up rung, its lr scaled
        settings += [
            Setting(
                f"{top} batch x{m}",
                dataclasses.replace(
                    base,
                    out=str(Path(tmp) / f"x{m}"),
                    batch_size=args.batch * m,
                    lr_reference_batch=args.batch,
                    **ladder_overrides(top, device),
                ),
            )
            for m in multiples
        ]
        measure(settings, args.warmup, args.steps)
        compiled = next((s for s in settings if s.name == "compile"), None)
        check = check_compile(compiled, args.tolerance) if args.check_compile and compiled else None
        for s in settings:
            s.close()
        rows = [s.row() for s in settings]

    baseline = rows[0].get("crops_per_s")
    for r in rows:
        if baseline and "crops_per_s" in r:
            r["speedup"] = round(r["crops_per_s"] / baseline, 2)
    print(f"\n{'setting':<26}{'batch':>6}{'step ms':>10}{'crops/s':>10}{'x first':>9}{'warm-up s':>11}")
    for r in rows:
        if "error" in r:
            print(f"{r['setting']:<26}{r['batch']:>6}  failed: {r['error']}")
            continue
        print(
            f"{r['setting']:<26}{r['batch']:>6}{r['step_ms']:>10}{r['crops_per_s']:>10}"
            f"{r.get('speedup', ''):>9}{r['warmup_s']:>11}"
        )
    if check and "error" in check:
        print(f"\ncompiled vs eager loss: not checked ({check['error']})")
    elif check:
        verdict = "OK" if check["ok"] else "FAILED"
        print(
            f"\ncompiled vs eager loss: {check['compiled']:.6f} vs {check['eager']:.6f} "
            f"(relative {check['relative_difference']:.2e}, tolerance {check['tolerance']:.0e}): {verdict}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])]),
                    "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
                    or platform.machine(),
                    "cpu_threads": torch.get_num_threads(),
                    "torch": torch.__version__,
                    "model": args.model,
                    "patch": args.patch,
                    "rows": rows,
                    "compile_check": check,
                },
                indent=2,
            )
            + "\n"
        )
    return 0 if check is None or check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Codec speed and size: our zoo beside CompressAI's bmshj2018-hyperprior and ELIC, in one run.

For every model: parameters, kMACs per pixel (counted with torch.utils.flop_counter over one
forward pass, MACs = FLOPs / 2), and the wall time of encode (g_a + entropy coding) and decode
(entropy decoding + g_s) at 768x512 and 2048x1080, on ``--threads`` CPU threads (or the GPU with
``--device cuda``). Our models use their bundled weights when they have some, else random weights
(bitstreams of random weights are small, so their entropy-coding time is a lower bound), and are
timed once per bitstream format in ``--formats``: 1 codes with the float64 probability path and
decodes with float64 g_s, 2 with the exact fixed-point path and float32 g_s (``docs/codec.md``).

    python benchmarks/codec_speed.py [--models s2c-conv-small,...] [--sizes 768x512,2048x1080]
        [--formats 1,2] [--repeats 2] [--device cpu] [--threads 2]
        [--json benchmarks/results/codec_speed.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import s2c_pipeline  # noqa: F401  (torchvision placeholder before compressai)
from s2c_pipeline.codec.model import FLOAT64_PATH, INTEGER_PATH, S2CFormer
from s2c_pipeline.codec.weights import bundled_weights, load_checkpoint
from s2c_pipeline.codec.zoo import create_model, model_names

BASELINES = ("bmshj2018-hyperprior", "elic2022-official")
PATHS = {1: FLOAT64_PATH, 2: INTEGER_PATH}


def load_ours(name: str, device: torch.device) -> tuple[S2CFormer, str]:
    for entry in bundled_weights():
        if entry.model_name == name:
            return load_checkpoint(entry.path, device)[0], "bundled"
    torch.manual_seed(0)
    model = create_model(name).to(device).eval()
    model.update()
    return model, "random"


def load_baseline(name: str, device: torch.device):
    from compressai.models import Elic2022Official
    from compressai.zoo import image_models

    torch.manual_seed(0)
    if name == "elic2022-official":  # registered as a model class, not in the pretrained zoo
        model = Elic2022Official().to(device).eval()
    else:
        model = image_models[name](quality=3, pretrained=False).to(device).eval()
    model.update(force=True)
    return model


def kmacs_per_pixel(forward, h: int, w: int) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        forward()
    return counter.get_total_flops() / 2 / (h * w) / 1e3


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_time(fn, repeats: int, device: torch.device):
    times, result = [], None
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        result = fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return min(times), result


def measure(
    name: str, sizes: list[tuple[int, int]], repeats: int, device: torch.device, formats: list[int]
) -> list[dict]:
    """One row per format for our models, one row for a baseline."""
    ours = name not in BASELINES
    model, weights = load_ours(name, device) if ours else (load_baseline(name, device), "random")
    params = sum(p.numel() for p in model.parameters())
    probe = torch.rand(1, 3, 256, 256, device=device)
    if ours:
        kmacs = kmacs_per_pixel(
            lambda: model(probe, torch.zeros(1, dtype=torch.long, device=device)), 256, 256
        )
    else:
        kmacs = kmacs_per_pixel(lambda: model(probe), 256, 256)
    rows = []
    for fmt in formats if ours else [None]:
        row = {"model": name, "format": fmt, "weights": weights, "params_m": params / 1e6}
        row |= {"kmacs_per_pixel": kmacs, "sizes": {}}
        for w, h in sizes:
            ph, pw = -(-h // 64) * 64, -(-w // 64) * 64
            torch.manual_seed(1)
            x = torch.rand(1, 3, ph, pw, device=device)
            with torch.no_grad():
                if ours:
                    path = PATHS[fmt]
                    enc_s, code = best_time(
                        lambda x=x, p=path: model.compress_latents(x, 3.0, p), repeats, device
                    )
                    dec_s, _ = best_time(lambda c=code: model.decompress_latents(c, 3.0), repeats, device)
                    nbytes = sum(map(len, code.strings))
                else:
                    enc_s, out = best_time(lambda x=x: model.compress(x), repeats, device)
                    dec_s, _ = best_time(
                        lambda out=out: model.decompress(out["strings"], out["shape"]), repeats, device
                    )
                    nbytes = sum(len(s[0]) for s in out["strings"])
            row["sizes"][f"{w}x{h}"] = {"encode_s": enc_s, "decode_s": dec_s, "bytes": nbytes}
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join([*model_names(), *BASELINES]))
    parser.add_argument("--sizes", default="768x512,2048x1080")
    parser.add_argument("--formats", default="1,2", help="bitstream formats to time our models with")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/codec_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    formats = [int(f) for f in args.formats.split(",")]
    rows = []
    for name in args.models.split(","):
        rows.extend(measure(name, sizes, args.repeats, device, formats))
        print(f"measured {name}", flush=True)
    ref = next((r for r in rows if r["model"] == "bmshj2018-hyperprior"), None)
    header = f"{'model':<22} {'fmt':>3} {'weights':>7} {'params':>8} {'kMAC/px':>8}"
    for w, h in sizes:
        header += f" {f'enc {w}x{h}':>14} {f'dec {w}x{h}':>14}"
    if ref:
        header += f" {'dec/bmshj':>9}"
    print(f"\ndevice: {device} ({platform.processor() or platform.machine()}), threads: {args.threads}")
    print(header)
    for r in rows:
        fmt = r["format"] or "-"
        line = (
            f"{r['model']:<22} {fmt:>3} {r['weights']:>7} {r['params_m']:>7.2f}M {r['kmacs_per_pixel']:>8.1f}"
        )
        for w, h in sizes:
            s = r["sizes"][f"{w}x{h}"]
            line += f" {s['encode_s']:>13.3f}s {s['decode_s']:>13.3f}s"
        if ref:
            key = f"{sizes[0][0]}x{sizes[0][1]}"
            line += f" {r['sizes'][key]['decode_s'] / ref['sizes'][key]['decode_s']:>9.2f}"
        print(line)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "device": str(device),
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "command": shlex.join(["python", *sys.argv]),
    }
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

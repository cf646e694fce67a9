"""Where format 2's CPU decode time goes, and what the banded kernels buy, side by side in one run.

For each model (random weights, seed 0; the bundled ones for ``s2c-conv-small``) and one image size:

- the probability path (``decode_y``: rANS decoding and the fixed-point networks), with the
  convolutions in row bands as shipped (``integer.IM2COL_BYTES``) and as one call each;
- ``g_s`` in float32 three ways: banded with its default tiles (``BANDED_SYNTHESIS_TILE``, as
  shipped), banded with the module path's 64-latent tiles (which recompute their margins), and
  the module on PyTorch's own convolutions (format 2's CPU synthesis before the banded one).

Each figure is the best of ``--repeats`` after one warm-up. The latents are the model's own code
of a noise image, so the entropy decoding is that of a random-weight model (a lower bound).

    python benchmarks/decode_breakdown.py [--models s2c-conv,s2c-hybrid] [--size 2048x1080]
        [--repeats 2] [--threads 2] [--json benchmarks/results/decode_breakdown.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import time
from pathlib import Path

import torch
from codec_speed import load_ours  # this folder's: bundled weights where a model has them, else seed 0

import s2c_pipeline  # noqa: F401  (torchvision placeholder before compressai)
from s2c_pipeline.codec import integer
from s2c_pipeline.codec.model import SYNTHESIS_TILE, S2CFormer


def best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


@contextlib.contextmanager
def one_call_convolutions():
    budget = integer.IM2COL_BYTES
    integer.IM2COL_BYTES = 1 << 62
    try:
        yield
    finally:
        integer.IM2COL_BYTES = budget


def module_synthesis(model: S2CFormer, y_hat: torch.Tensor) -> torch.Tensor:
    """The float32 module on PyTorch's own convolutions, in the module path's tiles."""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        synthesis = model._decoding_synthesis(torch.float32)
        return model._synthesize_tiles(synthesis, y_hat, torch.device("cpu"), SYNTHESIS_TILE)
    finally:
        torch.backends.mkldnn.enabled = enabled


def measure(name: str, width: int, height: int, repeats: int) -> dict:
    model, _ = load_ours(name, torch.device("cpu"))
    torch.manual_seed(1)
    x = torch.rand(1, 3, -(-height // 64) * 64, -(-width // 64) * 64)
    with torch.no_grad():
        code = model.compress_latents(x, 3.0, "integer")
        y_hat = (model.decode_y(code) * model.gains(3.0)[1][:, None, None]).float()
        row = {"model": name, "probability_path_s": best(lambda: model.decode_y(code), repeats)}
        with one_call_convolutions():
            row["probability_path_one_call_s"] = best(lambda: model.decode_y(code), repeats)
        synthesize = model.synthesize
        row["g_s_banded_s"] = best(lambda: synthesize(y_hat, dtype=torch.float32), repeats)
        row["g_s_banded_64_tiles_s"] = best(
            lambda: synthesize(y_hat, tile=SYNTHESIS_TILE, dtype=torch.float32), repeats
        )
        row["g_s_module_s"] = best(lambda: module_synthesis(model, y_hat), repeats)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="s2c-conv,s2c-hybrid")
    parser.add_argument("--size", default="2048x1080")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/decode_breakdown.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split("x"))
    rows = []
    for name in args.models.split(","):
        rows.append(measure(name, width, height, args.repeats))
        print(f"measured {name}", flush=True)
    print(f"\n{args.size}, {args.threads} threads, seconds (best of {args.repeats}):")
    print(f"{'model':<20} {'prob path':>9} {'one call':>9} {'g_s banded':>10} {'64 tiles':>9} {'module':>9}")
    for r in rows:
        print(
            f"{r['model']:<20} {r['probability_path_s']:>9.2f} {r['probability_path_one_call_s']:>9.2f} "
            f"{r['g_s_banded_s']:>10.2f} {r['g_s_banded_64_tiles_s']:>9.2f} {r['g_s_module_s']:>9.2f}"
        )
    meta = {"size": args.size, "threads": args.threads, "torch": torch.__version__}
    meta["command"] = shlex.join(["python", *sys.argv])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

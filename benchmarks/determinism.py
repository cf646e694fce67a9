"""Does the decoder rebuild the encoder's CDF indexes? Measured across paths, threads, layouts, batches.

For one photo (a training photo, ``rocket`` from scikit-image, resized to 768x512: nothing here is
chosen by it) and one model (the bundled weights, or ``--model``'s config with random weights:
seed 0), each configuration runs in its own process, codes the photo at quality 3, records
every CDF index and mean the probability path produces, decodes the reference stream of its path,
and synthesizes pixels. The table compares each configuration with its path's reference (1 thread,
plain layout, batch 1; the float32 row with the float64 reference, as a plain CompressAI model would
be compared):

- ``float64``: format 1's decoder (probability path and g_s in float64, on the CPU);
- ``float32``: the same networks in float32, what a plain CompressAI model does (the counter-example);
- ``integer``: format 2's exact fixed-point probability path, and float32 g_s; also with every
  network input in channels-last layout, and inside a batch of 4 (three other images beside it).

    python benchmarks/determinism.py [--model s2c-hybrid] [--device cpu]
        [--json benchmarks/results/determinism.json]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_WORKER = r"""
import sys, contextlib, copy, numpy as np, torch
import s2c_pipeline
from PIL import Image
import skimage.data
from s2c_pipeline.codec import entropy, integer, model as model_mod
from s2c_pipeline.codec.image_codec import ImageCodec, _pad, _to_tensor
from s2c_pipeline.codec.zoo import create_model
from s2c_pipeline.imaging import load_image

path, threads, variant, device, out, stream_in, name = sys.argv[1:8]
torch.set_num_threads(int(threads))
records = []
if name == "bundled":
    model = ImageCodec.load(device=device).model
else:
    torch.manual_seed(0)
    model = create_model(name).to(device).eval()
    model.update()
coding_path = "integer" if path == "integer" else "float64"
if path == "integer":
    model.integer_coder().trace = records
    if variant != "plain":
        run = integer.IntegerNet._run
        def patched(self, x):
            if variant == "channels_last":
                return run(self, x.contiguous(memory_format=torch.channels_last))
            others = torch.randint(-2**16, 2**16, (3, *x.shape[1:]), device=x.device).to(x.dtype)
            return run(self, torch.cat([x, others]))[:1]  # batch of 4, ours first
        integer.IntegerNet._run = patched
else:
    orig = entropy.GridGaussianConditionalLatentCodec._coding_params
    def recording(self, ctx):
        scales, means = self._chunk(self.entropy_parameters(ctx))
        records.append((self.gaussian_conditional.build_indexes(scales), means.double()))
        return orig(self, ctx)
    entropy.GridGaussianConditionalLatentCodec._coding_params = recording
    if path == "float32":  # what a plain CompressAI model does: the probability path in float32
        model_mod.float64_default = contextlib.nullcontext
        inner = copy.deepcopy(model.latent_codec).cpu().float().eval()
        class Float32Coder:
            def compress(self, y):
                return inner.compress(y.float())
            def decompress(self, strings, shape):
                return inner.decompress(strings, shape)
        model._caches["coder"] = Float32Coder()
photo = Image.fromarray(skimage.data.rocket()).resize((768, 512), Image.LANCZOS)
x = _pad(_to_tensor(load_image(photo).rgb, torch.device(device)))
code = model.compress_latents(x, 3.0, path=coding_path)
encoded = list(records)  # decoding below records again
x_hat = model.decompress_latents(code, 3.0)
np.savez(out, indexes=np.concatenate([r[0].cpu().numpy().ravel() for r in encoded]),
         means=np.concatenate([r[1].cpu().numpy().ravel() for r in encoded]),
         pixels=(x_hat * 255).round().cpu().numpy().astype(np.uint8))
open(out + ".stream", "wb").write(b"".join(len(s).to_bytes(4, "big") + s for s in code.strings))
if stream_in != "-":
    data = open(stream_in, "rb").read(); strings = []
    while data:
        n = int.from_bytes(data[:4], "big"); strings.append(data[4:4 + n]); data = data[4 + n:]
    other = model_mod.LatentCode(tuple(strings), code.padded_height, code.padded_width, path=coding_path)
    try:
        y = model.decode_y(other)
        print("equal" if torch.equal(y.double().cpu(), code.y_hat.double().cpu()) else "different")
    except Exception as exc:
        print("failed:" + type(exc).__name__)
"""

CONFIGS = [
    ("float64", 1, "plain"),
    ("float64", 2, "plain"),
    ("float32", 1, "plain"),
    ("float32", 2, "plain"),
    ("integer", 1, "plain"),
    ("integer", 2, "plain"),
    ("integer", 2, "channels_last"),
    ("integer", 2, "batch4"),
]


def run(
    config: tuple[str, int, str], model: str, device: str, work: Path, stream_in: str = "-"
) -> tuple[dict, str]:
    path, threads, variant = config
    out = work / f"{path}-{threads}-{variant}.npz"
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, path, str(threads), variant, device, str(out), stream_in, model],
        capture_output=True,
        text=True,
        check=True,
    )
    data = np.load(out)
    return {k: data[k] for k in data.files}, proc.stdout.strip()


def layer_bounds(name: str) -> dict[str, list[float]]:
    """log2 of ``IntegerConv2d.bound`` for every layer of the model's fixed-point path."""
    import math

    import torch

    import s2c_pipeline  # noqa: F401  (torchvision placeholder before compressai)
    from s2c_pipeline.codec.image_codec import ImageCodec
    from s2c_pipeline.codec.zoo import create_model

    if name == "bundled":
        model = ImageCodec.load(device="cpu").model
    else:
        torch.manual_seed(0)
        model = create_model(name).eval()
        model.update()
    coder = model.integer_coder()
    return {name: [math.log2(c.bound) for c in net.convs] for name, net in coder.nets().items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled", help="a zoo config (random weights) or 'bundled'")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/determinism.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        refs = {p: run((p, 1, "plain"), args.model, args.device, work) for p in ("float64", "integer")}
        streams = {p: str(work / f"{p}-1-plain.npz.stream") for p in refs}
        for config in CONFIGS:
            path, threads, variant = config
            base = "integer" if path == "integer" else "float64"
            rec, decoded = run(config, args.model, args.device, work, streams[base])
            reference = refs[base][0]
            grid = 2.0**-6 if base == "float64" else 2.0**-12
            pixel_diff = np.abs(rec["pixels"].astype(int) - reference["pixels"].astype(int))
            rows.append(
                {
                    "path": path,
                    "threads": threads,
                    "variant": variant,
                    "symbols": int(rec["indexes"].size),
                    "max_abs_mean_diff": float(np.abs(rec["means"] - reference["means"]).max()),
                    "index_mismatches": int((rec["indexes"] != reference["indexes"]).sum()),
                    "snapped_mean_mismatches": int(
                        (np.round(rec["means"] / grid) != np.round(reference["means"] / grid)).sum()
                    ),
                    "decodes_reference_stream": decoded,
                    "pixel_values_different": int((pixel_diff > 0).sum()),
                    "max_pixel_diff": int(pixel_diff.max()),
                }
            )
    print(f"model: {args.model}, device: {args.device}")
    print(
        f"{'path':<8} {'threads':>7} {'variant':<13} {'symbols':>8} {'max|dmean|':>11} {'idx diff':>8} "
        f"{'mean diff':>9} {'px diff':>7} {'max px':>6}  decode of the reference stream"
    )
    for r in rows:
        print(
            f"{r['path']:<8} {r['threads']:>7} {r['variant']:<13} {r['symbols']:>8} "
            f"{r['max_abs_mean_diff']:>11.3g} {r['index_mismatches']:>8} {r['snapped_mean_mismatches']:>9} "
            f"{r['pixel_values_different']:>7} {r['max_pixel_diff']:>6}  {r['decodes_reference_stream']}"
        )
    bounds = layer_bounds(args.model)
    print("\nworst-case |sum| of each fixed-point network's layers (log2; exact below 53, limit 50):")
    for name, values in bounds.items():
        print(f"  {name:<24} {' '.join(f'{v:.1f}' for v in values)}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "model": args.model,
        "device": args.device,
        "command": shlex.join(["python", *sys.argv]),
        "references": "float64 and float32 rows: float64, 1 thread; integer rows: integer, 1 thread",
    }
    args.json.write_text(json.dumps({"meta": meta, "rows": rows, "log2_bounds": bounds}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does the decoder rebuild the encoder's CDF indexes? Measured across thread counts and precisions.

For one photo, each configuration (coding precision x torch threads [x device]) runs in its own
process and records every (scale, mean) the probability path produces while coding. The table
compares each configuration with the reference (float64, 1 thread): the largest differences, how
many CDF indexes and snapped means differ, and whether a stream encoded by one decodes in the other.

    python benchmarks/determinism.py [--model s2c-conv-small] [--json benchmarks/results/determinism.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_WORKER = r"""
import sys, numpy as np, torch
import s2c_pipeline
from s2c_pipeline.codec import entropy, model as model_mod
from s2c_pipeline.codec.image_codec import ImageCodec, _pad, _to_tensor
from s2c_pipeline.imaging import load_image
from s2c_pipeline.photos import evaluation_photos

precision, threads, out, stream_in = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
torch.set_num_threads(threads)
records = []
orig = entropy.GridGaussianConditionalLatentCodec._coding_params
def recording(self, ctx):
    scales, means = self._chunk(self.entropy_parameters(ctx))
    records.append((scales.double().numpy().ravel(), means.double().numpy().ravel(),
                    self.gaussian_conditional.build_indexes(scales).numpy().ravel()))
    return orig(self, ctx)
entropy.GridGaussianConditionalLatentCodec._coding_params = recording
codec = ImageCodec.load(device="cpu")
if precision == "float32":
    # What a plain CompressAI model does: the probability path in float32.
    model_mod.float64_default = __import__("contextlib").nullcontext
    inner = __import__("copy").deepcopy(codec.model.latent_codec).cpu().float().eval()
    class Float32Coder:
        def compress(self, y):
            return inner.compress(y.float())
        def decompress(self, strings, shape):
            return inner.decompress(strings, shape)
    codec.model._caches["coder"] = Float32Coder()
photo = evaluation_photos()[0]
image = load_image(photo.load())
x = _pad(_to_tensor(image.rgb, torch.device("cpu")))
code = codec.model.compress_latents(x, 3.0)
np.savez(out, scales=np.concatenate([r[0] for r in records]), means=np.concatenate([r[1] for r in records]),
         indexes=np.concatenate([r[2] for r in records]))
open(out + ".stream", "wb").write(b"".join(len(s).to_bytes(4, "big") + s for s in code.strings))
if stream_in != "-":
    data = open(stream_in, "rb").read(); strings = []
    while data:
        n = int.from_bytes(data[:4], "big"); strings.append(data[4:4 + n]); data = data[4 + n:]
    other = model_mod.LatentCode(tuple(strings), code.padded_height, code.padded_width)
    try:
        y = codec.model.decode_y(other)
        print("equal" if torch.equal(y.double(), code.y_hat.double()) else "different")
    except Exception as exc:
        print("failed:" + type(exc).__name__)
"""


def run(precision: str, threads: int, work: Path, stream_in: str = "-") -> tuple[dict, str]:
    out = work / f"{precision}-{threads}.npz"
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER, precision, str(threads), str(out), stream_in],
        capture_output=True, text=True, check=True,
    )
    data = np.load(out)
    return {k: data[k] for k in data.files}, proc.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/determinism.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        reference, _ = run("float64", 1, work)
        ref_stream = str(work / "float64-1.npz.stream")
        for precision in ("float64", "float32"):
            for threads in (1, 2):
                rec, decoded = run(precision, threads, work, ref_stream)
                grid = 2.0**-6
                rows.append(
                    {
                        "precision": precision,
                        "threads": threads,
                        "symbols": int(rec["indexes"].size),
                        "max_abs_scale_diff": float(np.abs(rec["scales"] - reference["scales"]).max()),
                        "max_abs_mean_diff": float(np.abs(rec["means"] - reference["means"]).max()),
                        "index_mismatches": int((rec["indexes"] != reference["indexes"]).sum()),
                        "snapped_mean_mismatches": int(
                            (np.round(rec["means"] / grid) != np.round(reference["means"] / grid)).sum()
                        ),
                        "decodes_reference_stream": decoded,
                    }
                )
    print(f"{'precision':<9} {'threads':>7} {'symbols':>8} {'max|dscale|':>12} {'max|dmean|':>11} "
          f"{'idx diff':>8} {'mean diff':>9}  decode of float64/1-thread stream")
    for r in rows:
        print(f"{r['precision']:<9} {r['threads']:>7} {r['symbols']:>8} {r['max_abs_scale_diff']:>12.3g} "
              f"{r['max_abs_mean_diff']:>11.3g} {r['index_mismatches']:>8} {r['snapped_mean_mismatches']:>9}  "
              f"{r['decodes_reference_stream']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"reference": "float64, 1 thread", "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

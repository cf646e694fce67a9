"""Step sizes for encoder-side latent refinement (``codec/refine.py``), fitted on validation photos.

For three training photos (never the evaluation photos: this tunes the encoder, and the
evaluation must not see its tuning; the pack's validation split is a star field, a retina and a
rocket, too unlike photographs), each downscaled to the evaluation photos' 768 px width and
centre-cropped, each quality level and each step size:
encode with ``--steps`` refinement steps, decode, and measure the real cost ``lambda * 255^2 * MSE +
bpp`` against the unrefined stream. The best step size per level is fitted as
``lr_top * (lambda / top lambda) ** exponent`` in log space; ``RefineSettings``' defaults come
from this fit.

    python benchmarks/refine_tuning.py [--json benchmarks/results/refine_tuning.json]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.codec.refine import RefineSettings, quality_lambda
from s2c_pipeline.imaging import ColourHandling, PreparedImage
from s2c_pipeline.train.datapack import DataPack

PACK = Path("data-cache/train-pack-enlightenment.tar")
PHOTOS = "enlightenment-data--Lichen-Branches,enlightenment-data--Spruce-Needles,libjxl-testdata--flower"
WIDTH = 768


def scene(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """The whole photo at ``WIDTH`` px wide (as the evaluation photos are), centre-cropped: a crop
    of the full-size wallpaper would be a smooth detail, far cheaper to code than a scene."""
    image = Image.fromarray(rgb)
    image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.Resampling.LANCZOS)
    rgb = np.asarray(image)
    top, left = (rgb.shape[0] - height) // 2, (rgb.shape[1] - width) // 2
    return np.ascontiguousarray(rgb[top : top + height, left : left + width])


def cost(codec: ImageCodec, image: PreparedImage, quality: float, refine: RefineSettings | None) -> dict:
    t0 = time.perf_counter()
    data = codec.encode(image, quality, refine)
    seconds = time.perf_counter() - t0
    decoded = codec.decode(data).rgb.astype(np.float64)
    mse = float(np.mean((decoded - image.rgb) ** 2)) / 255**2
    bpp = len(data) * 8 / (image.width * image.height)
    lam = quality_lambda(codec.model.config.lambdas, quality)
    return {"bpp": bpp, "psnr": -10 * math.log10(mse), "cost": lam * 255**2 * mse + bpp, "encode_s": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", type=Path, default=PACK)
    parser.add_argument("--photos", default=PHOTOS, help="names of pack photos, comma-separated")
    parser.add_argument("--crop", default="384x512", help="HxW centre crop of each photo")
    parser.add_argument("--qualities", default="4,6,7,8")
    parser.add_argument("--lrs", default="0.003,0.01,0.03,0.1")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.crop.split("x"))
    qualities = [float(q) for q in args.qualities.split(",")]
    lrs = [float(v) for v in args.lrs.split(",")]
    pack = DataPack(args.pack)
    names = args.photos.split(",")
    index = {e.name: i for i, e in enumerate(pack.entries)}
    unknown = [n for n in names if n not in index]
    if unknown:
        parser.error(f"not in {args.pack}: {', '.join(unknown)}")
    images = [
        PreparedImage(scene(pack.image(index[n]), height, width), "RGB", ColourHandling.RGB, None, None, None)
        for n in names
    ]
    codec = ImageCodec.load(device="cpu")
    lambdas = codec.model.config.lambdas
    rows = []
    for quality in qualities:
        for name, image in zip(names, images, strict=True):
            plain = cost(codec, image, quality, None)
            for lr in lrs:
                refined = cost(codec, image, quality, RefineSettings(args.steps, lr=lr, lr_exponent=0.0))
                saved = 100 * (plain["cost"] - refined["cost"]) / plain["bpp"]
                rows.append({"image": name, "quality": quality, "lr": lr, "plain": plain, "refined": refined,
                             "cost_saved_pct_of_rate": saved})
                print(f"q{quality:g} {name[:28]:28s} lr {lr:<6g} {plain['bpp']:.4f}/{plain['psnr']:.2f} dB -> "
                      f"{refined['bpp']:.4f}/{refined['psnr']:.2f} dB  cost saved {saved:+.2f} % of rate  "
                      f"({refined['encode_s']:.0f} s)", flush=True)
    best = {}
    for quality in qualities:
        means = {lr: float(np.mean([r["cost_saved_pct_of_rate"] for r in rows
                                    if r["quality"] == quality and r["lr"] == lr])) for lr in lrs}
        lr = max(means, key=means.get)
        best[quality] = {"lr": lr, "mean_cost_saved_pct_of_rate": means}
    top = max(lambdas)
    xs = np.log([quality_lambda(lambdas, q) / top for q in qualities])
    ys = np.log([best[q]["lr"] for q in qualities])
    exponent, intercept = np.polyfit(xs, ys, 1)
    fit = {"lr_top": float(math.exp(intercept)), "lr_exponent": float(exponent)}
    print("\nbest step size per quality (mean cost saved, % of the plain rate, per step size):")
    for quality in qualities:
        cells = "  ".join(f"{lr:g}: {v:+.2f}" for lr, v in best[quality]["mean_cost_saved_pct_of_rate"].items())
        print(f"  q{quality:g}: best {best[quality]['lr']:g}   {cells}")
    print(f"fit: lr = {fit['lr_top']:.4f} * (lambda / {top:g}) ** {fit['lr_exponent']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "command": "python benchmarks/refine_tuning.py " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("json", "pack")),
            "weights_id": codec.weights.weights_id,
            "images": names, "crop": args.crop, "steps": args.steps,
            "rows": rows, "best": {f"{q:g}": b for q, b in best.items()}, "fit": fit,
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

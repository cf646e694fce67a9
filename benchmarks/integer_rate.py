"""What the exact fixed-point probability path (format 2) costs in rate: BD-rate against format 1.

Both formats use the same weights and the same g_a; only the entropy model's arithmetic differs
(format 1: float64, means on a 2**-6 grid; format 2: fixed point at 2**-12) and the decoder's g_s
(float64 against float32). Each photo is coded at every quality level with both formats; PSNR is
measured on the decoded pixels. The budget in issue #19 is +1 %.

Photos: the validation split (``s2c_pipeline.photos.validation_photo_files``) when it has been
fetched, else the training photos that ship in scikit-image (``package_training_photos``) as a
stand-in, said so in the output; ``--count`` photos spread evenly over the sorted split (its
neighbours are often one package's near-duplicates). Never the evaluation photos: this result decides whether format 2
is acceptable. Each photo is downscaled to at most ``--max-side`` pixels to keep the run short.

    python benchmarks/integer_rate.py [--photos data-cache/photos] [--count 6] [--max-side 512]
        [--json benchmarks/results/integer_rate.json]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import s2c_pipeline  # noqa: F401  (torchvision placeholder before compressai)
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.evaluate.bdrate import bd_rate
from s2c_pipeline.imaging import load_image


def photos(root: Path, count: int) -> tuple[str, list[tuple[str, Image.Image]]]:
    from s2c_pipeline.photos import package_training_photos, validation_photo_files

    try:
        files = validation_photo_files(root)
        files = files[:: max(1, len(files) // count)][:count]  # spread over the split, not its first package
        return "validation split", [(f.stem, Image.open(f).convert("RGB")) for f in files]
    except FileNotFoundError:
        chosen = package_training_photos()[:count]
        return "stand-in: scikit-image training photos", [(p.name, p.load().convert("RGB")) for p in chosen]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=Path("data-cache/photos"))
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/integer_rate.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    codec = ImageCodec.load(device="cpu")
    source, images = photos(args.photos, args.count)
    levels = [float(q) for q in range(1, codec.num_qualities + 1)]
    rows, curves = [], {1: [], 2: []}
    for name, image in images:
        image.thumbnail((args.max_side, args.max_side), Image.LANCZOS)
        prepared = load_image(image)
        pixels = prepared.width * prepared.height
        per_format = {}
        for fmt in (1, 2):
            points = []
            for q in levels:
                data = codec.encode(prepared, q, format_version=fmt)
                decoded = codec.decode(data)
                points.append((len(data) * 8 / pixels, psnr(decoded.rgb, prepared.rgb)))
            per_format[fmt] = points
            curves[fmt].append(points)
        result = bd_rate(per_format[1], per_format[2], label=name, warn=False)
        rows.append({"photo": name, "size": [prepared.width, prepared.height], "bd_rate_percent": result.value_pct,
                     "format1": per_format[1], "format2": per_format[2]})  # fmt: skip
        print(
            f"{name:<40} {prepared.width}x{prepared.height}  BD-rate format 2 vs 1: {result.value_pct:+.3f} %"
        )
    mean = {
        fmt: [tuple(np.mean([c[i] for c in curves[fmt]], axis=0)) for i in range(len(levels))]
        for fmt in (1, 2)
    }
    overall = bd_rate(mean[1], mean[2], label="mean curve").value_pct
    per_image = float(np.mean([r["bd_rate_percent"] for r in rows]))
    print(f"photos: {source} ({len(rows)}); BD-rate (PSNR) of format 2 against format 1: mean curve "
          f"{overall:+.3f} %, mean of per-photo values {per_image:+.3f} %")  # fmt: skip
    meta = {
        "photos": source,
        "weights": f"{codec.model_name}@{codec.weights.weights_id}",
        "command": shlex.join(["python", *sys.argv]),
        "bd_rate_mean_curve_percent": overall,
        "bd_rate_mean_per_photo_percent": per_image,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

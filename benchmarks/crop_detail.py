"""How detailed the training crops are next to the evaluation photos, per ``crop_candidates``.

Detail is ``s2c_pipeline.train.loop.detail``: the mean absolute difference between neighbouring
pixel values of a crop. The wallpapers of the training pack are mostly smooth (sky, bokeh), the
evaluation photos are not; a model trained on plain random crops never learns to code texture.
This table is how ``crop_candidates`` of ``configs/train-small-detail-cpu.yaml`` was chosen.

    python benchmarks/crop_detail.py [--pack data-cache/train-pack-enlightenment.tar]
        [--candidates 1,3,6] [--crops 400] [--patch 128] [--json benchmarks/results/crop_detail.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from s2c_pipeline.photos import evaluation_photos
from s2c_pipeline.train.crops import CropSampler, detail
from s2c_pipeline.train.datapack import DataPack


def summary(values: list[float]) -> dict[str, float]:
    q = np.percentile(values, [25, 50, 75])
    return {"p25": round(float(q[0]), 2), "median": round(float(q[1]), 2), "p75": round(float(q[2]), 2),
            "mean": round(float(np.mean(values)), 2)}


def evaluation_crops(count_per_photo: int, patch: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    values = []
    for photo in evaluation_photos():
        image = np.asarray(photo.load().convert("RGB"))
        for _ in range(count_per_photo):
            y = rng.integers(image.shape[0] - patch + 1)
            x = rng.integers(image.shape[1] - patch + 1)
            values.append(detail(image[y : y + patch, x : x + patch]))
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, default=Path("data-cache/train-pack-enlightenment.tar"))
    parser.add_argument("--candidates", default="1,3,6")
    parser.add_argument("--crops", type=int, default=400)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--val-images", type=int, default=4, help="held-out pack images, as in training")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/crop_detail.json"))
    args = parser.parse_args()

    if not args.pack.exists():
        raise SystemExit(f"{args.pack} is missing; build it with `make pack-enlightenment` (or pass --pack)")
    pack = DataPack(args.pack)
    rows = {"evaluation photos (uniform crops)": summary(evaluation_crops(args.crops // 8, args.patch, seed=0))}
    for n in (int(c) for c in args.candidates.split(",")):
        sampler = CropSampler(pack, list(range(len(pack) - args.val_images)), args.patch, seed=0, candidates=n)
        rows[f"{args.pack.name}, crop_candidates={n}"] = summary([detail(sampler.crop()) for _ in range(args.crops)])

    print(f"detail of {args.patch}px crops (mean |neighbour difference|, 8-bit values)")
    print(f"{'crops':60} {'p25':>6} {'median':>7} {'p75':>6} {'mean':>6}")
    for name, s in rows.items():
        print(f"{name:60} {s['p25']:6.1f} {s['median']:7.1f} {s['p75']:6.1f} {s['mean']:6.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"patch": args.patch, "crops": args.crops, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where a model's quality is lost: the transforms or the quantiser, on the evaluation photos.

For the lowest and highest quality level of each checkpoint: PSNR of g_s(g_a(x)) with no
quantisation (the transforms' ceiling: no rate can do better), then with the latent rounded
(what coding gives, up to the entropy model's mean offsets). When the two are close at the top
level, more bits cannot help: the transforms are what needs training. Crops are the photos cut
to multiples of 64.

    python benchmarks/transform_ceiling.py [--weights FILE.pt ...] [--json benchmarks/results/transform_ceiling.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.photos import evaluation_photos


def psnr(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    return float(-10 * torch.log10(((x_hat.clamp(0, 1) - x) ** 2).mean()))


@torch.no_grad()
def ceilings(codec: ImageCodec, photos: list[torch.Tensor]) -> list[dict[str, float]]:
    model = codec.model
    rows = []
    for level in (1, model.config.num_qualities):
        gain, inverse = (g.float()[None, :, None, None] for g in model.gains(float(level)))
        unquantised, rounded = [], []
        for x in photos:
            y = model.g_a(x) * gain
            unquantised.append(psnr(model.g_s(y * inverse), x))
            rounded.append(psnr(model.g_s(torch.round(y) * inverse), x))
        rows.append({"quality": level, "unquantised_psnr": round(float(np.mean(unquantised)), 2),
                     "rounded_psnr": round(float(np.mean(rounded)), 2)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, action="append", default=[],
                        help="checkpoint file (repeatable); default: the bundled default model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/transform_ceiling.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    photos = []
    for photo in evaluation_photos():
        image = np.asarray(photo.load().convert("RGB"))
        h, w = image.shape[0] // 64 * 64, image.shape[1] // 64 * 64
        photos.append(torch.from_numpy(image[:h, :w].copy()).permute(2, 0, 1)[None].float() / 255)
    codecs = [ImageCodec.load(weights_file=w, device="cpu") for w in args.weights] or [ImageCodec.load(device="cpu")]
    results = []
    print(f"mean PSNR (dB) over {len(photos)} evaluation photos")
    print(f"{'model':16} {'weights':17} {'quality':>7} {'unquantised':>12} {'rounded':>8}")
    for codec in codecs:
        for row in ceilings(codec, photos):
            results.append({"model": codec.model_name, "weights_id": codec.weights.weights_id, **row})
            print(f"{codec.model_name:16} {codec.weights.weights_id:17} {row['quality']:7d} "
                  f"{row['unquantised_psnr']:12.2f} {row['rounded_psnr']:8.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

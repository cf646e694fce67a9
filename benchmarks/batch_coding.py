"""Batched coding: images of one padded size one by one vs ``--batch-size`` at a time, in one run.

What a pipeline actor does per image (``encode_timed``: encode + decode-verify) on the device at
hand, over the same crops of the evaluation photos, alternating the two ways ``--repeats`` times
and keeping the best of each (a shared machine's load changes from minute to minute). Batching
shares the g_a and g_s passes; entropy coding stays per image either way, so the gain is the
transforms' share of the time, and mostly a GPU's (on a CPU the convolutions already use the
cores). Run it where a GPU is, with ``--device cuda``, to see that side.

    python benchmarks/batch_coding.py [--device cpu|cuda] [--batch-sizes 1,4,8] [--size 256]
        [--images 16] [--repeats 2] [--json benchmarks/results/batch_coding_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.imaging import PreparedImage, load_image
from s2c_pipeline.photos import evaluation_photos


def crops(count: int, size: int) -> list[PreparedImage]:
    """``count`` size x size crops, taken in turn from the evaluation photos at shifting offsets."""
    import io

    photos = [p.load().convert("RGB") for p in evaluation_photos()]
    out = []
    for i in range(count):
        photo = photos[i % len(photos)]
        step = i // len(photos)
        left = min(step * size // 2, photo.width - size)
        top = min(step * size // 3, photo.height - size)
        buffer = io.BytesIO()
        photo.crop((left, top, left + size, top + size)).save(buffer, format="PNG")
        out.append(load_image(buffer.getvalue()))
    return out


def seconds(codec: ImageCodec, images: list[PreparedImage], batch: int, quality: float) -> float:
    if codec.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(0, len(images), batch):
        codec.encode_timed_batch(images[i : i + batch], quality)
    if codec.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-sizes", default="1,4,8")
    parser.add_argument("--size", type=int, default=256, help="side of the square crops (px)")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--quality", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="default: benchmarks/results/batch_coding_DEVICE.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    codec = ImageCodec.load(device=args.device)
    images = crops(args.images, args.size)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    codec.encode_timed_batch(images[: max(sizes)], args.quality)  # warm-up: caches, kernels
    best = {b: float("inf") for b in sizes}
    for _ in range(args.repeats):
        for b in sizes:
            best[b] = min(best[b], seconds(codec, images, b, args.quality))
    base = best[sizes[0]]
    rows = [
        {"batch_size": b, "seconds": s, "images_per_s": len(images) / s, "speedup": base / s}
        for b, s in best.items()
    ]
    device = torch.cuda.get_device_name(0) if codec.device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(
        f"{len(images)} crops of {args.size}x{args.size} from the evaluation photos, {codec.model_name} "
        f"weights {codec.weights.weights_id}, quality {args.quality:g}, {device}, best of {args.repeats}"
    )
    print(f"{'batch':>5} {'seconds':>8} {'img/s':>7} {f'vs batch {sizes[0]}':>12}")
    for r in rows:
        print(f"{r['batch_size']:>5} {r['seconds']:>8.2f} {r['images_per_s']:>7.2f} {r['speedup']:>11.2f}x")
    path = args.json or Path(f"benchmarks/results/batch_coding_{codec.device.type}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "images": len(images),
        "size": args.size,
        "model": codec.model_name,
        "weights_id": codec.weights.weights_id,
        "quality": args.quality,
        "device": device,
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "rows": rows,
    }
    path.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()

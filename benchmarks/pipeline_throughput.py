"""Pipeline throughput: ``compress`` on Ray actors beside a bare in-process encode loop, in one run.

The images are the sample shards (the evaluation photos via ``build_sample_shards``, each photo
``--copies`` times). Both sides do the same work per image: load the image and ``encode_timed``
(encode + the decode-verify). The pipeline also computes PSNR, MS-SSIM and hashes, builds tars and
manifests, and commits through storage: that overhead is what is measured.

Fair by core budget: N actors of 1 CPU (1 torch thread) are compared with N bare-loop processes
of 1 thread each, run at the same time on disjoint slices of the images (the best the same cores
can do without the pipeline). Two pipeline rates are given: end to end (wall time of ``compress``,
actor start-up and model loading included) and steady (wall time minus the time until the actors
were ready, which a long archive job amortises). Bare and pipeline runs alternate ``--repeats``
times and the best of each is kept, since a shared machine's load changes from minute to minute.
``codec share`` is load-independent: the time the actors spent inside the codec (encode + verify
decode, from the manifests) over actors x steady wall time; the rest is pipeline overhead.

    python benchmarks/pipeline_throughput.py [--copies 2] [--shards 4] [--quality 3] [--repeats 2]
        [--weights FILE.pt] [--actors 1,2] [--json benchmarks/results/pipeline_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray
import torch

from s2c_pipeline.codec.weights import export_checkpoint, find_weights
from s2c_pipeline.codec.zoo import create_model
from s2c_pipeline.photos import evaluation_photos
from s2c_pipeline.pipeline import RunConfig, compress
from s2c_pipeline.shards import image_member, read_shard
from s2c_pipeline.shards.samples import build_sample_shards


def sample_images(folder: Path, copies: int, shards: int) -> tuple[list[Path], list[bytes]]:
    photos = [(p.name, p.load()) for p in evaluation_photos()] * copies
    paths = build_sample_shards(folder, photos, shards=shards, bad_member=False)
    images = [image_member(s).data for p in paths for s in read_shard(str(p)).samples]
    return paths, images


def bare_loop(weights: str, images: list[bytes], quality: float) -> tuple[float, int]:
    """(seconds, images) of load_image + encode_timed over ``images`` on one torch thread."""
    from s2c_pipeline.codec.image_codec import ImageCodec
    from s2c_pipeline.imaging import load_image

    torch.set_num_threads(1)
    codec = ImageCodec.load(weights_file=Path(weights), device="cpu")
    start = time.perf_counter()
    for data in images:
        codec.encode_timed(load_image(data), quality)
    return time.perf_counter() - start, len(images)


def bare_parallel(weights: str, images: list[bytes], quality: float, processes: int) -> float:
    """Images/s of ``processes`` bare loops running at once on disjoint slices (spawned processes)."""
    slices = [images[i::processes] for i in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.starmap(bare_loop, [(weights, part, quality) for part in slices])
    return sum(n for _, n in results) / max(seconds for seconds, _ in results)


def pipeline(shards: list[Path], weights: str, quality: float, actors: int, out: Path) -> dict:
    ray.init(num_cpus=actors, include_dashboard=False, logging_level=logging.WARNING)
    try:
        start = time.perf_counter()
        summary = compress(
            [str(p) for p in shards],
            str(out),
            RunConfig(weights=weights, quality=quality, actors=actors, show_progress=False),
        )
        wall = time.perf_counter() - start
    finally:
        ray.shutdown()
    images = summary.stats.samples
    steady_wall = wall - summary.actor_start_s
    codec_s = (summary.stats.encode_ms + summary.stats.decode_ms) / 1000
    return {
        "images": images,
        "wall_s": wall,
        "actor_start_s": summary.actor_start_s,
        "end_to_end": images / wall,
        "steady": images / steady_wall,
        "codec_share": codec_s / (actors * steady_wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--quality", type=float, default=3.0)
    parser.add_argument("--weights", default=None, help="checkpoint (default: bundled, else random weights)")
    parser.add_argument("--actors", default="1,2")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/pipeline_throughput.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights, kind = args.weights, "given"
        if weights is None:
            try:
                weights, kind = str(find_weights().path), "bundled"
            except LookupError:
                torch.manual_seed(0)
                weights, kind = (
                    str(export_checkpoint(create_model("s2c-conv-small"), root, {}).path),
                    "random",
                )
        shards, images = sample_images(root / "in", args.copies, args.shards)
        rows = []
        for actors in (int(a) for a in args.actors.split(",")):
            bares, runs = [], []
            for repeat in range(args.repeats):
                bares.append(bare_parallel(weights, images, args.quality, actors))
                runs.append(pipeline(shards, weights, args.quality, actors, root / f"out{actors}-{repeat}"))
            bare, run = max(bares), max(runs, key=lambda r: r["steady"])
            rows.append(
                {
                    "actors": actors,
                    "bare_images_per_s": bare,
                    **run,
                    "ratio_end_to_end": run["end_to_end"] / bare,
                    "ratio_steady": run["steady"] / bare,
                }
            )
    print(
        f"{len(images)} images in {len(shards)} shards, weights {Path(weights).name} ({kind}), "
        f"quality {args.quality:g}, {os.cpu_count()} CPUs"
    )
    print(
        f"{'actors':>6} {'bare img/s':>11} {'pipe e2e':>9} {'pipe steady':>12} {'start s':>8} "
        f"{'e2e/bare':>9} {'steady/bare':>12} {'codec share':>12}"
    )
    for r in rows:
        print(
            f"{r['actors']:>6} {r['bare_images_per_s']:>11.2f} {r['end_to_end']:>9.2f} {r['steady']:>12.2f} "
            f"{r['actor_start_s']:>8.1f} {r['ratio_end_to_end']:>9.2f} {r['ratio_steady']:>12.2f} "
            f"{r['codec_share']:>12.2f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "images": len(images),
                "shards": len(shards),
                "weights": Path(weights).name,
                "weights_kind": kind,
                "quality": args.quality,
                "repeats": args.repeats,
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "torch": torch.__version__,
                "ray": ray.__version__,
                "rows": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

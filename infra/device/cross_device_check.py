"""Do streams written on one device decode to the same pixels on another (CPU <-> GPU)?

The probability path runs on the CPU in float64 on every device (docs/codec.md); only g_a and
g_s run on the GPU. This script checks what that promises, with the bundled default weights:

    # here (CPU): write streams and what they decode to here (make device-prep)
    python infra/device/cross_device_check.py encode --device cpu --out .gpu-check/cpu --decoded runs/cpu-decoded.npz
    # on the GPU machine: decode those, and write its own streams (infra/device/train_gpu.sh)
    python infra/device/cross_device_check.py decode --device cuda --streams .gpu-check/cpu --out $OUT/gpu-decoded-cpu-streams.npz
    python infra/device/cross_device_check.py encode --device cuda --out $OUT/gpu
    # here again: decode the GPU's streams and compare every pair of pixel arrays
    python infra/device/cross_device_check.py compare --cpu .gpu-check/cpu --cpu-decoded runs/cpu-decoded.npz \
        --gpu DIR/gpu --gpu-decoded DIR/gpu-decoded-cpu-streams.npz --json benchmarks/results/cross_device.json
    # (DIR: where the GPU's $OUT came back, with gpu-streams.tar unpacked in it)

The inputs are 512 px centre crops of the training pack's validation photos (the pack travels to
the GPU machine for training anyway), coded at qualities 2 and 6.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.imaging import load_image
from s2c_pipeline.train.datapack import DataPack

PACK = Path("data-cache/train-pack-enlightenment.tar")
QUALITIES = (2.0, 6.0)
CROP = 512


def test_images(pack_path: Path, count: int = 2) -> dict[str, bytes]:
    """PNG bytes of centre crops of the pack's last ``count`` photos (its validation part)."""
    pack = DataPack(pack_path)
    images = {}
    for i in range(len(pack) - count, len(pack)):
        im = pack.image(i)
        y, x = (im.shape[0] - CROP) // 2, (im.shape[1] - CROP) // 2
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(im[y : y + CROP, x : x + CROP])).save(buf, format="PNG")
        images[f"val{i}"] = buf.getvalue()
    return images


def device_name(codec: ImageCodec) -> str:
    if codec.device.type == "cuda":
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    return f"{platform.machine()} CPU (torch {torch.__version__})"


def encode(args: argparse.Namespace) -> None:
    codec = ImageCodec.load(device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    decoded, rows = {}, []
    images = {name: load_image(png) for name, png in test_images(args.pack).items()}
    codec.encode(next(iter(images.values())), QUALITIES[0])  # warm-up: the first call on a GPU builds its kernels
    for name, image in images.items():
        for quality in QUALITIES:
            started = time.perf_counter()
            stream = codec.encode(image, quality)
            encode_ms = (time.perf_counter() - started) * 1e3
            started = time.perf_counter()
            rgb = codec.decode(stream).rgb
            decode_ms = (time.perf_counter() - started) * 1e3
            key = f"{name}-q{quality:g}"
            (args.out / f"{key}.s2c").write_bytes(stream)
            decoded[key] = rgb
            rows.append(
                {
                    "key": key,
                    "bytes": len(stream),
                    "encode_ms": round(encode_ms, 1),
                    "decode_ms": round(decode_ms, 1),
                }
            )
    np.savez_compressed(args.decoded or args.out / "decoded.npz", **decoded)
    manifest = {"device": device_name(codec), "weights_id": codec.weights.weights_id, "rows": rows}
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps(manifest, indent=1))


def decode(args: argparse.Namespace) -> None:
    codec = ImageCodec.load(device=args.device)
    decoded = {
        p.stem: codec.decode(p.read_bytes(), source=str(p)).rgb for p in sorted(args.streams.glob("*.s2c"))
    }
    np.savez_compressed(args.out, **decoded)
    print(f"decoded {len(decoded)} streams on {device_name(codec)} into {args.out}")


def _difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {
        "identical": bool(diff.max() == 0),
        "max_abs_diff": int(diff.max()),
        "differing_values": int((diff > 0).sum()),
    }


def _cell(difference: dict) -> str:
    if difference["identical"]:
        return "identical"
    return f"max diff {difference['max_abs_diff']} ({difference['differing_values']} values)"


def compare(args: argparse.Namespace) -> None:
    """Both directions, pixel for pixel, against what the encoding device itself decoded."""
    codec = ImageCodec.load(device="cpu")
    cpu_manifest = json.loads((args.cpu / "manifest.json").read_text())
    gpu_manifest = json.loads((args.gpu / "manifest.json").read_text())
    cpu_self = np.load(args.cpu_decoded or args.cpu / "decoded.npz")
    gpu_self = np.load(args.gpu / "decoded.npz")
    gpu_of_cpu = np.load(args.gpu_decoded)
    rows = []
    for key in cpu_self.files:
        cpu_stream = (args.cpu / f"{key}.s2c").read_bytes()
        gpu_stream = (args.gpu / f"{key}.s2c").read_bytes()
        cpu_of_gpu = codec.decode(gpu_stream, source=key).rgb
        rows.append(
            {
                "key": key,
                "cpu_stream_decoded_on_gpu": _difference(gpu_of_cpu[key], cpu_self[key]),
                "gpu_stream_decoded_on_cpu": _difference(cpu_of_gpu, gpu_self[key]),
                "streams_identical": cpu_stream == gpu_stream,
            }
        )
    report = {"cpu": cpu_manifest, "gpu": gpu_manifest, "rows": rows}
    print(f"{'image':<14} {'CPU stream on GPU':<22} {'GPU stream on CPU':<22} same stream")
    for r in rows:
        cells = [_cell(r["cpu_stream_decoded_on_gpu"]), _cell(r["gpu_stream_decoded_on_cpu"])]
        print(f"{r['key']:<14} {cells[0]:<22} {cells[1]:<22} {r['streams_identical']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(required=True)
    p = sub.add_parser("encode")
    p.add_argument("--device", default="cpu")
    p.add_argument("--pack", type=Path, default=PACK)
    p.add_argument("--out", type=Path, required=True, help="folder for the streams and manifest.json")
    p.add_argument(
        "--decoded", type=Path, default=None, help="where the decoded pixels go (default OUT/decoded.npz)"
    )
    p.set_defaults(run=encode)
    p = sub.add_parser("decode")
    p.add_argument("--device", default="cpu")
    p.add_argument("--streams", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(run=decode)
    p = sub.add_parser("compare")
    p.add_argument("--cpu", type=Path, required=True, help="the CPU's encode --out folder")
    p.add_argument("--gpu", type=Path, required=True, help="the GPU's encode --out folder")
    p.add_argument("--cpu-decoded", type=Path, default=None, help="the CPU's encode --decoded file")
    p.add_argument("--gpu-decoded", type=Path, required=True, help="the GPU's decode --out file")
    p.add_argument("--json", type=Path, default=None)
    p.set_defaults(run=compare)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()

"""Peak memory of decoding large images, with the tiled synthesis transform and without.

Each decode runs in a fresh process (peak resident memory is per process), on a smooth synthetic
photo-like image coded at quality 4 with the bundled weights. "one pass" sets the tile larger than
the image, which is what the decoder did before tiling.

    python benchmarks/decode_memory.py [--sizes 1024,2048] [--threads 2]
        [--json benchmarks/results/decode_memory.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_CHILD = """
import hashlib, json, resource, sys, time, torch
torch.set_num_threads(int(sys.argv[3]))
from s2c_pipeline.codec import model as model_module
from s2c_pipeline.codec.image_codec import ImageCodec
if sys.argv[2] == "one-pass":
    model_module.SYNTHESIS_TILE = model_module.BANDED_SYNTHESIS_TILE = 1 << 20
codec = ImageCodec.load(device="cpu")
data = open(sys.argv[1], "rb").read()
start = time.perf_counter()
decoded = codec.decode(data)
# VmHWM: this process's own peak; ru_maxrss would also count its parent's (carried over by exec).
hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
peak_kb = int(hwm[0]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import numpy as np
np.save(sys.argv[4], decoded.rgb)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_mb": peak_kb / 1024,
                  "pixels": hashlib.sha256(decoded.rgb.tobytes()).hexdigest()}))
"""


def make_stream(size: int, path: Path) -> None:
    from PIL import Image

    from s2c_pipeline.codec.image_codec import ImageCodec
    from s2c_pipeline.imaging import load_image

    y, x = np.mgrid[0:size, 0:size] / size
    rgb = np.stack([np.sin(7 * x) * 90 + 128, np.cos(5 * y) * 80 + 120, (x + y) * 100 + 20], axis=-1)
    rgb += np.random.default_rng(0).normal(0, 3, rgb.shape)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    with tempfile.NamedTemporaryFile(suffix=".png") as png:
        image.save(png.name)
        path.write_bytes(ImageCodec.load(device="cpu").encode(load_image(png.name), 4.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,2048", help="square image sizes in pixels")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            stream = Path(tmp) / f"{size}.s2c"
            make_stream(size, stream)
            for mode in ("tiled", "one-pass"):
                pixels = Path(tmp) / f"{size}-{mode}.npy"
                run = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(stream), mode, str(args.threads), str(pixels)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(run.stdout.strip().splitlines()[-1])
                # pixel values that differ from the tiled decode, and by how many levels at most
                diff = np.abs(np.load(pixels).astype(int) - np.load(Path(tmp) / f"{size}-tiled.npy"))
                result |= {"values_unlike_tiled": int((diff > 0).sum()), "max_diff_to_tiled": int(diff.max())}
                rows.append({"size": size, "mode": mode, "stream_bytes": stream.stat().st_size, **result})
    print(
        f"{'image':>11} {'mode':>9} {'stream KB':>9} {'decode s':>8} {'peak MB':>8} values unlike tiled (max)"
    )
    for row in rows:
        print(
            f"{row['size']:>5}x{row['size']:<5} {row['mode']:>9} {row['stream_bytes'] / 1024:9.1f} "
            f"{row['seconds']:8.1f} {row['peak_mb']:8.0f} {row['values_unlike_tiled']} ({row['max_diff_to_tiled']})"
        )
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()

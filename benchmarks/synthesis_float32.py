"""float32 g_s on the CPU, three ways, for pixels and for time.

Format 2 decodes with ``g_s`` in float32. The module run with oneDNN on, the module with oneDNN off
(PyTorch's own convolutions: format 2's CPU synthesis until the banded one), and the banded
synthesis format 2 uses now (``codec.banded``, through ``S2CFormer.synthesize``). For the
latents of three training photos (scikit-image's, 384x256, qualities 2 and 6): how many 8-bit pixel
values change between 1 and 2 threads and with a channels-last input, and how far each is from a
float64 synthesis; then the time of one 768x512 synthesis each way, on 1 and on 2 threads.

    python benchmarks/synthesis_float32.py [--json benchmarks/results/synthesis_float32.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

import s2c_pipeline  # noqa: F401  (torchvision placeholder before compressai)
from s2c_pipeline.codec.image_codec import ImageCodec, _pad, _to_tensor
from s2c_pipeline.imaging import load_image
from s2c_pipeline.photos import package_training_photos


def pixels(synthesis: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (synthesis(y).clamp(0, 1) * 255).round()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/synthesis_float32.json"))
    args = parser.parse_args()
    model = ImageCodec.load(device="cpu").model
    g32 = copy.deepcopy(model.g_s).float().eval()
    g64 = copy.deepcopy(model.g_s).double().eval()
    latents = []
    for photo in package_training_photos():
        image = photo.load().convert("RGB").resize((384, 256), Image.LANCZOS)
        x = _pad(_to_tensor(load_image(image).rgb, torch.device("cpu")))
        for q in (2.0, 6.0):
            code = model.compress_latents(x, q)
            latents.append(model.decode_y(code) * model.gains(q)[1][:, None, None])
    ways = {
        "module, oneDNN on": (True, g32),
        "module, oneDNN off": (False, g32),
        "banded (format 2)": (True, lambda y: model.synthesize(y, dtype=torch.float32)),
    }
    rows = []
    for way, (onednn, synthesis) in ways.items():
        torch.backends.mkldnn.enabled = onednn
        counts = {"threads_1_vs_2": 0, "channels_last": 0, "vs_float64": 0}
        worst = dict.fromkeys(counts, 0)
        total = 0
        for y in latents:
            torch.set_num_threads(1)
            one = pixels(synthesis, y.float())
            torch.set_num_threads(2)
            two = pixels(synthesis, y.float())
            last = pixels(synthesis, y.float().contiguous(memory_format=torch.channels_last))
            exact = pixels(g64, y)
            total += one.numel()
            for key, other in (("threads_1_vs_2", one), ("channels_last", last), ("vs_float64", exact)):
                diff = (two - other).abs()
                counts[key] += int((diff > 0).sum())
                worst[key] = max(worst[key], int(diff.max()))
        y = torch.randn(1, model.config.latent_channels, 32, 48, generator=torch.Generator().manual_seed(0))
        seconds = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            times = []
            for _ in range(3):
                t = time.perf_counter()
                pixels(synthesis, y)
                times.append(time.perf_counter() - t)
            seconds[threads] = min(times)
        rows.append({"way": way, "onednn": onednn, "pixel_values": total, "different": counts,
                     "max_diff": worst, "synthesis_768x512_1_thread_s": seconds[1],
                     "synthesis_768x512_2_threads_s": seconds[2]})  # fmt: skip
        print(f"{way}: of {total} pixel values, {counts} differ (max {worst}); 768x512 synthesis "
              f"{seconds[1]:.3f} s on 1 thread, {seconds[2]:.3f} s on 2")  # fmt: skip
    torch.backends.mkldnn.enabled = True
    meta = {"command": "python benchmarks/synthesis_float32.py", "torch": torch.__version__}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

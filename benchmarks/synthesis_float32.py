"""float32 g_s on the CPU: oneDNN against PyTorch's own convolutions, for pixels and for time.

Format 2 decodes with ``g_s`` in float32. This measures why it turns oneDNN off on the CPU: for the
latents of three training photos (scikit-image's, 384x256, qualities 2 and 6), how many 8-bit pixel
values change between 1 and 2 threads and with a channels-last input, and how far each is from a
float64 synthesis; then the time of one 768x512 synthesis each way, on 1 thread.

    python benchmarks/synthesis_float32.py [--json benchmarks/results/synthesis_float32.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from PIL import Image

import s2c_pipeline  # noqa: F401  (torchvision placeholder before compressai)
from s2c_pipeline.codec.image_codec import ImageCodec, _pad, _to_tensor
from s2c_pipeline.imaging import load_image
from s2c_pipeline.photos import package_training_photos


def pixels(synthesis: torch.nn.Module, y: torch.Tensor) -> torch.Tensor:
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
    rows = []
    for onednn in (True, False):
        torch.backends.mkldnn.enabled = onednn
        counts = {"threads_1_vs_2": 0, "channels_last": 0, "vs_float64": 0}
        worst = dict.fromkeys(counts, 0)
        total = 0
        for y in latents:
            torch.set_num_threads(1)
            one = pixels(g32, y.float())
            torch.set_num_threads(2)
            two = pixels(g32, y.float())
            last = pixels(g32, y.float().contiguous(memory_format=torch.channels_last))
            exact = pixels(g64, y)
            total += one.numel()
            for key, other in (("threads_1_vs_2", one), ("channels_last", last), ("vs_float64", exact)):
                diff = (two - other).abs()
                counts[key] += int((diff > 0).sum())
                worst[key] = max(worst[key], int(diff.max()))
        torch.set_num_threads(1)
        y = torch.randn(1, model.config.latent_channels, 32, 48, generator=torch.Generator().manual_seed(0))
        times = []
        for _ in range(3):
            t = time.perf_counter()
            pixels(g32, y)
            times.append(time.perf_counter() - t)
        rows.append({"onednn": onednn, "pixel_values": total, "different": counts, "max_diff": worst,
                     "synthesis_768x512_1_thread_s": min(times)})  # fmt: skip
        print(f"oneDNN {'on ' if onednn else 'off'}: of {total} pixel values, {counts} differ "
              f"(max {worst}); 768x512 synthesis {min(times):.3f} s on 1 thread")  # fmt: skip
    torch.backends.mkldnn.enabled = True
    meta = {"command": "python benchmarks/synthesis_float32.py", "torch": torch.__version__}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

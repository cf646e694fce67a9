"""Regenerate the golden test vectors: small `.s2c` files and the hash of their decoded images.

Run only when new bundled weights or a new format version are added; existing vectors are never
rewritten, because they are our promise that files written earlier keep decoding
(tests/test_vectors.py). Vectors of format 2 and later carry the version in their file name and
the hash of their decoded latents, which must match exactly everywhere (their pixels must be
within one level of a float64 synthesis; the pixel hash is that of the machine that made them).

    python tests/vectors/make_vectors.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

from s2c_pipeline.bitstream import FORMAT_VERSION
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.imaging import load_image, pixels_sha256

HERE = Path(__file__).parent


def sources() -> list[tuple[str, Image.Image, float]]:
    coffee = Image.fromarray(skimage.data.coffee()).resize((150, 100), Image.LANCZOS)
    camera = Image.fromarray(skimage.data.camera()).resize((96, 96), Image.LANCZOS)
    rgba = coffee.convert("RGBA")
    alpha = np.full((100, 150), 255, np.uint8)
    alpha[20:60, 30:90] = 64
    rgba.putalpha(Image.fromarray(alpha))
    tiny = coffee.crop((0, 0, 3, 5))
    return [
        ("rgb-q1", coffee, 1.0),
        ("rgb-q6", coffee, 6.0),
        ("rgb-q2.5", coffee, 2.5),
        ("grey-q3", camera, 3.0),
        ("alpha-q4", rgba, 4.0),
        ("tiny-3x5-q3", tiny, 3.0),
    ]


def main() -> int:
    codec = ImageCodec.load(device="cpu")
    index_file = HERE / "vectors.json"
    index = json.loads(index_file.read_text()) if index_file.exists() else []
    known = {v["file"] for v in index}
    for name, image, quality in sources():
        file = f"{codec.model_name}-{codec.weights.weights_id}-v{FORMAT_VERSION}-{name}.s2c"
        if file in known:
            continue
        data = codec.encode(load_image(image), quality)
        decoded = codec.decode(data, source=file)
        (HERE / file).write_bytes(data)
        index.append(
            {
                "file": file,
                "model": codec.model_name,
                "weights_id": codec.weights.weights_id,
                "format_version": decoded.header.format_version,
                "quality": quality,
                "mode": decoded.image.mode,
                "size": list(decoded.image.size),
                "decoded_sha256": pixels_sha256(decoded.image),
                "latents_sha256": decoded.latents_sha256,
            }
        )
        print(f"wrote {file} ({len(data)} bytes)")
    index_file.write_text(json.dumps(index, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Small WebDataset shards for the demo and the tests, built from real photos.

They exercise what real datasets contain: PNG and JPEG images, ``.json`` and ``.cls`` members to
carry through, a key with a dot in a directory name, and (by default) one ``.jpg`` that is not an
image, which the pipeline must record as ``bad_input`` rather than crash on or drop.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from PIL import Image

from s2c_pipeline.shards.storage import publish
from s2c_pipeline.shards.writer import TarShardWriter

logger = logging.getLogger(__name__)

DOTTED_DIRECTORY = "batch.v2"  # keys under it keep the dot: "batch.v2/000001"
BAD_IMAGE_BYTES = b"not an image: a deliberately broken .jpg member for the demo\n"


def build_sample_shards(
    out_dir: Path,
    photos: list[tuple[str, Image.Image]],
    *,
    shards: int = 3,
    bad_member: bool = True,
    max_side: int = 512,
) -> list[Path]:
    """Write ``out_dir/00000.tar`` ... with one sample per photo, split evenly over the shards.

    Sample ``i`` has key ``f"{i:06d}"`` (sample 1 lives under ``batch.v2/``), an image stored as
    PNG (every third one as JPEG, quality 90) after downscaling to at most ``max_side`` pixels on its
    long side, ``KEY.json`` (name, caption, size) and ``KEY.cls`` (a class label). With
    ``bad_member`` the last shard ends with an extra sample whose ``.jpg`` holds text.

    Returns:
        the shard paths, in order. Fewer than ``shards`` when there are fewer samples.
    """
    if not photos:
        raise ValueError("build_sample_shards needs at least one photo")
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    samples = [_photo_sample(index, name, image, max_side) for index, (name, image) in enumerate(photos)]
    if bad_member:
        samples.append(_bad_sample(len(photos)))
    count = min(shards, len(samples))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard in range(count):
        writer = TarShardWriter()
        for members in samples[shard * len(samples) // count : (shard + 1) * len(samples) // count]:
            for name, data in members:
                writer.add(name, data)
        path = out_dir / f"{shard:05d}.tar"
        publish(writer.finish(), str(path))
        paths.append(path)
    logger.info("wrote %d sample shards (%d samples) to %s", len(paths), len(samples), out_dir)
    return paths


def _photo_sample(index: int, name: str, image: Image.Image, max_side: int) -> list[tuple[str, bytes]]:
    key = f"{DOTTED_DIRECTORY}/{index:06d}" if index == 1 else f"{index:06d}"
    small = image.copy()
    small.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if index % 3 == 2:
        extension = "jpg"
        small = small if small.mode in ("L", "RGB") else small.convert("RGB")
        small.save(buffer, format="JPEG", quality=90)
    else:
        extension = "png"
        small.save(buffer, format="PNG")
    metadata = {"name": name, "caption": f"photo {name}", "width": small.width, "height": small.height}
    return [
        (f"{key}.{extension}", buffer.getvalue()),
        (f"{key}.json", json.dumps(metadata, sort_keys=True).encode()),
        (f"{key}.cls", str(index % 10).encode()),
    ]


def _bad_sample(index: int) -> list[tuple[str, bytes]]:
    key = f"{index:06d}"
    metadata = {"name": "not-an-image", "caption": "a .jpg member whose bytes are text"}
    return [
        (f"{key}.jpg", BAD_IMAGE_BYTES),
        (f"{key}.json", json.dumps(metadata, sort_keys=True).encode()),
        (f"{key}.cls", b"0"),
    ]

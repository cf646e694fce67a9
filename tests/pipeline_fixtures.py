"""Helpers and fixtures for the pipeline tests: small shards, random-weight checkpoints, Ray, the CLI.

Import with ``from pipeline_fixtures import ...`` (tests/ is on sys.path); fixtures are imported by
their function names (``weights_file_fixture``) and requested by their fixture names
(``weights_file``), so test arguments do not shadow the imports. Run as a script it is
the ``s2c`` CLI with the pipeline verbs registered (used by the kill-the-driver test).
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import numpy as np
import pytest
from PIL import Image

from s2c_pipeline.shards import TarShardWriter

RAY_TEST_ARGS = {"num_cpus": 2, "object_store_memory": 200 * 2**20, "include_dashboard": False}


def image_bytes(height: int, width: int, seed: int, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    """A small smooth-plus-noise image (codes like a photo, not like pure noise), RGB or grey (L)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y + seed * 7) % 256], -1
    )
    pixels = np.clip(base + rng.integers(-12, 12, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


def write_shard(path: Path, members: list[tuple[str, bytes]]) -> Path:
    writer = TarShardWriter()
    for name, data in members:
        writer.add(name, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(writer.finish())
    return path


def sample_members(shard: int, count: int, *, size: tuple[int, int] = (24, 32)) -> list[tuple[str, bytes]]:
    """``count`` samples: KEY.png (every third a .jpg, every fourth grey) + KEY.json + KEY.cls, keys
    s{shard}_{i:03d}."""
    members = []
    for i in range(count):
        key = f"s{shard}_{i:03d}"
        fmt, ext = ("JPEG", "jpg") if i % 3 == 2 else ("PNG", "png")
        mode = "L" if i % 4 == 3 else "RGB"
        members.append((f"{key}.{ext}", image_bytes(size[0] + i, size[1], shard * 100 + i, fmt, mode)))
        members.append((f"{key}.json", json.dumps({"shard": shard, "i": i}).encode()))
        members.append((f"{key}.cls", str(i % 5).encode()))
    return members


def make_shards(folder: Path, shards: int, per_shard: int, *, size: tuple[int, int] = (24, 32)) -> list[Path]:
    return [
        write_shard(folder / f"{s:05d}.tar", sample_members(s, per_shard, size=size)) for s in range(shards)
    ]


@pytest.fixture(scope="session", name="weights_file")
def weights_file_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weights s2c-conv-small checkpoint: real coding, poor quality, independent of bundles."""
    import torch

    from s2c_pipeline.codec.weights import export_checkpoint
    from s2c_pipeline.codec.zoo import create_model

    torch.manual_seed(0)
    entry = export_checkpoint(create_model("s2c-conv-small"), tmp_path_factory.mktemp("weights"), recipe={})
    return entry.path


@pytest.fixture(scope="module", name="ray_local")
def ray_local_fixture() -> Iterator[None]:
    """A real local Ray for one test module (2 CPUs, 200 MB object store, no dashboard)."""
    import ray

    if ray.is_initialized():  # a Ray left over by another module would have other settings
        ray.shutdown()
    ray.init(**RAY_TEST_ARGS)
    try:
        yield
    finally:
        ray.shutdown()


def cli_main(argv: list[str]) -> int:
    """``s2c ARGV`` with the pipeline verbs registered even before the lead wires them into main."""
    from s2c_pipeline.cli import main as cli
    from s2c_pipeline.cli import pipeline_verbs

    if pipeline_verbs not in cli.VERBS:
        cli.VERBS = (*cli.VERBS, pipeline_verbs)
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))

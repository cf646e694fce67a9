"""Shared fixtures: a real S3 server (SeaweedFS), a fault-injecting moto server, sample photos."""

from __future__ import annotations

import os

# Before anything imports botocore or ray: S3-compatible servers reject botocore >= 1.36's default
# checksums, Ray must bind to 127.0.0.1, and botocore must not probe the EC2 metadata service.
os.environ["AWS_REQUEST_CHECKSUM_CALCULATION"] = "when_required"
os.environ["AWS_RESPONSE_CHECKSUM_VALIDATION"] = "when_required"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image

if TYPE_CHECKING:  # imported in the fixtures: moto and s3fs cost ~1 s, most test files need neither
    from s3server import FlakyMotoServer, WeedS3Server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeedS3Server]:
    """A real S3 server with enforced access keys, shared by the session (stopped with SIGTERM)."""
    from s3server import WeedS3Server

    server = WeedS3Server(tmp_path_factory.mktemp("weed"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _moto_server() -> Iterator[FlakyMotoServer]:
    from s3server import FlakyMotoServer

    server = FlakyMotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def flaky_s3(_moto_server: FlakyMotoServer) -> Iterator[FlakyMotoServer]:
    """moto behind a fault injector; each test starts with no faults and an empty request log."""
    _moto_server.reset_faults()
    yield _moto_server
    _moto_server.reset_faults()


@pytest.fixture(scope="session")
def photos() -> list[tuple[str, Image.Image]]:
    """Four real photos from scikit-image (RGB and greyscale, 300 to 512 px)."""
    from skimage import data

    return [
        (name, Image.fromarray(getattr(data, name)()))
        for name in ("astronaut", "camera", "coffee", "chelsea")
    ]


@pytest.fixture(scope="session")
def sample_shard_dir(tmp_path_factory: pytest.TempPathFactory, photos) -> Path:
    """Two demo shards (photos downscaled to 64 px, plus the deliberately bad member)."""
    from s2c_pipeline.shards.samples import build_sample_shards

    out = tmp_path_factory.mktemp("sample_shards")
    build_sample_shards(out, photos, shards=2, max_side=64)
    return out

"""Golden vectors: every `.s2c` file in tests/vectors decodes to exactly the recorded pixels."""

import json
from pathlib import Path

import pytest
import torch

from s2c_pipeline.codec.image_codec import codec_for_bitstream
from s2c_pipeline.imaging import pixels_sha256

VECTORS = Path(__file__).parent / "vectors"
INDEX = json.loads((VECTORS / "vectors.json").read_text())


def test_there_are_vectors_for_every_bundled_quality_range():
    assert len(INDEX) >= 6
    assert {v["mode"] for v in INDEX} >= {"RGB", "L", "RGBA"}


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def torch_threads(request):
    previous = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(previous)


@pytest.mark.parametrize("vector", INDEX, ids=[v["file"] for v in INDEX])
def test_vector_decodes_bit_exactly(vector, torch_threads):
    data = (VECTORS / vector["file"]).read_bytes()
    codec = codec_for_bitstream(data, source=vector["file"], device="cpu")
    decoded = codec.decode(data, source=vector["file"])
    assert decoded.image.mode == vector["mode"]
    assert list(decoded.image.size) == vector["size"]
    assert pixels_sha256(decoded.image) == vector["decoded_sha256"]

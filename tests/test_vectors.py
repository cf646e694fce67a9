"""Golden vectors: every `.s2c` file in tests/vectors decodes as recorded.

Format 1 (the float64 decoder): exactly the recorded pixels. Format 2: exactly the recorded
latents, and pixels within one level of a float64 synthesis of them (docs/codec.md); the recorded
pixel hash is the maker's CPU's, and other CPU builds may round a few values the other way.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from s2c_pipeline.codec.image_codec import codec_for_bitstream
from s2c_pipeline.imaging import pixels_sha256

VECTORS = Path(__file__).parent / "vectors"
INDEX = json.loads((VECTORS / "vectors.json").read_text())


def test_there_are_vectors_for_every_bundled_quality_range():
    for version in (1, 2):
        vectors = [v for v in INDEX if v.get("format_version", 1) == version]
        assert len(vectors) >= 6
        assert {v["mode"] for v in vectors} >= {"RGB", "L", "RGBA"}


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
    assert decoded.header.format_version == vector.get("format_version", 1)
    assert decoded.image.mode == vector["mode"]
    assert list(decoded.image.size) == vector["size"]
    if decoded.header.format_version == 1:
        assert pixels_sha256(decoded.image) == vector["decoded_sha256"]
        return
    assert decoded.latents_sha256 == vector["latents_sha256"]
    reference = codec.decode(data, source=vector["file"], reference=True)
    assert reference.latents_sha256 == vector["latents_sha256"]
    assert np.abs(decoded.rgb.astype(int) - reference.rgb.astype(int)).max() <= 1

"""Weights on their way to an actor: read and hashed once on the driver, loaded from bytes there.

No temporary file is written and nothing is hashed twice; the codec an actor builds from the bytes
codes exactly as one loaded from the file does.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from pipeline_fixtures import image_bytes, weights_file_fixture  # noqa: F401

from s2c_pipeline.codec import weights as weights_module
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.imaging import load_image
from s2c_pipeline.pipeline.compress import weights_spec
from s2c_pipeline.pipeline.compress.weights_spec import resolve_codec
from s2c_pipeline.pipeline.decompress.decode_task import CodecCache


@pytest.fixture(name="hashed_checkpoints")
def hashed_checkpoints_fixture(monkeypatch: pytest.MonkeyPatch, weights_file: Path) -> list[int]:
    """A list that grows by one each time the checkpoint's bytes are hashed (by sha256 anywhere)."""
    size = weights_file.stat().st_size
    calls: list[int] = []
    real = hashlib.sha256

    def counting(data: bytes = b"", **kwargs):
        if len(data) == size:
            calls.append(len(data))
        return real(data, **kwargs)

    monkeypatch.setattr(hashlib, "sha256", counting)
    return calls


def test_a_checkpoint_is_hashed_once_and_loads_without_a_temporary_file(
    weights_file: Path, hashed_checkpoints: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_temporary_files(*args, **kwargs):
        raise AssertionError("a checkpoint was written to a temporary file")

    monkeypatch.setattr(tempfile, "mkdtemp", no_temporary_files)
    monkeypatch.setattr(tempfile, "mkstemp", no_temporary_files)
    spec = resolve_codec(None, str(weights_file))  # the driver
    codec = spec.load("cpu", 1)  # an actor
    assert len(hashed_checkpoints) == 1
    assert spec.weights_sha256 == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert codec.weights.sha256 == spec.weights_sha256 and codec.model_name == "s2c-conv-small"
    image = load_image(image_bytes(40, 48, 3))
    from_file = ImageCodec.load(weights_file=weights_file, device="cpu")
    assert codec.encode(image, 2.0) == from_file.encode(image, 2.0)


def test_decode_actors_load_the_named_checkpoint_from_bytes(weights_file: Path) -> None:
    data = weights_file.read_bytes()
    stream = ImageCodec.load(weights_file=weights_file, device="cpu").encode(
        load_image(image_bytes(32, 40, 5)), 2.0
    )
    cache = CodecCache(
        [("other.pt", b"not a checkpoint, never loaded"), (weights_file.name, data)], device="cpu"
    )
    codec = cache.for_bitstream(stream, source="x.s2c")
    assert codec.weights.sha256 == hashlib.sha256(data).hexdigest()
    assert cache.for_bitstream(stream, source="x.s2c") is codec
    assert codec.decode(stream, source="x.s2c").rgb.shape == (32, 40, 3)


def test_bundled_weights_that_changed_on_disk_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = weights_module.find_weights()
    changed = tmp_path / entry.path.name
    changed.write_bytes(entry.path.read_bytes() + b"\0")
    moved = weights_module.WeightsEntry(
        entry.model_name, changed, entry.sha256, entry.qualities, default=True
    )
    monkeypatch.setattr(weights_spec, "find_weights", lambda model: moved)
    with pytest.raises(ValueError, match="sha256 differs from the weights index"):
        resolve_codec(None, None)

"""Images of one padded size share one g_a / g_s pass: the plan, the codec, and a whole shard."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pipeline_fixtures import write_shard

from s2c_pipeline.codec.batching import plan_batches
from s2c_pipeline.codec.encode_and_verify import EncodeSettings
from s2c_pipeline.codec.image_codec import ImageCodec, padded_size
from s2c_pipeline.imaging import load_image, metrics
from s2c_pipeline.pipeline.compress.shard_coder import compress_shard
from s2c_pipeline.shards import read_shard


@pytest.fixture(scope="module")
def codec() -> ImageCodec:
    return ImageCodec.load(device="cpu")  # the bundled weights: PSNR comparisons mean something


def _crop_png(photo: Image.Image, height: int, width: int, top: int = 0) -> bytes:
    buffer = io.BytesIO()
    photo.convert("RGB").crop((top, top, top + width, top + height)).save(buffer, format="PNG")
    return buffer.getvalue()


@contextlib.contextmanager
def _analysis_passes(
    codec: ImageCodec, before: Callable[[torch.Tensor], None] | None = None
) -> Iterator[list[int]]:
    """The batch size of every g_a pass of the codec (``S2CFormer._analysis``: the module, or on
    the CPU its banded twin), after ``before(x)`` when given."""
    sizes: list[int] = []
    analysis = codec.model._analysis

    def recording(x: torch.Tensor) -> torch.Tensor:
        if before is not None:
            before(x)
        sizes.append(x.shape[0])
        return analysis(x)

    codec.model._analysis = recording
    try:
        yield sizes
    finally:
        del codec.model._analysis


def test_plan_batches_groups_equal_padded_sizes_in_order() -> None:
    a, b, big = (128, 192), (64, 64), (4096, 4096)
    assert plan_batches([a, b, a, a, b, a], max_images=8) == [[0, 2, 3, 5], [1, 4]]
    assert plan_batches([a, a, a, a, a], max_images=2) == [[0, 1], [2, 3], [4]]
    assert plan_batches([a, a, a], max_images=8, max_pixels=2 * 128 * 192) == [[0, 1], [2]]
    assert plan_batches([big, big], max_images=8, max_pixels=1000) == [[0], [1]]  # never dropped
    assert plan_batches([], max_images=4) == []
    with pytest.raises(ValueError, match="at least 1"):
        plan_batches([a], max_images=0)


def test_batched_coding_decodes_like_single_images(codec: ImageCodec, photos) -> None:
    # Three crops of one padded size (128x192) from different photos, sizes not multiples of 64.
    crops = [
        _crop_png(p, h, w)
        for (_, p), (h, w) in zip(photos[:3], [(120, 180), (128, 170), (100, 190)], strict=True)
    ]
    images = [load_image(data) for data in crops]
    assert {padded_size(im) for im in images} == {(128, 192)}

    with _analysis_passes(codec) as sizes:
        batched = codec.encode_timed_batch(images, 3.0)
    assert sizes == [3]  # one analysis pass for the three images

    for image, (data, decoded, timing) in zip(images, batched, strict=True):
        alone = codec.decode(data)  # any later decoder sees one image at a time
        assert np.array_equal(alone.rgb, decoded.rgb)
        assert decoded.rgb.shape == image.rgb.shape
        single_data, single_decoded, _ = codec.encode_timed(image, 3.0)
        psnr_batched = metrics.psnr(image.rgb, decoded.rgb)
        psnr_single = metrics.psnr(image.rgb, single_decoded.rgb)
        assert psnr_batched == pytest.approx(psnr_single, abs=0.05)
        assert len(data) == pytest.approx(len(single_data), rel=0.02)
        assert timing.encode_ms > 0 and timing.decode_ms > 0

    with pytest.raises(ValueError, match="one padded size"):
        codec.encode_batch([images[0], load_image(_crop_png(photos[0][1], 64, 64))], 3.0)


def _mixed_shard(tmp_path: Path, photos) -> Path:
    """Six photo crops of two padded sizes, interleaved, plus a bad member and a metadata-only sample."""
    members = []
    shapes = [(120, 180), (60, 60), (128, 170), (64, 50), (100, 190), (110, 129)]  # last: 128x192 padded
    for i, (h, w) in enumerate(shapes):
        photo = photos[i % len(photos)][1]
        members.append((f"k{i}.png", _crop_png(photo, h, w, top=10 * i)))
        members.append((f"k{i}.json", f'{{"i": {i}}}'.encode()))
    members.insert(4, ("broken.jpg", b"not a jpeg at all"))
    members.append(("metaonly.txt", b"no image here"))
    return write_shard(tmp_path / "in.tar", members)


def test_compress_shard_batches_and_keeps_every_row(tmp_path: Path, codec: ImageCodec, photos) -> None:
    contents = read_shard(str(_mixed_shard(tmp_path, photos)))
    settings = EncodeSettings(quality=3.0, max_pixels=1_000_000, device="cpu", batch_size=4)
    with _analysis_passes(codec) as sizes:
        out = compress_shard(contents, codec, settings, output_url=str(tmp_path / "out.tar"))
    # 8 samples -> window of 16 holds them all: the 128x192 crops (k0, k2, k4, k5) in one pass of
    # four, the 64x64 ones (k1, k3) in one pass of two.
    assert sorted(sizes) == [2, 4]
    assert [r.key for r in out.rows] == [s.key for s in contents.samples]
    statuses = {r.key: r.status for r in out.rows}
    assert statuses == {**{f"k{i}": "ok" for i in range(6)}, "broken": "bad_input", "metaonly": "bad_input"}
    for row in out.rows:
        if row.status == "ok":
            data = out.tar[row.s2c_offset : row.s2c_offset + row.s2c_bytes]
            assert metrics.pixels_sha256(codec.decode(data).image) == row.decoded_sha256
            assert row.psnr > 20 and 0 < row.ms_ssim <= 1


def test_a_failing_batch_is_coded_image_by_image(
    tmp_path: Path, codec: ImageCodec, photos, caplog: pytest.LogCaptureFixture
) -> None:
    """A pass that fails as a whole (here: an injected device out-of-memory for any batch above
    one image) must not mark the images: each is coded again alone."""
    contents = read_shard(str(_mixed_shard(tmp_path, photos)))
    settings = EncodeSettings(quality=3.0, max_pixels=1_000_000, device="cpu", batch_size=4)

    def out_of_memory(x: torch.Tensor) -> None:
        if x.shape[0] > 1:
            raise RuntimeError("CUDA out of memory (injected by the test)")

    with (
        _analysis_passes(codec, before=out_of_memory),
        caplog.at_level(logging.INFO, logger="s2c_pipeline.codec.encode_and_verify"),
    ):
        out = compress_shard(contents, codec, settings, output_url=str(tmp_path / "out.tar"))
    assert sum(r.status == "ok" for r in out.rows) == 6
    assert "coding them one by one" in caplog.text


def test_batch_size_is_validated() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        EncodeSettings(quality=3.0, max_pixels=100, device="cpu", batch_size=0)

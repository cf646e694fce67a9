"""Encoder-side latent refinement with the bundled weights: smaller real cost, ordinary streams."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from s2c_pipeline.bitstream import decode_container
from s2c_pipeline.codec.encode_and_verify import Coded, EncodeSettings, code_one
from s2c_pipeline.codec.image_codec import ImageCodec, _pad, _to_tensor
from s2c_pipeline.codec.refine import RefineSettings, quality_lambda, refine_latents
from s2c_pipeline.imaging import ColourHandling, PreparedImage
from s2c_pipeline.pipeline import RunConfig


@pytest.fixture(scope="module")
def codec() -> ImageCodec:
    return ImageCodec.load(device="cpu")


@pytest.fixture(scope="module")
def image() -> PreparedImage:
    """A 184x120 photo crop: neither side a multiple of 64, so the padding is exercised."""
    rgb = np.ascontiguousarray(skimage.data.rocket()[180:300, 150:334])
    return PreparedImage(rgb, "RGB", ColourHandling.RGB, alpha=None, icc_profile=None, exif=None)


def real_cost(codec: ImageCodec, image: PreparedImage, data: bytes, quality: float) -> float:
    """lambda * 255^2 * MSE + bpp of a written stream, decoded as any reader would."""
    decoded = codec.decode(data).rgb
    mse = np.mean((decoded.astype(np.float64) - image.rgb) ** 2) / 255**2
    lam = quality_lambda(codec.model.config.lambdas, quality)
    return lam * 255**2 * mse + len(data) * 8 / (image.width * image.height)


@pytest.mark.parametrize("quality", [8.0, 6.5])
def test_refined_stream_costs_less_and_decodes_as_an_ordinary_stream(codec, image, quality):
    plain = codec.encode(image, quality)
    refined = codec.encode(image, quality, RefineSettings(steps=12))
    assert refined != plain
    assert decode_container(refined).header == decode_container(plain).header
    assert real_cost(codec, image, refined, quality) < real_cost(codec, image, plain, quality)


def test_a_step_size_that_only_hurts_keeps_the_analysis_latent(codec, image):
    x = _pad(_to_tensor(image.rgb, codec.device))
    with torch.no_grad():
        y = codec.model.g_a(x)
    outcome = refine_latents(
        codec.model, x, y, [4.0], [(image.height, image.width)], RefineSettings(steps=3, lr=50.0, lr_exponent=0.0)
    )
    assert outcome.best_step == (0,)
    assert outcome.final_cost == outcome.initial_cost
    assert torch.equal(outcome.y, y)
    assert codec.encode(image, 4, RefineSettings(steps=3, lr=50.0, lr_exponent=0.0)) == codec.encode(image, 4)


def test_refinement_that_runs_out_of_memory_codes_the_image_unrefined(codec, image, monkeypatch, caplog):
    import s2c_pipeline.codec.model as model_module

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    monkeypatch.setattr(model_module, "refine_latents", out_of_memory)
    assert codec.encode(image, 8, RefineSettings(steps=5)) == codec.encode(image, 8)
    assert "ran out of memory; coding it unrefined" in caplog.text

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(model_module, "refine_latents", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        codec.encode(image, 8, RefineSettings(steps=5))


def test_pipeline_coding_path_carries_the_refinement(codec, image):
    settings = EncodeSettings(8, max_pixels=1 << 24, device="cpu", refine=RefineSettings(steps=12))
    refined = code_one(image, codec, settings)
    plain = code_one(image, codec, EncodeSettings(8, max_pixels=1 << 24, device="cpu"))
    assert isinstance(refined, Coded) and isinstance(plain, Coded)
    assert real_cost(codec, image, refined.s2c, 8) < real_cost(codec, image, plain.s2c, 8)
    assert refined.psnr > 0 and refined.decoded.rgb.shape == image.rgb.shape


def test_quality_lambda_is_geometric_between_trained_points():
    lambdas = (0.001, 0.004, 0.016)
    assert quality_lambda(lambdas, 1) == pytest.approx(0.001)
    assert quality_lambda(lambdas, 3) == pytest.approx(0.016)
    assert quality_lambda(lambdas, 1.5) == pytest.approx(0.002)
    assert quality_lambda(lambdas, 2.5) == pytest.approx(math.sqrt(0.004 * 0.016))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="0 or more"):
        RefineSettings(steps=-1)
    with pytest.raises(ValueError, match="positive"):
        RefineSettings(steps=1, lr=0)
    with pytest.raises(ValueError, match="refine_steps"):
        RunConfig(refine_steps=-2)
    assert RunConfig(refine_steps=5).execution_dict()["refine_steps"] == 5


def test_cli_encode_refines_and_refuses_a_negative_count(tmp_path, image):
    source = tmp_path / "crop.png"
    Image.fromarray(image.rgb).save(source)
    run = [sys.executable, "-m", "s2c_pipeline", "encode", str(source)]
    r = subprocess.run([*run, str(tmp_path / "r.s2c"), "--quality", "7", "--refine-steps", "4"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "refined 4 steps" in r.stdout
    r = subprocess.run([*run, str(tmp_path / "d.s2c"), "--refine-steps", "4", "--target-psnr", "30"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "refined 4 steps" in r.stdout and "target reached" in r.stdout
    r = subprocess.run([*run, str(tmp_path / "x.s2c"), "--refine-steps", "-1"], capture_output=True, text=True)
    assert r.returncode == 2 and "--refine-steps must be 0 or more" in r.stderr
    assert not (tmp_path / "x.s2c").exists()

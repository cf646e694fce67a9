"""PSNR, MS-SSIM and the pixel hash, on real photos (scikit-image) and hand-computed values."""

from __future__ import annotations

import hashlib
import itertools
import math

import numpy as np
import pytest
import pytorch_msssim
import skimage.data
import torch
from PIL import Image

from s2c_pipeline.imaging import ms_ssim, pixels_sha256, psnr


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Small convolutions on a shared 2-core machine run 20-50x slower with 2 intra-op threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.coffee()[100:300, 150:400])  # 200x250: 5 scales fit


def noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def as_batch(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float()


# --- PSNR ----------------------------------------------------------------------------------------


def test_psnr_matches_a_hand_computed_value() -> None:
    reference = np.zeros((2, 2, 3), np.uint8)
    test = reference.copy()
    test[0, 0, 0] = 10
    test[1, 1, 2] = 20
    # MSE = (100 + 400) / 12; PSNR = 10 log10(255^2 * 12 / 500) = 10 log10(1560.6)
    assert psnr(reference, test) == pytest.approx(31.932916, abs=1e-6)
    assert psnr(test, reference) == psnr(reference, test)


def test_psnr_of_identical_images_is_infinite(coffee: np.ndarray) -> None:
    assert psnr(coffee, coffee.copy()) == math.inf


def test_psnr_of_a_real_photo_with_noise(coffee: np.ndarray) -> None:
    distorted = noisy(coffee, 5)
    mse = np.mean((coffee.astype(float) - distorted) ** 2)
    assert psnr(coffee, distorted) == pytest.approx(10 * math.log10(255**2 / mse))
    assert 33 < psnr(coffee, distorted) < 36  # sigma 5 noise is about 34 dB
    assert isinstance(psnr(coffee, distorted), float)


# --- MS-SSIM -------------------------------------------------------------------------------------


def test_ms_ssim_of_identical_images_is_one(coffee: np.ndarray) -> None:
    assert ms_ssim(coffee, coffee.copy()) == pytest.approx(1.0, abs=1e-6)


def test_ms_ssim_decreases_with_noise(coffee: np.ndarray) -> None:
    values = [ms_ssim(coffee, noisy(coffee, sigma)) for sigma in (2, 8, 20, 50)]
    assert all(a > b for a, b in itertools.pairwise(values)), values
    assert 0 < values[-1] < values[0] < 1


def test_ms_ssim_is_pytorch_msssim_with_5_scales_from_161_pixels(coffee: np.ndarray) -> None:
    reference, distorted = coffee[:161, :170], noisy(coffee, 10)[:161, :170]
    expected = pytorch_msssim.ms_ssim(as_batch(reference), as_batch(distorted), data_range=255)
    assert ms_ssim(reference, distorted) == pytest.approx(float(expected), abs=1e-6)


def test_ms_ssim_falls_back_to_ssim_below_161_pixels(coffee: np.ndarray) -> None:
    reference, distorted = coffee[:160, :200], noisy(coffee, 10)[:160, :200]
    expected = pytorch_msssim.ssim(as_batch(reference), as_batch(distorted), data_range=255)
    assert ms_ssim(reference, distorted) == pytest.approx(float(expected), abs=1e-6)
    with pytest.raises(AssertionError):  # why: pytorch_msssim's MS-SSIM refuses this size
        pytorch_msssim.ms_ssim(as_batch(reference), as_batch(distorted), data_range=255)


@pytest.mark.parametrize("shape", [(1, 1, 3), (10, 500, 3), (500, 10, 3), (10, 10)])
def test_ms_ssim_is_nan_below_11_pixels(shape: tuple[int, ...]) -> None:
    image = np.full(shape, 128, np.uint8)
    assert math.isnan(ms_ssim(image, image))


def test_ms_ssim_is_defined_from_11_pixels_and_on_grey(coffee: np.ndarray) -> None:
    assert ms_ssim(coffee[:11, :11], coffee[:11, :11]) == pytest.approx(1.0, abs=1e-6)
    grey = np.ascontiguousarray(coffee[..., 1])
    assert 0 < ms_ssim(grey, noisy(grey, 20)) < 1


# --- argument checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [psnr, ms_ssim])
def test_metrics_refuse_mismatched_or_non_8bit_images(metric, coffee: np.ndarray) -> None:
    with pytest.raises(ValueError, match="shape"):
        metric(coffee, coffee[:-1])
    with pytest.raises(ValueError, match="shape"):
        metric(coffee, coffee[..., :2])
    with pytest.raises(ValueError, match="uint8"):
        metric(coffee, coffee.astype(np.float32))


# --- pixel hash ----------------------------------------------------------------------------------


def test_pixels_sha256_follows_the_documented_recipe(coffee: np.ndarray) -> None:
    height, width = coffee.shape[:2]
    expected = hashlib.sha256(f"RGB {width}x{height}\n".encode() + coffee.tobytes()).hexdigest()
    assert pixels_sha256(coffee) == expected
    assert pixels_sha256(Image.fromarray(coffee)) == expected


@pytest.mark.parametrize(("channels", "mode"), [(None, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")])
def test_pixels_sha256_array_and_image_agree_for_each_mode(
    coffee: np.ndarray, channels: int | None, mode: str
) -> None:
    planes = np.dstack([coffee, coffee[..., :1]])
    array = np.ascontiguousarray(planes[..., 0] if channels is None else planes[..., :channels])
    image = Image.fromarray(array)
    assert image.mode == mode
    assert pixels_sha256(array) == pixels_sha256(image)


def test_pixels_sha256_sees_one_sample_shape_and_mode() -> None:
    pixels = np.arange(12, dtype=np.uint8)
    base = pixels_sha256(pixels.reshape(2, 2, 3))
    changed = pixels.copy()
    changed[7] ^= 1
    assert pixels_sha256(changed.reshape(2, 2, 3)) != base
    assert pixels_sha256(pixels.reshape(2, 6)) != base  # same bytes as L 6x2
    assert pixels_sha256(pixels.reshape(1, 4, 3)) != base  # same bytes as RGB 4x1
    assert pixels_sha256(pixels.reshape(2, 2, 3)[:, ::-1]) == pixels_sha256(
        pixels.reshape(2, 2, 3)[:, ::-1].copy()
    )


def test_pixels_sha256_refuses_what_it_does_not_define(coffee: np.ndarray) -> None:
    with pytest.raises(ValueError, match="mode 'CMYK'"):
        pixels_sha256(Image.fromarray(coffee).convert("CMYK"))
    with pytest.raises(ValueError, match="uint8"):
        pixels_sha256(coffee.astype(np.uint16))
    with pytest.raises(ValueError, match="uint8"):
        pixels_sha256(np.zeros((2, 2, 5), np.uint8))

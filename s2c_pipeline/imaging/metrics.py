"""Quality metrics on 8-bit images, and a pixel hash that anyone can recompute (docs/imaging.md)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytorch_msssim
import torch
from PIL import Image

MS_SSIM_MIN_SIDE = 161
"""Smallest side for pytorch_msssim's 5-scale MS-SSIM: 4 halvings must leave the 11-pixel window."""
SSIM_MIN_SIDE = 11
"""Smallest side for SSIM itself (one 11x11 Gaussian window); below it ms_ssim returns nan."""

_MODE_FOR_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB over all samples of two uint8 images, peak 255; inf when they are identical."""
    _check_pair(reference, test)
    mse = np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ms_ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """MS-SSIM (pytorch_msssim, data_range=255, default 5 scales and weights) of two uint8 images.

    Images with a side under 161 pixels are too small for 5 scales: for those we return SSIM (one
    scale, clamped at 0 as MS-SSIM's last scale is), not a re-weighted MS-SSIM with fewer scales,
    which pytorch_msssim does not offer. Under 11 pixels neither is defined: nan.
    """
    _check_pair(reference, test)
    side = min(reference.shape[:2])
    if side < SSIM_MIN_SIDE:
        return math.nan
    x, y = _as_batch(reference), _as_batch(test)
    with torch.no_grad():
        if side >= MS_SSIM_MIN_SIDE:
            value = pytorch_msssim.ms_ssim(x, y, data_range=255)
        else:
            value = pytorch_msssim.ssim(x, y, data_range=255, nonnegative_ssim=True)
    return float(value)


def pixels_sha256(img: np.ndarray | Image.Image) -> str:
    """Hex sha256 of b"<mode> <width>x<height>\\n" followed by the pixels, row-major, interleaved.

    Mode is L, LA, RGB or RGBA (8-bit); an array maps to one by its channel count, so an (H, W, 3)
    array and the equal RGB image hash the same.
    """
    if isinstance(img, Image.Image):
        if img.mode not in _MODE_FOR_CHANNELS.values():
            raise ValueError(f"pixels_sha256 hashes L, LA, RGB or RGBA images, not mode {img.mode!r}")
        mode, (width, height), raw = img.mode, img.size, img.tobytes()
    else:
        channels = 1 if img.ndim == 2 else img.shape[2] if img.ndim == 3 else 0
        if img.dtype != np.uint8 or channels not in _MODE_FOR_CHANNELS:
            raise ValueError(f"pixels_sha256 hashes (H, W[, 1-4]) uint8 arrays, got {img.shape} {img.dtype}")
        mode, (height, width), raw = (
            _MODE_FOR_CHANNELS[channels],
            img.shape[:2],
            np.ascontiguousarray(img).tobytes(),
        )
    digest = hashlib.sha256(f"{mode} {width}x{height}\n".encode("ascii"))
    digest.update(raw)
    return digest.hexdigest()


def _check_pair(reference: np.ndarray, test: np.ndarray) -> None:
    if reference.shape != test.shape:
        raise ValueError(f"images differ in shape: {reference.shape} vs {test.shape}")
    if reference.dtype != np.uint8 or test.dtype != np.uint8:
        raise ValueError(f"metrics take 8-bit images (uint8), got {reference.dtype} and {test.dtype}")
    if reference.ndim not in (2, 3) or reference.size == 0:
        raise ValueError(f"metrics take (H, W) or (H, W, C) images, got shape {reference.shape}")


def _as_batch(image: np.ndarray) -> torch.Tensor:
    """(H, W[, C]) uint8 -> (1, C, H, W) float32 in [0, 255]."""
    planes = image[..., None] if image.ndim == 2 else image
    return torch.tensor(planes, dtype=torch.float32).permute(2, 0, 1)[None]

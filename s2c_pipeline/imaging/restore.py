"""Decoded RGB back to the image the user gave us, as far as the colour-handling code allows."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from s2c_pipeline.imaging.alpha import unpack_alpha
from s2c_pipeline.imaging.colour import ColourHandling


def restore_image(
    rgb: np.ndarray,
    *,
    colour: ColourHandling | int,
    alpha: bytes | None,
    icc_profile: bytes | None,
    exif: bytes | None,
) -> Image.Image:
    """Rebuild the output image: "L"/"LA" for GREY sources, "RGB"/"RGBA" for every other kind.

    Grey is the rounded mean of the decoded channels (a lossy codec does not keep them equal).
    ICC profile and EXIF go into `img.info`, where image_to_png_bytes picks them up. Palette, CMYK
    and other sources come back as RGB: the conversion is one way, the code only records it.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    colour = ColourHandling.from_code(int(colour))
    height, width = rgb.shape[:2]
    if colour.kind == ColourHandling.GREY:
        pixels = ((rgb.sum(axis=2, dtype=np.uint16) + 1) // 3).astype(np.uint8)
    else:
        pixels = np.ascontiguousarray(rgb)
    plane = _alpha_plane(colour, alpha, height, width)
    if plane is not None:
        pixels = np.dstack([pixels, plane])
    img = Image.fromarray(np.ascontiguousarray(pixels))
    if icc_profile:
        img.info["icc_profile"] = icc_profile
    if exif:
        img.info["exif"] = exif
    return img


def check_restorable(colour: int, alpha: bytes | None, height: int, width: int) -> None:
    """ValueError unless ``restore_image`` can honour this colour code and alpha plane: a decoder
    runs it on the header before any decoding work."""
    _alpha_plane(ColourHandling.from_code(int(colour)), alpha, height, width)


def _alpha_plane(colour: ColourHandling, alpha: bytes | None, height: int, width: int) -> np.ndarray | None:
    if (alpha is not None) != bool(colour & ColourHandling.ALPHA_CARRIED):
        raise ValueError(
            f"colour handling {colour.describe()} and the alpha plane "
            f"({'present' if alpha is not None else 'absent'}) disagree"
        )
    return None if alpha is None else unpack_alpha(alpha, height, width)


def image_to_png_bytes(img: Image.Image) -> bytes:
    """Encode as PNG, keeping the ICC profile and EXIF from `img.info` (Pillow drops EXIF otherwise)."""
    out = io.BytesIO()
    options = {key: img.info[key] for key in ("icc_profile", "exif") if img.info.get(key)}
    img.save(out, format="PNG", **options)
    return out.getvalue()

"""Turn a source photo into a clean 8-bit sRGB training image.

A codec trained on JPEG blocking learns to spend bits on it, so lossy sources are shrunk with Lanczos
by up to 4x (never below a 1024 px short side), which averages the artefacts away; near-lossless
JPEGs (estimated quality >= 97) and lossless files keep their full size, unless they show block
edges from an earlier JPEG generation: LXQt's beam.png has 3x stronger gradients across the 8x8 grid
than inside the blocks, MATE's TwoWings.jpg (saved at q100) 1.8x.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps

log = logging.getLogger(__name__)

MIN_SHORT_SIDE = 1024
MAX_DOWNSCALE = 4.0
NEAR_LOSSLESS_QUALITY = 97
BLOCKY = 1.05

# The IJG (libjpeg) luminance table that ``quality`` scales, in natural order.
_IJG_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip


@dataclass(frozen=True)
class Prepared:
    """A prepared photo and how it was made (recorded in ``sources.json``)."""

    image: Image.Image
    source_format: str
    jpeg_quality: int | None
    blockiness: float
    original_size: tuple[int, int]
    downscale: float
    lossy: bool = False  # a lossy source (JPEG under q97, lossy WebP, or a block grid), shrunk or not


def jpeg_quality(img: Image.Image) -> int | None:
    """The IJG quality (1-100) whose luminance table is closest to ``img``'s, or None if not a JPEG.

    Tables are compared as sorted values, so the zigzag/natural order PIL reports does not matter.
    """
    tables = getattr(img, "quantization", None)
    if not tables:
        return None
    luma = sorted(tables[0])

    def error(q: int) -> int:
        scale = 5000 // q if q < 50 else 200 - 2 * q
        ref = sorted(min(255, max(1, (v * scale + 50) // 100)) for v in _IJG_LUMA)
        return sum(abs(a - b) for a, b in zip(ref, luma, strict=True))

    return min(range(1, 101), key=error)


def blockiness(img: Image.Image) -> float:
    """Mean grey gradient across 8x8 block edges over that inside blocks: about 1 for clean images,
    clearly above 1 for JPEG-compressed ones (taking the worse of the two directions)."""
    grey = np.asarray(img.convert("L"), dtype=np.float32)
    ratios = []
    for axis in (0, 1):
        steps = np.abs(np.diff(grey, axis=axis)).mean(axis=1 - axis)
        edges = np.zeros(steps.size, dtype=bool)
        edges[7::8] = True
        ratios.append(float(steps[edges].mean() / max(float(steps[~edges].mean()), 1e-6)))
    return max(ratios)


def lossy_webp(img: Image.Image) -> bool:
    """Whether ``img`` was opened from a lossy (VP8) WebP file rather than a lossless (VP8L) one."""
    fp = getattr(img, "fp", None)
    if img.format != "WEBP" or fp is None:
        return False
    position = fp.tell()
    fp.seek(0)
    head = fp.read(4096)
    fp.seek(position)
    return b"VP8 " in head and b"VP8L" not in head


def downscale_factor(size: tuple[int, int], lossy: bool) -> float:
    """How much to shrink a photo of ``size``: up to 4x if ``lossy``, never below MIN_SHORT_SIDE."""
    if not lossy:
        return 1.0
    return max(1.0, min(MAX_DOWNSCALE, min(size) / MIN_SHORT_SIDE))


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    if not icc:
        return img
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    name = ImageCms.getProfileDescription(profile).strip()
    if "srgb" in name.lower():
        return img
    log.debug("converting from %s to sRGB", name)
    return ImageCms.profileToProfile(img, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")


def prepare(img: Image.Image) -> Prepared:
    """Orient, convert to sRGB RGB, and shrink ``img`` as the module docstring says."""
    quality = jpeg_quality(img)
    webp = lossy_webp(img)
    source_format = f"{img.format} q{quality}" if quality is not None else str(img.format)
    if img.mode in ("RGBA", "LA") and img.getchannel("A").getextrema()[0] < 255:
        log.warning("%s image has transparent pixels; its alpha channel is dropped", source_format)
    rgb = _to_srgb(ImageOps.exif_transpose(img).convert("RGB"), img.info.get("icc_profile"))
    blocks = blockiness(rgb)
    lossy = webp or blocks > BLOCKY or (quality is not None and quality < NEAR_LOSSLESS_QUALITY)
    factor = downscale_factor(rgb.size, lossy)
    if factor > 1.0:
        w, h = rgb.size
        rgb = rgb.resize((round(w / factor), round(h / factor)), Image.Resampling.LANCZOS)
    return Prepared(rgb, source_format, quality, round(blocks, 3), img.size, round(factor, 3), lossy)

"""Any input image to what the codec codes: (H, W, 3) uint8 RGB plus what is needed to restore it.

Each input either converts, with the conversion recorded in `ColourHandling`, or is refused with
`ImageRejected`; docs/imaging.md lists every case.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from s2c_pipeline.imaging.alpha import pack_alpha
from s2c_pipeline.imaging.colour import ColourHandling, icc_profile_for, to_rgb
from s2c_pipeline.imaging.depth import Reopen, plan_depth, to_eight_bit
from s2c_pipeline.imaging.errors import ImageRejected, pillow_failures_rejected
from s2c_pipeline.imaging.orientation import apply_orientation, plan_exif

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 25_000_000
"""Largest image (width * height) coded by default. Our limit, not Pillow's: on CPU the analysis
transform's first stage alone holds 128 float32 channels at half resolution, 128 bytes per input
pixel per tensor, several tensors at once, so 25 MP already needs ~10-20 GB. Large images are
refused, not tiled. Raise it with `max_pixels=` (CLI: --max-pixels); above Pillow's own
decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS, ~89.5 MP) raise that too."""

Source = bytes | bytearray | memoryview | str | os.PathLike | Image.Image


@dataclass(frozen=True, eq=False)
class PreparedImage:
    """An image ready for the codec, with what restore_image needs to give it back.

    eq=False: the fields hold arrays, so equality is not defined; compare `rgb` explicitly.
    """

    rgb: np.ndarray  # (H, W, 3) uint8, C-contiguous, orientation applied
    source_mode: str  # Pillow mode as opened, e.g. "RGBA", "I;16", "CMYK"
    colour: ColourHandling
    alpha: bytes | None  # zlib of the (H, W) uint8 alpha plane; None when every pixel is opaque
    icc_profile: bytes | None  # None when absent or not true of the coded pixels (e.g. CMYK)
    exif: bytes | None  # APP1 form; Orientation reset to 1 when ORIENTATION_APPLIED

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    @property
    def height(self) -> int:
        return self.rgb.shape[0]


def load_image(source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> PreparedImage:
    """Open, check and convert one image; ImageRejected for anything that will not be coded.

    The declared size is checked against `max_pixels` before any pixel is decoded. A missing or
    unreadable path raises OSError as usual: that is not a problem with the image.
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    with _opened(source) as im:
        return _prepare(im, _reopener(source, im), max_pixels)


@contextlib.contextmanager
def _opened(source: Source) -> Iterator[Image.Image]:
    """Open lazily (header only); a PIL image passed in is used as is and left open."""
    if isinstance(source, Image.Image):
        yield source
    elif isinstance(source, bytes | bytearray | memoryview):
        with pillow_failures_rejected():
            im = Image.open(io.BytesIO(source))
        with im:
            yield im
    elif isinstance(source, str | os.PathLike):
        with open(source, "rb") as fp:
            with pillow_failures_rejected():
                im = Image.open(fp)
            with im:
                yield im
    else:
        raise TypeError(f"load_image takes bytes, a path or a PIL image, not {type(source).__name__}")


def _reopener(source: Source, im: Image.Image) -> Reopen | None:
    """How to open the same file again, for the second decode of 16-bit samples (see depth.py)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return lambda: Image.open(io.BytesIO(source))
    if isinstance(source, str | os.PathLike):
        return lambda: Image.open(source)
    filename = getattr(im, "filename", "")
    return (lambda: Image.open(filename)) if filename else None


def _prepare(im: Image.Image, reopen: Reopen | None, max_pixels: int) -> PreparedImage:
    width, height = im.size
    if width < 1 or height < 1:
        raise ImageRejected(f"image is {width}x{height} pixels, it has no pixels to code")
    if width * height > max_pixels:
        raise ImageRejected(
            f"image is {width}x{height} = {width * height / 1e6:.1f} MP, above the "
            f"{max_pixels / 1e6:.1f} MP limit (--max-pixels); large images are refused, not tiled"
        )
    if im.format == "EPS":
        raise ImageRejected(
            "EPS/PostScript is refused: decoding it runs Ghostscript; convert it to PNG first"
        )
    source_mode = im.mode
    colour = ColourHandling.RGB
    with pillow_failures_rejected():
        if getattr(im, "is_animated", False):
            colour |= ColourHandling.FRAMES_DROPPED
            logger.info("image has several frames; only the first is coded (FRAMES_DROPPED)")
    depth_plan = plan_depth(im)
    with pillow_failures_rejected():
        im.load()
    exif_plan = plan_exif(im)
    eight_bit, depth_reduced = to_eight_bit(im, depth_plan, reopen)
    if depth_reduced:
        colour |= ColourHandling.DEPTH_REDUCED
    if exif_plan.orientation != 1:
        eight_bit = apply_orientation(eight_bit, exif_plan.orientation)
        colour |= ColourHandling.ORIENTATION_APPLIED
    pixels = to_rgb(eight_bit)
    colour |= pixels.kind
    if pixels.alpha is not None:
        colour |= ColourHandling.ALPHA_CARRIED
    return PreparedImage(
        rgb=pixels.rgb,
        source_mode=source_mode,
        colour=colour,
        alpha=None if pixels.alpha is None else pack_alpha(pixels.alpha),
        icc_profile=icc_profile_for(pixels.kind, im.info.get("icc_profile")),
        exif=exif_plan.exif,
    )

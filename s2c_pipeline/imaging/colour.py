"""The one-byte colour-handling code, and 8-bit Pillow modes to the RGB the codec codes.

The code is stored opaquely by the `.s2c` container; its bits are specified in docs/imaging.md.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

from s2c_pipeline.imaging.errors import ImageRejected

logger = logging.getLogger(__name__)

KIND_MASK = 0x07
"""Bits 0-2 of the code hold the source kind, a number (0-4), not a set of flags."""
RESERVED_BITS = 0x80


class ColourHandling(enum.IntFlag):
    """What was done to an image to make it 8-bit RGB; fits in one byte.

    Bits 0-2 are the source kind (RGB, GREY, PALETTE, CMYK, OTHER_CONVERTED): a number, so read it
    with `.kind`, never with `&` (CMYK is 3 = GREY | PALETTE as bits). Bits 3-6 are independent flags.
    """

    RGB = 0x00
    GREY = 0x01
    PALETTE = 0x02
    CMYK = 0x03
    OTHER_CONVERTED = 0x04
    ALPHA_CARRIED = 0x08
    ORIENTATION_APPLIED = 0x10
    DEPTH_REDUCED = 0x20
    FRAMES_DROPPED = 0x40

    @property
    def kind(self) -> ColourHandling:
        """The source kind alone (one of RGB, GREY, PALETTE, CMYK, OTHER_CONVERTED)."""
        return ColourHandling(self & KIND_MASK)

    @classmethod
    def from_code(cls, code: int) -> ColourHandling:
        """Validate a code read from a file; ValueError for kinds or bits this version does not know."""
        if not 0 <= code <= 0xFF:
            raise ValueError(f"colour handling code {code} does not fit in one byte")
        if code & KIND_MASK > cls.OTHER_CONVERTED or code & RESERVED_BITS:
            raise ValueError(
                f"colour handling code 0x{code:02x} uses a source kind or bit unknown to this version "
                "of s2c-pipeline; decode with the version that wrote the file or a newer one"
            )
        return cls(code)

    def describe(self) -> str:
        """Readable form, e.g. "CMYK|ALPHA_CARRIED" (Enum's own would show CMYK as GREY|PALETTE)."""
        names = [self.kind.name or "?"]
        names += [flag.name for flag in _FLAGS if self & flag and flag.name]
        return "|".join(names)

    def __repr__(self) -> str:
        return f"<ColourHandling.{self.describe()}: 0x{int(self):02x}>"


_FLAGS = (
    ColourHandling.ALPHA_CARRIED,
    ColourHandling.ORIENTATION_APPLIED,
    ColourHandling.DEPTH_REDUCED,
    ColourHandling.FRAMES_DROPPED,
)

# 8-bit Pillow mode -> (source kind, Pillow mode to convert to). Modes that may carry a single
# transparent colour in info["transparency"] (1, L, P, RGB) switch to the alpha target instead.
_CONVERSIONS: dict[str, tuple[ColourHandling, str]] = {
    "RGB": (ColourHandling.RGB, "RGB"),
    "RGBX": (ColourHandling.RGB, "RGB"),
    "RGBA": (ColourHandling.RGB, "RGBA"),
    "RGBa": (ColourHandling.RGB, "RGBA"),
    "1": (ColourHandling.GREY, "L"),
    "L": (ColourHandling.GREY, "L"),
    "LA": (ColourHandling.GREY, "LA"),
    "La": (ColourHandling.GREY, "LA"),
    "P": (ColourHandling.PALETTE, "RGB"),
    "PA": (ColourHandling.PALETTE, "RGBA"),
    "CMYK": (ColourHandling.CMYK, "RGB"),
    "YCbCr": (ColourHandling.OTHER_CONVERTED, "RGB"),
    "LAB": (ColourHandling.OTHER_CONVERTED, "RGB"),
    "HSV": (ColourHandling.OTHER_CONVERTED, "RGB"),
}
_WITH_ALPHA = {"L": "LA", "RGB": "RGBA"}

# ICC colour space (header bytes 16-19) that is still true of the pixels restore_image returns.
_ICC_SPACE_FOR_KIND = {
    ColourHandling.RGB: b"RGB ",
    ColourHandling.PALETTE: b"RGB ",
    ColourHandling.GREY: b"GRAY",
}


@dataclass(frozen=True, eq=False)
class RGBPixels:
    """An 8-bit image as the codec takes it, plus its alpha plane when any pixel is not opaque."""

    rgb: np.ndarray  # (H, W, 3) uint8, C-contiguous
    alpha: np.ndarray | None  # (H, W) uint8, None when every pixel is 255
    kind: ColourHandling


def to_rgb(im: Image.Image) -> RGBPixels:
    """Convert an 8-bit image (16-bit ones go through depth.to_eight_bit first) to RGB plus alpha."""
    if im.mode not in _CONVERSIONS:
        raise ImageRejected(
            f"pixel mode {im.mode!r} has no defined conversion to RGB; convert the image to RGB first"
        )
    kind, target = _CONVERSIONS[im.mode]
    if "transparency" in im.info and target in _WITH_ALPHA:
        target = _WITH_ALPHA[target]
    converted = im if im.mode == target else im.convert(target)
    pixels = np.asarray(converted)
    alpha = None
    if target in ("LA", "RGBA"):
        alpha, pixels = pixels[..., -1], pixels[..., :-1]
        if alpha.min() == 255:
            alpha = None
    if pixels.ndim == 2 or pixels.shape[-1] == 1:
        pixels = np.repeat(pixels.reshape(pixels.shape[0], pixels.shape[1], 1), 3, axis=2)
    rgb = np.ascontiguousarray(pixels, dtype=np.uint8)
    return RGBPixels(rgb=rgb, alpha=None if alpha is None else np.ascontiguousarray(alpha), kind=kind)


def icc_profile_for(kind: ColourHandling, icc_profile: bytes | None) -> bytes | None:
    """The ICC profile to carry, or None when it describes colours the restored image no longer has.

    A CMYK or Lab profile is wrong on the RGB pixels we code (and Pillow would write it into a PNG
    that viewers then misread), so it is dropped; the source kind in the code says what happened.
    """
    if not icc_profile:
        return None
    space = icc_profile[16:20]
    if space == _ICC_SPACE_FOR_KIND.get(kind):
        return icc_profile
    logger.info(
        "dropping ICC profile for colour space %r: it does not describe the %s pixels that are coded",
        space.decode("latin-1"),
        "grey" if kind == ColourHandling.GREY else "RGB",
    )
    return None

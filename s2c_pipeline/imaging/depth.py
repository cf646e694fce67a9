"""Samples wider than 8 bits to 8 bits, rounded: round(v * 255 / maxval), recorded as DEPTH_REDUCED.

Pillow gives us wide samples in two ways:

- modes that keep them: "I;16", "I;16L", "I;16B", "I;16N" (16-bit grey PNG and TIFF) and "I"
  (32-bit integer, e.g. 16-bit PGM, which Pillow scales to 0..65535; we accept only that range);
- files Pillow narrows itself while decoding, keeping the high byte (16-bit RGB and RGBA PNG and
  TIFF, 16-bit grey+alpha PNG) or flooring (binary PPM with maxval > 255). Either can be one level
  off the rounded value, so for those layouts we decode the file again with the byte order swapped,
  which yields the low bytes, and round the whole 16-bit value ourselves.

Layouts that Pillow narrows and we cannot decode again (16-bit CMYK TIFF, SGI, plain-text PPM, a
PIL image passed in without a file behind it) keep Pillow's 8 bits: DEPTH_REDUCED is still set and
a warning is logged.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from s2c_pipeline.imaging.errors import ImageRejected, pillow_failures_rejected

logger = logging.getLogger(__name__)

Reopen = Callable[[], Image.Image]
"""Opens the same file again, lazily (pixels not decoded yet)."""

_GREY16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_WIDE_MODES = _GREY16_MODES | {"I", "F"}  # modes in which Pillow keeps the samples as they are
_REDECODABLE = re.compile(r"^(RGB|RGBA|RGBX);16([BLN])$")
_NARROWED = re.compile(r";16[BLN]$")  # "BGR;16" (BMP 5-6-5) is 16 bits per pixel, not per sample
_REDECODABLE_CODECS = frozenset({"zip", "raw", "libtiff"})
_NATIVE = "L" if sys.byteorder == "little" else "B"
_OTHER_ORDER = {"B": "L", "L": "B"}


@dataclass(frozen=True)
class WideLayout:
    """How to decode a file again to get the 16-bit samples that Pillow narrows to 8 bits."""

    codec: str | None  # decoder to use instead of each tile's own; None keeps it
    high: str  # rawmode giving the high bytes, or every byte (big-endian pairs) when low is None
    low: str | None  # rawmode giving the low bytes
    maxval: int


@dataclass(frozen=True)
class DepthPlan:
    """What an opened, not yet decoded image needs; read from its tiles, which load() clears."""

    layout: WideLayout | None
    narrowed_by_pillow: bool


def plan_depth(im: Image.Image) -> DepthPlan:
    """Inspect the decoder tiles of a lazily opened image for samples Pillow will narrow."""
    tiles = getattr(im, "tile", [])  # only ImageFile has tiles; an Image made in memory has none
    rawmodes = {_rawmode(tile[3]) for tile in tiles}
    codecs = {tile[0] for tile in tiles}
    if len(rawmodes) != 1 or len(codecs) != 1:  # no tiles (already decoded) or a mixed layout
        return DepthPlan(None, narrowed_by_pillow=any(r and _NARROWED.search(r) for r in rawmodes))
    (rawmode,), (codec,) = rawmodes, codecs
    if im.mode in _WIDE_MODES:
        return DepthPlan(None, narrowed_by_pillow=False)
    if codec in ("ppm", "ppm_plain"):
        maxval = _ppm_maxval(tiles[0][3])
        if im.mode != "RGB" or maxval <= 255:
            return DepthPlan(None, narrowed_by_pillow=False)
        layout = WideLayout("raw", "RGB;16B", "RGB;16L", maxval) if codec == "ppm" else None
        return DepthPlan(layout, narrowed_by_pillow=True)
    if rawmode is None or not _NARROWED.search(rawmode):
        return DepthPlan(None, narrowed_by_pillow=False)
    if codec == "zip" and rawmode == "LA;16B":  # PNG grey+alpha, which Pillow opens as RGBA
        return DepthPlan(WideLayout(None, "RGBA", None, 65535), narrowed_by_pillow=True)
    match = _REDECODABLE.match(rawmode)
    if match is None or codec not in _REDECODABLE_CODECS:
        return DepthPlan(None, narrowed_by_pillow=True)
    base, order = match.groups()
    order = _NATIVE if order == "N" else order
    layout = WideLayout(None, f"{base};16{order}", f"{base};16{_OTHER_ORDER[order]}", 65535)
    return DepthPlan(layout, narrowed_by_pillow=True)


def to_eight_bit(im: Image.Image, plan: DepthPlan, reopen: Reopen | None) -> tuple[Image.Image, bool]:
    """Return an 8-bit image of the decoded `im`, and whether its depth was reduced."""
    if plan.layout is not None and reopen is not None:
        return _redecode(plan.layout, reopen, im), True
    if plan.narrowed_by_pillow:
        logger.warning(
            "16-bit samples narrowed by Pillow (high byte or floor, up to one level off rounding): "
            "pass the file's bytes or path to load_image for exact rounding"
        )
        return im, True
    if im.mode == "F":
        raise ImageRejected(
            "pixel mode 'F' (32-bit float) is not supported: its range is not defined; "
            "convert to 8- or 16-bit integer samples first"
        )
    if im.mode in _GREY16_MODES or im.mode == "I":
        return _grey16_to_8bit(im), True
    return im, False


def _grey16_to_8bit(im: Image.Image) -> Image.Image:
    wide = np.asarray(im)
    if im.mode == "I":
        low, high = int(wide.min()), int(wide.max())
        if low < 0 or high > 65535:
            raise ImageRejected(
                f"pixel mode 'I' (32-bit integer) with values {low}..{high}, outside the 16-bit range "
                "0..65535 that is scaled to 8 bits; rescale the image to 16 or 8 bits first"
            )
    grey = _round_to_8bit(wide, 65535)
    transparency = im.info.get("transparency")
    if isinstance(transparency, int):
        alpha = np.where(wide == transparency, 0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([grey, alpha], axis=-1))
    return Image.fromarray(grey)


def _redecode(layout: WideLayout, reopen: Reopen, decoded: Image.Image) -> Image.Image:
    """Combine the passes; Pillow's own decode of a PNG or TIFF already is the high-byte pass."""
    if layout.low is None:
        wide = _decode_pass(reopen, layout.codec, layout.high).view(">u2")
    else:
        high = (
            np.asarray(decoded) if layout.codec is None else _decode_pass(reopen, layout.codec, layout.high)
        )
        wide = (high.astype(np.uint16) << 8) | _decode_pass(reopen, layout.codec, layout.low)
    eight = _round_to_8bit(wide, layout.maxval)
    transparency = decoded.info.get("transparency")
    if eight.shape[-1] == 3 and isinstance(transparency, tuple) and len(transparency) == 3:
        opaque = np.any(wide != np.asarray(transparency, dtype=wide.dtype), axis=-1)
        eight = np.concatenate([eight, np.where(opaque, 255, 0).astype(np.uint8)[..., None]], axis=-1)
    return Image.fromarray(np.ascontiguousarray(eight))


def _decode_pass(reopen: Reopen, codec: str | None, rawmode: str) -> np.ndarray:
    with pillow_failures_rejected(), reopen() as im:
        im.tile = [_retiled(tile, codec, rawmode) for tile in im.tile]
        im.load()
        return np.asarray(im)


def _retiled(tile: tuple, codec: str | None, rawmode: str) -> tuple:
    name, extents, offset, args = tile
    new = (
        (codec, extents, offset, rawmode) if codec else (name, extents, offset, _with_rawmode(args, rawmode))
    )
    return type(tile)(*new) if hasattr(tile, "_fields") else new  # Pillow >= 11 tiles are named tuples


def _round_to_8bit(wide: np.ndarray, maxval: int) -> np.ndarray:
    samples = np.minimum(wide.astype(np.uint32), maxval)
    return ((samples * 510 + maxval) // (2 * maxval)).astype(np.uint8)


def _ppm_maxval(args: object) -> int:
    if isinstance(args, tuple) and len(args) == 2 and isinstance(args[1], int):
        return args[1]
    return 255


def _rawmode(args: object) -> str | None:
    if isinstance(args, str):
        return args
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return None


def _with_rawmode(args: object, rawmode: str) -> object:
    return (rawmode, *args[1:]) if isinstance(args, tuple) else rawmode

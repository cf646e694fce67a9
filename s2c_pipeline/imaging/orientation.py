"""EXIF orientation, applied to the pixels so that every decoder shows the image upright.

A decoded .s2c image has no reader that honours the tag, so we turn the pixels and keep the rest of
the EXIF with Orientation set to 1 (what Pillow's ImageOps.exif_transpose does, except that it
deletes the tag).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from PIL import ExifTags, Image

logger = logging.getLogger(__name__)

_EXIF_HEADER = b"Exif\x00\x00"
_TIFF_HEADERS = (b"II*\x00", b"MM\x00*")
# The same table as PIL.ImageOps.exif_transpose; tests check that both agree.
TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class ExifPlan:
    """The orientation to apply (1 = none) and the EXIF block to carry, already updated."""

    orientation: int
    exif: bytes | None


def plan_exif(im: Image.Image) -> ExifPlan:
    """Read the orientation of a decoded image; unreadable EXIF is carried as is, not applied.

    The carried block is the one the file embeds (JPEG APP1, PNG eXIf, WebP EXIF), in APP1 form
    (b"Exif\\0\\0" + TIFF structure). A TIFF's own tags are not EXIF and are not carried, though
    its Orientation tag is applied.
    """
    raw = im.info.get("exif")
    raw = _EXIF_HEADER + raw if isinstance(raw, bytes) and raw.startswith(_TIFF_HEADERS) else raw
    raw = raw if isinstance(raw, bytes) and raw else None
    try:
        exif = im.getexif()
        orientation = exif.get(ExifTags.Base.Orientation)
        if orientation not in TRANSPOSE_FOR_ORIENTATION:
            return ExifPlan(1, raw)
        if raw is not None:
            exif[ExifTags.Base.Orientation] = 1
            raw = exif.tobytes()
    except Exception as exc:  # Pillow raises many types on damaged EXIF; the pixels are still good
        logger.warning(
            "EXIF cannot be parsed (%s: %s); carried as is, orientation not applied", type(exc).__name__, exc
        )
        return ExifPlan(1, raw)
    return ExifPlan(orientation, raw)


def apply_orientation(im: Image.Image, orientation: int) -> Image.Image:
    """Turn the pixels so that the image is upright; orientation 1 returns `im` itself."""
    method = TRANSPOSE_FOR_ORIENTATION.get(orientation)
    return im if method is None else im.transpose(method)

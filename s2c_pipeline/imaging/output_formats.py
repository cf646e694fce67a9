"""Decoded images out as lossless files, the format chosen by the file name.

PNG, WebP (lossless, RGB kept under fully transparent pixels), TIFF (LZW) and PPM keep every decoded
sample value, so choosing one never adds a second loss; lossy formats such as JPEG are refused
(convert the PNG if you want one). WebP stores grey images as RGB with equal channels. What a
format cannot hold (alpha in PPM, more than 16383 pixels a side in WebP) is refused from the header
alone, before any decoding work; PPM cannot carry an ICC profile or EXIF, so those are dropped with
a warning.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputFormat:
    name: str  # Pillow's format name
    extensions: tuple[str, ...]
    alpha: bool  # can hold an alpha channel
    metadata: bool  # keeps the ICC profile and EXIF
    max_side: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def check(self, path: str, *, width: int, height: int, alpha: bool) -> None:
        """ValueError when this format cannot hold the image a header describes."""
        if alpha and not self.alpha:
            raise ValueError(
                f"{path}: {self.name} has no alpha channel and this image has one; write .png, .webp or .tiff"
            )
        if self.max_side is not None and max(width, height) > self.max_side:
            raise ValueError(
                f"{path}: {self.name} holds at most {self.max_side} pixels a side and this image is "
                f"{width}x{height}; write .png or .tiff"
            )

    def encode(self, image: Image.Image, path: str) -> bytes:
        """The file's bytes, with the ICC profile and EXIF from ``image.info`` where the format keeps them."""
        options = dict(self.options)
        carried = {key: image.info[key] for key in ("icc_profile", "exif") if image.info.get(key)}
        if self.metadata:
            options.update(carried)
        elif carried:
            log.warning("%s: %s cannot carry the %s; dropped", path, self.name, " and ".join(sorted(carried)))
        out = io.BytesIO()
        image.save(out, format=self.name, **options)
        return out.getvalue()


PNG = OutputFormat("PNG", (".png",), alpha=True, metadata=True)
FORMATS = (
    PNG,
    OutputFormat(
        "WEBP",
        (".webp",),
        alpha=True,
        metadata=True,
        max_side=16383,
        options={"lossless": True, "exact": True},
    ),
    OutputFormat("TIFF", (".tif", ".tiff"), alpha=True, metadata=True, options={"compression": "tiff_lzw"}),
    OutputFormat("PPM", (".ppm", ".pnm"), alpha=False, metadata=False),
)


def format_for(path: str | Path) -> OutputFormat:
    """The format ``path``'s extension names; ValueError listing the choices for any other."""
    suffix = Path(path).suffix.lower()
    for fmt in FORMATS:
        if suffix in fmt.extensions:
            return fmt
    choices = ", ".join(e for fmt in FORMATS for e in fmt.extensions)
    raise ValueError(
        f"{path}: cannot tell a lossless image format from {suffix or 'a name without an extension'}; "
        f"end the name with one of {choices}"
    )

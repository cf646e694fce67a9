"""The classical codecs we compare against, through Pillow, in memory, with their settings pinned.

Every setting that changes the numbers is explicit here rather than left to a Pillow default, so a
result names what it measured: JPEG with optimised Huffman tables and 4:2:0 (what a careful user
of libjpeg-turbo gets; plain defaults would flatter us by a few percent), WebP at method 6 (its
best), AVIF at speed 6 (the default speed 0 takes seconds per image), JPEG XL at effort 7 (its
default). All take 8-bit RGB and no metadata, so the file size is the cost of the pixels.

A codec this Pillow cannot write is skipped with the reason, never a crash: JPEG XL needs the
``pillow-jxl-plugin`` package, AVIF a Pillow built with libavif and an AV1 encoder.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import io
import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image, features

log = logging.getLogger(__name__)

_SWEEP = (5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 95)


@dataclass(frozen=True)
class ClassicalCodec:
    """One Pillow format with fixed options and the quality settings swept (higher = more bits)."""

    name: str
    pillow_format: str
    settings: tuple[int, ...]
    options: tuple[tuple[str, object], ...]
    library: str

    @property
    def description(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options)
        return f"Pillow {self.pillow_format} ({self.library}); quality {self.settings[0]}..{self.settings[-1]}; {opts}"

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        """The whole file a user would store, for an (H, W, 3) uint8 image."""
        buffer = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buffer, self.pillow_format, quality=int(setting), **dict(self.options))
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != self.pillow_format:
                raise ValueError(f"{self.name}: decoded a {im.format} file, expected {self.pillow_format}")
            return np.array(im.convert("RGB"))  # a writable copy: torch warns on read-only arrays


def _library(feature: str, extra: str = "") -> str:
    version = features.version(feature)
    return f"{feature} {version}{extra}" if version else feature


def _avif_encoder() -> str:
    try:
        from PIL import _avif

        return f", {_avif.codec_versions()}"
    except (ImportError, AttributeError):
        return ""


def _jxl_library() -> str:
    importlib.import_module("pillow_jxl")  # registers the "JXL" format with Pillow
    return f"pillow-jxl-plugin {importlib.metadata.version('pillow-jxl-plugin')}"


def _build(name: str, threads: int) -> ClassicalCodec:
    if name == "jpeg":
        return ClassicalCodec(
            "jpeg", "JPEG", _SWEEP, (("optimize", True), ("subsampling", "4:2:0")), _library("libjpeg_turbo")
        )
    if name == "webp":
        return ClassicalCodec("webp", "WEBP", _SWEEP, (("method", 6), ("lossless", False)), _library("webp"))
    if name == "avif":
        options = (("speed", 6), ("subsampling", "4:2:0"), ("max_threads", threads))
        return ClassicalCodec("avif", "AVIF", _SWEEP, options, _library("avif", _avif_encoder()))
    if name == "jxl":
        return ClassicalCodec("jxl", "JXL", _SWEEP, (("effort", 7), ("num_threads", threads)), _jxl_library())
    raise ValueError(f"unknown classical codec {name!r}; known: {', '.join(CLASSICAL_NAMES)}")


CLASSICAL_NAMES = ("jpeg", "webp", "avif", "jxl")
_INSTALL_HINT = {
    "jxl": "install it with: pip install pillow-jxl-plugin",
    "avif": "Pillow >= 11.2 wheels include AVIF; a source build needs libavif with an AV1 encoder (aom)",
    "webp": "use a Pillow wheel, which includes libwebp",
    "jpeg": "use a Pillow wheel, which includes libjpeg-turbo",
}


def classical_codecs(names: list[str], *, threads: int = 1) -> tuple[list[ClassicalCodec], dict[str, str]]:
    """The usable codecs among ``names``, and {name: why it was skipped} for the others.

    Each codec is probed with a real encode and decode of a small image, since Pillow can list a
    format that it can only read. Raises ValueError for a name that is not a codec we know.
    ``threads`` caps AVIF's and JPEG XL's encoder threads, to time them like our one-thread codec.
    """
    unknown = [n for n in names if n not in CLASSICAL_NAMES]
    if unknown:
        raise ValueError(f"unknown codec {', '.join(map(repr, unknown))}; known: {', '.join(CLASSICAL_NAMES)}")
    probe = np.add.outer(np.arange(32), np.arange(32)).astype(np.uint8)[..., None].repeat(3, axis=2) * 4
    usable: list[ClassicalCodec] = []
    skipped: dict[str, str] = {}
    for name in names:
        try:
            codec = _build(name, threads)
            if codec.decode(codec.encode(probe, 50)).shape != probe.shape:
                raise ValueError("decoded image has the wrong size")
        except (ImportError, OSError, ValueError, KeyError, RuntimeError) as exc:
            skipped[name] = f"{type(exc).__name__}: {exc}; {_INSTALL_HINT[name]}"
            log.warning("codec %s is not available and is skipped (%s)", name, skipped[name])
            continue
        usable.append(codec)
    return usable, skipped

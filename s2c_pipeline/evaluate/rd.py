"""Rate-distortion sweeps: every image through every codec at every setting, measured the same way.

All codecs, ours and the classical ones, sit behind one small interface (``Contender``): encode to
the bytes a user would store, decode them back. Measurement (file size, PSNR, MS-SSIM, time) then
happens in one place, so no codec is measured more kindly than another.
"""

from __future__ import annotations

import hashlib
import logging
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np
from tqdm import tqdm

from s2c_pipeline.imaging import ms_ssim, psnr

log = logging.getLogger(__name__)


class Contender(Protocol):
    """A codec under evaluation. ``settings`` go from fewest to most bits."""

    name: str
    settings: tuple[float, ...]

    def encode(self, rgb: np.ndarray, setting: float) -> bytes: ...

    def decode(self, data: bytes) -> np.ndarray: ...


@dataclass(frozen=True)
class EvalImage:
    """An image to evaluate on: a name for tables and the (H, W, 3) uint8 pixels every codec codes.

    ``provenance`` holds, for catalogue photos, package, version, path, licence, credit and sizes.
    """

    name: str
    rgb: np.ndarray
    source: str
    provenance: Mapping[str, object] | None = None

    @property
    def sha256(self) -> str:
        """SHA-256 of the pixels as coded (row-major uint8 RGB): names exactly what was measured."""
        return hashlib.sha256(np.ascontiguousarray(self.rgb, dtype=np.uint8).tobytes()).hexdigest()


@dataclass(frozen=True)
class RDPoint:
    """One image coded by one codec at one setting.

    ``bpp`` is 8 * len(file) / (width * height), the file being everything a user stores (for
    ``.s2c`` the header included). PSNR is over RGB, 8-bit, in dB; ``ms_ssim`` is in [0, 1].
    """

    image: str
    codec: str
    setting: float
    num_bytes: int
    width: int
    height: int
    psnr: float
    ms_ssim: float
    encode_ms: float
    decode_ms: float

    @property
    def bpp(self) -> float:
        return self.num_bytes * 8 / (self.width * self.height)

    @property
    def ms_ssim_db(self) -> float:
        return ms_ssim_to_db(self.ms_ssim)

    def to_dict(self) -> dict:
        return {**asdict(self), "bpp": self.bpp, "ms_ssim_db": self.ms_ssim_db}


@dataclass(frozen=True)
class CurvePoint:
    """The mean over images of one codec at one setting: the points of the averaged RD curve.

    PSNR and MS-SSIM dB are averaged in dB (the usual convention, e.g. CompressAI's), bpp and times
    arithmetically.
    """

    codec: str
    setting: float
    bpp: float
    psnr: float
    ms_ssim: float
    ms_ssim_db: float
    encode_ms: float
    decode_ms: float
    images: int

    def to_dict(self) -> dict:
        return asdict(self)


def ms_ssim_to_db(value: float) -> float:
    """-10 log10(1 - MS-SSIM): spreads the values near 1 where codecs differ; inf for a perfect match."""
    if math.isnan(value):
        return math.nan
    return math.inf if value >= 1.0 else -10.0 * math.log10(1.0 - value)


def measure(contender: Contender, image: EvalImage, setting: float) -> RDPoint:
    t0 = time.perf_counter()
    data = contender.encode(image.rgb, setting)
    t1 = time.perf_counter()
    decoded = contender.decode(data)
    t2 = time.perf_counter()
    height, width = image.rgb.shape[:2]
    return RDPoint(
        image=image.name,
        codec=contender.name,
        setting=float(setting),
        num_bytes=len(data),
        width=width,
        height=height,
        psnr=psnr(image.rgb, decoded),
        ms_ssim=ms_ssim(image.rgb, decoded),
        encode_ms=(t1 - t0) * 1000,
        decode_ms=(t2 - t1) * 1000,
    )


def sweep(
    images: Sequence[EvalImage], contenders: Sequence[Contender], *, progress: bool = True
) -> list[RDPoint]:
    """Measure every image x contender x setting; a tqdm bar (stderr) counts image x contender."""
    points: list[RDPoint] = []
    with tqdm(total=len(images) * len(contenders), unit="run", desc="eval", disable=not progress) as bar:
        for image in images:
            for contender in contenders:
                bar.set_postfix_str(f"{image.name} {contender.name}", refresh=False)
                points.extend(measure(contender, image, s) for s in contender.settings)
                bar.update(1)
    return points


def mean_curve(points: Sequence[RDPoint], codec: str) -> list[CurvePoint]:
    """The codec's curve averaged over images, one point per setting, sorted by setting."""
    by_setting: dict[float, list[RDPoint]] = {}
    for p in points:
        if p.codec == codec:
            by_setting.setdefault(p.setting, []).append(p)
    curve = []
    for setting, group in sorted(by_setting.items()):
        curve.append(
            CurvePoint(
                codec=codec,
                setting=setting,
                bpp=statistics.fmean(p.bpp for p in group),
                psnr=statistics.fmean(p.psnr for p in group),
                ms_ssim=statistics.fmean(p.ms_ssim for p in group),
                ms_ssim_db=statistics.fmean(p.ms_ssim_db for p in group),
                encode_ms=statistics.fmean(p.encode_ms for p in group),
                decode_ms=statistics.fmean(p.decode_ms for p in group),
                images=len(group),
            )
        )
    return curve

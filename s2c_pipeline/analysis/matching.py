"""The classical codecs on the sampled images, each at the setting that matches our codec's quality.

Two ways to match, both on PSNR (RGB, dB), the metric ``s2c compress --target-psnr`` targets:

- **levels**: for each of our quality levels, the smallest setting whose weighted mean PSNR over
  the sample reaches our weighted mean PSNR at that level (one setting per codec and level, as a
  planner would configure a batch job);
- **target**: per image, the smallest setting that reaches ``--target-psnr``; an image that even
  the best setting cannot lift to the target is coded at that setting and marked
  ``target_not_reached``.

Settings are the codecs' quality numbers 1..99 (JPEG XL refuses 100 with our options). Both
searches bisect, assuming PSNR grows with the setting, which holds for all four codecs up to small
wiggles (a wiggle can make the found setting one or two steps higher than the smallest). Probes
measure size and PSNR only; the chosen setting is then coded once more and measured in full
(MS-SSIM, encode and decode time), so every number in the report comes from a real file.

Images are re-decoded from their source bytes for each pass rather than held as pixels: a sample
of 200 photos stays a few hundred MB smaller.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from s2c_pipeline.analysis.coding import CodedImage
from s2c_pipeline.archive.outcomes import status_of
from s2c_pipeline.archive.status import Status
from s2c_pipeline.codec.encode_and_verify import NotCoded, prepare_image
from s2c_pipeline.evaluate.classical import ClassicalCodec
from s2c_pipeline.imaging import ms_ssim, psnr

LOWEST, HIGHEST = 1, 99
PSNR_CAP = 100.0
"""A lossless decode (PSNR infinite) counts as this many dB in a mean."""


@dataclass(frozen=True)
class SampledSource:
    """One sampled image as the classical codecs see it: its source bytes and sampling weight."""

    data: bytes
    weight: float


@dataclass(frozen=True)
class Probe:
    num_bytes: int
    psnr: float


@dataclass(frozen=True)
class LevelMatch:
    """A codec matched to one of our levels: the setting, and whether its mean PSNR reaches ours."""

    target_psnr: float
    setting: int
    mean_psnr: float
    reached: bool
    coded: tuple[CodedImage, ...]


def _pixels(source: SampledSource, max_pixels: int) -> np.ndarray | None:
    try:
        return prepare_image(source.data, max_pixels).rgb
    except NotCoded:
        return None


def _not_coded(source: SampledSource, setting: float, max_pixels: int) -> CodedImage:
    try:
        prepare_image(source.data, max_pixels)
    except NotCoded as failure:
        return CodedImage(setting, status_of(failure), len(source.data), len(source.data), error=failure.error)
    raise AssertionError("called for an image that prepares")


def probe(codec: ClassicalCodec, rgb: np.ndarray, setting: int) -> Probe:
    data = codec.encode(rgb, setting)
    return Probe(len(data), psnr(rgb, codec.decode(data)))


def measure_full(codec: ClassicalCodec, rgb: np.ndarray, setting: int, source_bytes: int,
                 *, target_psnr: float | None = None) -> CodedImage:
    """Code once at ``setting`` and measure everything; an encoder error is ``encode_error``,
    counted at the source size (the image would be kept as it is)."""
    try:
        started = time.perf_counter()
        data = codec.encode(rgb, setting)
        encoded = time.perf_counter()
        decoded = codec.decode(data)
        done = time.perf_counter()
    except (OSError, ValueError, RuntimeError) as exc:
        return CodedImage(setting, Status.ENCODE_ERROR, source_bytes, source_bytes,
                          error=f"{codec.name}: {type(exc).__name__}: {exc}".splitlines()[0])
    height, width = rgb.shape[:2]
    value = psnr(rgb, decoded)
    return CodedImage(setting, Status.OK, source_bytes, len(data), width, height, value, ms_ssim(rgb, decoded),
                      (encoded - started) * 1000, (done - encoded) * 1000,
                      target_missed=target_psnr is not None and value < target_psnr)


def smallest_setting(reaches: Callable[[int], bool]) -> tuple[int, bool]:
    """The smallest setting in LOWEST..HIGHEST for which ``reaches`` is true (bisection), and
    whether any does; HIGHEST when none does."""
    if not reaches(HIGHEST):
        return HIGHEST, False
    lo, hi = LOWEST, HIGHEST
    while lo < hi:
        mid = (lo + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo, True


def _nothing() -> None:
    return None


def code_to_target(codec: ClassicalCodec, sources: Sequence[SampledSource], target_psnr: float,
                   max_pixels: int, tick: Callable[[], object] = _nothing) -> tuple[CodedImage, ...]:
    """Each image at the smallest setting reaching ``target_psnr`` (module doc); ``tick`` is called
    once per encode (progress)."""
    out = []
    for source in sources:
        rgb = _pixels(source, max_pixels)
        if rgb is None:
            out.append(_not_coded(source, math.nan, max_pixels))
            continue
        cache: dict[int, Probe] = {}

        def reaches(setting: int, rgb: np.ndarray = rgb, cache: dict[int, Probe] = cache) -> bool:
            if setting not in cache:
                cache[setting] = probe(codec, rgb, setting)
                tick()
            return cache[setting].psnr >= target_psnr

        try:
            setting, _ = smallest_setting(reaches)
        except (OSError, ValueError, RuntimeError):
            setting = HIGHEST  # measure_full records the encoder's error
        out.append(measure_full(codec, rgb, setting, len(source.data), target_psnr=target_psnr))
        tick()
    return tuple(out)


def match_levels(codec: ClassicalCodec, sources: Sequence[SampledSource], targets: Sequence[float],
                 included: Sequence[Sequence[bool]], max_pixels: int, tick: Callable[[], object] = _nothing
                 ) -> tuple[LevelMatch, ...]:
    """For each target mean PSNR (ours at a level), the smallest setting whose weighted mean PSNR
    over the ``included`` images of that level (those our codec coded) reaches it (module doc);
    ``tick`` is called once per encode (progress)."""
    cache: dict[int, list[Probe | None]] = {}

    def probes(setting: int) -> list[Probe | None]:
        if setting not in cache:
            row: list[Probe | None] = []
            for source in sources:
                rgb = _pixels(source, max_pixels)
                try:
                    row.append(None if rgb is None else probe(codec, rgb, setting))
                except (OSError, ValueError, RuntimeError):
                    row.append(None)
                tick()
            cache[setting] = row
        return cache[setting]

    def mean_psnr(setting: int, mask: Sequence[bool]) -> float:
        pairs = [(min(p.psnr, PSNR_CAP), s.weight) for p, s, keep in zip(probes(setting), sources, mask, strict=True)
                 if keep and p is not None]
        if not pairs:
            return math.nan
        values, weights = zip(*pairs, strict=True)
        return float(np.average(values, weights=weights))

    out = []
    for target, mask in zip(targets, included, strict=True):
        setting, reached = smallest_setting(lambda s, t=target, m=mask: mean_psnr(s, m) >= t)
        coded = []
        for source in sources:
            rgb = _pixels(source, max_pixels)
            coded.append(_not_coded(source, setting, max_pixels) if rgb is None
                         else measure_full(codec, rgb, setting, len(source.data)))
            tick()
        out.append(LevelMatch(target, setting, mean_psnr(setting, mask), reached, tuple(coded)))
    return tuple(out)

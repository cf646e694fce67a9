"""Bjøntegaard delta rate: the average bitrate change of one RD curve against another.

We use the piecewise-cubic variant (as in VTM's spreadsheet and CompressAI's ``bd_rate`` with
``piecewise=True``): log-rate is interpolated over quality with a monotone PCHIP, both curves are
integrated over the quality range they share, and the mean log-rate difference is turned into a
percentage. PCHIP, unlike Bjøntegaard's original cubic polynomial, cannot overshoot between points,
so a curve with a kink does not produce a wild number. Negative means the test codec needs fewer
bits than the anchor for the same quality.

A BD-rate over a thin slice of quality says little, so a small overlap is flagged (and logged), and
no overlap gives no number at all, with the reason.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

log = logging.getLogger(__name__)

MIN_OVERLAP_DB = 1.0
MIN_OVERLAP_FRACTION = 0.5

NO_OVERLAP = "no_overlap"
SMALL_OVERLAP = "small_overlap"
TOO_FEW_POINTS = "too_few_points"
DROPPED_POINTS = "dropped_points"


@dataclass(frozen=True)
class BDRate:
    """One BD-rate of ``test`` against ``anchor`` on one quality metric (dB).

    ``value_pct`` is None when no number can be given; ``reason`` then says why. ``flags`` holds
    any of NO_OVERLAP, SMALL_OVERLAP, TOO_FEW_POINTS, DROPPED_POINTS (points off the Pareto front or
    with an infinite quality were left out of the fit).
    """

    value_pct: float | None
    overlap_db: tuple[float, float] | None
    anchor_range_db: tuple[float, float] | None
    test_range_db: tuple[float, float] | None
    flags: tuple[str, ...] = ()
    reason: str | None = None

    def to_dict(self) -> dict:
        return {
            "value_pct": self.value_pct,
            "overlap_db": list(self.overlap_db) if self.overlap_db else None,
            "anchor_range_db": list(self.anchor_range_db) if self.anchor_range_db else None,
            "test_range_db": list(self.test_range_db) if self.test_range_db else None,
            "flags": list(self.flags),
            "reason": self.reason,
        }


def bd_rate(
    anchor: Sequence[tuple[float, float]],
    test: Sequence[tuple[float, float]],
    *,
    label: str = "",
    warn: bool = True,
    min_overlap_db: float = MIN_OVERLAP_DB,
    min_overlap_fraction: float = MIN_OVERLAP_FRACTION,
) -> BDRate:
    """BD-rate in percent of ``test`` against ``anchor``; each curve is ``[(rate, quality_db), ...]``.

    Rate may be in any unit (bpp, bytes) as long as both curves use the same one. ``label`` names
    the pair in the log line, a warning when ``warn`` (else debug: per-image values, whose flags
    the caller keeps anyway).
    """
    level = logging.WARNING if warn else logging.DEBUG
    (a_q, a_lr, a_dropped), (t_q, t_lr, t_dropped) = _front(anchor), _front(test)
    flags = [DROPPED_POINTS] if a_dropped or t_dropped else []
    if len(a_q) < 2 or len(t_q) < 2:
        reason = f"too few usable points (anchor {len(a_q)}, test {len(t_q)}; PCHIP needs 2 per curve)"
        return _none(label, reason, (*flags, TOO_FEW_POINTS), level)
    a_range, t_range = (float(a_q[0]), float(a_q[-1])), (float(t_q[0]), float(t_q[-1]))
    lo, hi = max(a_range[0], t_range[0]), min(a_range[1], t_range[1])
    if hi <= lo:
        reason = (
            f"quality ranges do not overlap: anchor {a_range[0]:.2f}-{a_range[1]:.2f} dB, "
            f"test {t_range[0]:.2f}-{t_range[1]:.2f} dB"
        )
        return _none(label, reason, (*flags, NO_OVERLAP), level, a_range, t_range)
    width = hi - lo
    reason = None
    if width < min_overlap_db or any(
        width < min_overlap_fraction * (r[1] - r[0]) for r in (a_range, t_range)
    ):
        flags.append(SMALL_OVERLAP)
        reason = (
            f"small overlap: {lo:.2f}-{hi:.2f} dB ({width:.2f} dB) of anchor "
            f"{a_range[0]:.2f}-{a_range[1]:.2f} "
            f"and test {t_range[0]:.2f}-{t_range[1]:.2f} dB"
        )
        log.log(level, "BD-rate %s: %s; the number describes only that range", label, reason)
    a_mean = PchipInterpolator(a_q, a_lr).integrate(lo, hi) / width
    t_mean = PchipInterpolator(t_q, t_lr).integrate(lo, hi) / width
    value = float(math.expm1(t_mean - a_mean) * 100.0)
    return BDRate(value, (float(lo), float(hi)), a_range, t_range, tuple(flags), reason)


def _front(points: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray, bool]:
    """(quality, log rate) of the points on the Pareto front, quality strictly increasing.

    PCHIP needs strictly increasing x. A real RD curve can dip (a higher setting that is no better)
    or reach infinite PSNR (lossless); such points say nothing about the rate a quality costs.
    """
    usable = sorted((r, q) for r, q in points if r > 0 and math.isfinite(r) and math.isfinite(q))
    kept: list[tuple[float, float]] = []
    for rate, quality in usable:
        if not kept or quality > kept[-1][1]:
            kept.append((rate, quality))
    q = np.array([p[1] for p in kept], dtype=np.float64)
    lr = np.log(np.array([p[0] for p in kept], dtype=np.float64))
    return q, lr, len(kept) < len(points)


def _none(
    label: str,
    reason: str,
    flags: tuple[str, ...],
    level: int,
    a_range: tuple[float, float] | None = None,
    t_range: tuple[float, float] | None = None,
) -> BDRate:
    log.log(level, "BD-rate %s: no value, %s", label, reason)
    return BDRate(None, None, a_range, t_range, flags, reason)

"""Means and percentiles of per-image metrics, weighted so a sample speaks for its dataset.

In a two-stage sample an image drawn from a shard of 1,000 images stands for more of the dataset
than one drawn from a shard of 100, so summaries weight each image by the inverse of its chance of
being drawn. A run's manifest is a census: its weights are all 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

PERCENTILES = (5, 50, 95)


@dataclass(frozen=True)
class Summary:
    """Of the finite values only (an identical reconstruction has PSNR = inf and is left out)."""

    count: int
    mean: float
    p5: float
    p50: float
    p95: float

    def to_dict(self) -> dict:
        return asdict(self)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The ``q`` quantile (0..1) of the distribution putting ``weights`` on ``values``.

    Interpolates between the midpoints of each value's weight, which for equal weights gives
    numpy's "hazen" percentiles.
    """
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    positions = (np.cumsum(w) - 0.5 * w) / np.sum(w)
    return float(np.interp(q, positions, v))


def summarize(values: Sequence[float], weights: Sequence[float] | None = None) -> Summary:
    v = np.asarray(values, dtype=float)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=float)
    keep = np.isfinite(v)
    v, w = v[keep], w[keep]
    if not len(v):
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    p5, p50, p95 = (weighted_quantile(v, w, p / 100) for p in PERCENTILES)
    return Summary(len(v), float(np.average(v, weights=w)), p5, p50, p95)

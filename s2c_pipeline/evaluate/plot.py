"""The RD plot, drawn one way for ``s2c eval`` and the ``s2c analyze`` report.

PSNR and MS-SSIM (dB) against bpp, one colour per codec: the mean curve bold, and where the caller
has them, every image's points faint behind it. The bpp axis stops a little past the learned
model's largest rate (or the largest one plotted without one), since JPEG's top settings reach
several bpp and would squeeze the range where codecs differ into a corner. ``analysis`` imports
this module; it imports nothing of ``analysis``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:
    from s2c_pipeline.evaluate.run import EvalResult

DPI = 110
CLASSICAL_STYLE = {
    "jpeg": ("tab:gray", "s"),
    "webp": ("tab:green", "^"),
    "avif": ("tab:purple", "D"),
    "jxl": ("tab:orange", "v"),
}
"""(colour, marker) of each classical codec; anything else is drawn black with an x."""
LEARNED_COLOURS = ("tab:red", "tab:blue", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
_PANELS = (("psnr", "PSNR (RGB) [dB]"), ("ms_ssim_db", "MS-SSIM [dB]  (-10 log10(1 - MS-SSIM))"))


@dataclass(frozen=True)
class RDSeries:
    """The mean curve (bold) of one codec and, optionally, its per-image points (faint), in bpp and dB."""

    label: str
    bpp: Sequence[float]
    psnr: Sequence[float]
    ms_ssim_db: Sequence[float]
    mean_bpp: Sequence[float]
    mean_psnr: Sequence[float]
    mean_ms_ssim_db: Sequence[float]
    colour: str
    marker: str = "o"
    learned: bool = False


def plot_rd_series(series: Sequence[RDSeries], out: Path, title: str) -> Path:
    """Write the two-panel PNG to ``out`` and return its path."""
    x_max = _x_max(series)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), dpi=DPI)
    for ax, (metric, ylabel) in zip(axes, _PANELS, strict=True):
        for s in series:
            if len(s.bpp):
                ax.scatter(s.bpp, np.asarray(getattr(s, metric), float), s=14 if s.learned else 8,
                           alpha=0.35 if s.learned else 0.15, color=s.colour, marker=s.marker, linewidths=0)
            ax.plot(s.mean_bpp, getattr(s, f"mean_{metric}"), color=s.colour, marker=s.marker,
                    markersize=7 if s.learned else 5, linewidth=2.4 if s.learned else 1.4, label=s.label,
                    markeredgecolor="black" if s.learned else s.colour)
        ax.set_xlim(0, x_max)
        ax.set_ylim(*_y_limits(series, metric, x_max))
        ax.set_xlabel("bits per pixel (whole file)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=9)
    fig.suptitle(title)
    return save_figure(fig, out)


def plot_rd(result: EvalResult, out: Path) -> Path:
    """The RD plot of an ``s2c eval`` run: mean curves over its images, one per contender."""
    series = []
    learned_index = 0
    for info in result.contenders:
        curve = result.curve(info.name)
        if info.kind == "learned":
            colour, marker = LEARNED_COLOURS[learned_index % len(LEARNED_COLOURS)], "o"
            learned_index += 1
            label = f"{info.name} ({info.weights_id})"
        else:
            colour, marker = CLASSICAL_STYLE.get(info.name, ("black", "x"))
            label = info.name.upper()
        means = ([p.bpp for p in curve], [p.psnr for p in curve], [p.ms_ssim_db for p in curve])
        series.append(RDSeries(label, (), (), (), *means, colour, marker, learned=info.kind == "learned"))
    models = (
        ", ".join(dict.fromkeys(f"{c.model_name} {c.weights_id}" for c in result.learned))
        or "classical codecs only"
    )
    images = len(result.image_set.images)
    count = f"{images} image{'s' if images != 1 else ''}"
    return plot_rd_series(
        series, out, f"Rate-distortion on {result.image_set.name} ({count}, mean per setting): {models}"
    )


def save_figure(fig, out: Path) -> Path:
    """Lay out, write and close ``fig``; the folder is made if needed."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def _x_max(series: Sequence[RDSeries]) -> float:
    """A little past the learned rates: the 99th percentile of its images' bpp where they are
    plotted (one outlier must not set the scale), else its largest mean; never past every point."""
    finite = [b for s in series for b in (*s.bpp, *s.mean_bpp) if math.isfinite(b)]
    points = [b for s in series if s.learned for b in s.bpp if math.isfinite(b)]
    means = [b for s in series if s.learned for b in s.mean_bpp if math.isfinite(b)]
    if points:
        cap = 1.15 * float(np.percentile(points, 99))
    elif means:
        cap = 1.3 * max(means)
    else:
        cap = 2.0
    return min(cap, max(finite, default=1.0)) or 1.0


def _y_limits(series: Sequence[RDSeries], metric: str, x_max: float) -> tuple[float, float]:
    """The quality range of the points that are on screen, with a margin."""
    values = [v for s in series for b, v in zip(s.bpp, getattr(s, metric), strict=True)
              if b <= x_max and math.isfinite(v)]
    values += [v for s in series for b, v in zip(s.mean_bpp, getattr(s, f"mean_{metric}"), strict=True)
               if b <= x_max and math.isfinite(v)]
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    margin = 0.05 * (hi - lo) or 1.0
    return lo - margin, hi + margin

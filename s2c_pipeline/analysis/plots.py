"""The report PNGs: metric histograms, cost by storage class, throughput over time (the RD plot is
``evaluate.plot``'s, shared with ``s2c eval``).

Each function takes plain numbers (no analysis objects), writes one PNG and returns its path, so
both reports share them. Sizes and fonts are chosen to stay readable when a PNG is shown at the
width of a Markdown page.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from s2c_pipeline.evaluate.plot import DPI, save_figure


@dataclass(frozen=True)
class Series:
    """Values of one group (a quality level, a run) with optional per-value weights."""

    label: str
    values: Sequence[float]
    weights: Sequence[float] | None = None


@dataclass(frozen=True)
class CostBar:
    label: str
    """The legend entry (e.g. "current", "s2c q3.5 tars")."""
    values: Sequence[float]
    """$/month, one per storage class."""
    colour: str
    low: Sequence[float] | None = None
    high: Sequence[float] | None = None


def quality_colours(count: int) -> list[str]:
    cmap = plt.get_cmap("viridis")
    return [matplotlib.colors.to_hex(cmap(0.15 + 0.7 * i / max(count - 1, 1))) for i in range(count)]


def plot_histograms(panels: Sequence[tuple[str, Sequence[Series]]], out: Path, title: str) -> Path:
    """One histogram panel per (x label, series); series overlap as outlined steps with their mean."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.6), dpi=DPI, squeeze=False)
    for ax, (xlabel, series) in zip(axes[0], panels, strict=True):
        finite = [np.asarray(s.values, float)[np.isfinite(np.asarray(s.values, float))] for s in series]
        everything = np.concatenate(finite) if finite else np.array([])
        if not len(everything):
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
            ax.set_xlabel(xlabel)
            continue
        bins = np.histogram_bin_edges(everything, bins=min(40, max(8, int(math.sqrt(len(everything))) * 2)))
        colours = quality_colours(len(series))
        for s, values, colour in zip(series, finite, colours, strict=True):
            weights = None
            if s.weights is not None:
                weights = np.asarray(s.weights, float)[np.isfinite(np.asarray(s.values, float))]
            mean = np.average(values, weights=weights) if len(values) else math.nan
            ax.hist(values, bins=bins, weights=weights, histtype="stepfilled", alpha=0.25, color=colour)
            ax.hist(values, bins=bins, weights=weights, histtype="step", linewidth=1.8, color=colour,
                    label=f"{s.label} (mean {mean:.3g})")
            ax.axvline(mean, color=colour, linestyle="--", linewidth=1.2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("images" if all(s.weights is None for s in series) else "images (weighted)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle(title)
    return save_figure(fig, out)


def plot_costs(classes: Sequence[str], bars: Sequence[CostBar], out: Path, title: str,
               ylabel: str = "USD per month (log scale)") -> Path:
    """Grouped bars, one group per storage class, on a log scale: classes differ 20x in price, and
    what matters inside a group is the ratio between layouts. Whiskers show intervals; a value that
    is not finite (a payback that never comes) leaves its slot empty."""
    width = 0.84 / max(len(bars), 1)
    fig, ax = plt.subplots(figsize=(13, 6.4), dpi=DPI)
    x = np.arange(len(classes))
    for i, bar in enumerate(bars):
        positions = x - 0.42 + width * (i + 0.5)
        values = np.asarray(bar.values, float)
        values = np.where(np.isfinite(values), values, np.nan)
        errors = None
        if bar.low is not None and bar.high is not None:
            errors = np.vstack([values - np.asarray(bar.low), np.asarray(bar.high) - values]).clip(min=0)
        ax.bar(positions, values, width=width * 0.92, color=bar.colour, label=bar.label, yerr=errors,
               error_kw={"elinewidth": 1, "capsize": 2, "ecolor": "black"})
    ax.set_yscale("log")
    ax.set_xticks(x, [textwrap.fill(c, 16) for c in classes], fontsize=9)
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=9, ncols=min(len(bars), 3), loc="upper center", bbox_to_anchor=(0.5, -0.13))
    ax.set_title(title)
    return save_figure(fig, out)


def plot_intervals(labels: Sequence[str], values: Sequence[float], low: Sequence[float], high: Sequence[float],
                   colours: Sequence[str], out: Path, title: str, xlabel: str, reference: float | None = None) -> Path:
    """Horizontal bars with interval whiskers, one per label (top to bottom), and an optional
    reference line (e.g. today's bytes)."""
    fig, ax = plt.subplots(figsize=(10, max(3.8, 1.2 + 0.55 * len(labels))), dpi=DPI)
    y = np.arange(len(labels))[::-1]
    values = np.asarray(values, float)
    errors = np.vstack([values - np.asarray(low, float), np.asarray(high, float) - values]).clip(min=0)
    ax.barh(y, values, xerr=errors, color=list(colours), height=0.6,
            error_kw={"elinewidth": 1.2, "capsize": 4, "ecolor": "black"})
    for yi, value in zip(y, values, strict=True):
        ax.text(value, yi + 0.33, f" {value:.3g}", va="bottom", fontsize=8)
    if reference is not None:
        ax.axvline(reference, color="black", linestyle="--", linewidth=1, label="today")
        ax.legend(fontsize=9, loc="lower right")
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_xlim(left=0)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(title)
    return save_figure(fig, out)


def plot_throughput(elapsed_s: Sequence[float], cumulative: Sequence[float], bin_start_s: Sequence[float],
                    rate: Sequence[float], out: Path, title: str) -> Path:
    """Samples committed over time (left) and the commit rate in equal time bins (right), both from
    the run's start; a shard's samples count when its marker is written."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), dpi=DPI)
    minutes = np.concatenate([[0.0], np.asarray(elapsed_s, float) / 60])
    axes[0].step(minutes, np.concatenate([[0], cumulative]), where="post", color="tab:blue", linewidth=2)
    axes[0].plot(minutes[1:], cumulative, "o", color="tab:blue", markersize=3)
    axes[0].set_ylabel("samples committed")
    starts = np.asarray(bin_start_s, float) / 60
    width = float(np.diff(starts)[0]) if len(starts) > 1 else max(float(minutes[-1]), 1 / 60)
    axes[1].bar(starts, rate, width=width * 0.95, align="edge", color="tab:green")
    axes[1].set_ylabel("samples per second (committed)")
    for ax in axes:
        ax.set_xlim(0, max(float(minutes[-1]), starts[-1] + width if len(starts) else 0) * 1.02 or 1)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("minutes since the run started")
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    return save_figure(fig, out)

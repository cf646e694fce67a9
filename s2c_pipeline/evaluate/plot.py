"""The RD plot: PSNR and MS-SSIM (dB) against bpp, one line per codec, mean curves over images.

The bpp axis stops a little past the learned models' largest rate (or 2 bpp without one), since
JPEG's top settings reach several bpp and would squeeze the range where codecs differ into a corner.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from s2c_pipeline.evaluate.run import EvalResult

_PANELS = (("psnr", "PSNR (RGB) [dB]"), ("ms_ssim_db", "MS-SSIM [dB]  (-10 log10(1 - MS-SSIM))"))
_CLASSICAL_STYLE = {
    "jpeg": ("tab:gray", "s"),
    "webp": ("tab:green", "^"),
    "avif": ("tab:purple", "D"),
    "jxl": ("tab:orange", "v"),
}
_LEARNED_COLOURS = ("tab:red", "tab:blue", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def plot_rd(result: EvalResult, out: Path) -> Path:
    """Write the two-panel PNG to ``out`` and return its path."""
    x_max = _x_max(result)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), dpi=110)
    learned_index = 0
    for info in result.contenders:
        curve = result.curve(info.name)
        if info.kind == "learned":
            colour, marker, width = _LEARNED_COLOURS[learned_index % len(_LEARNED_COLOURS)], "o", 2.4
            learned_index += 1
            label = f"{info.name} ({info.weights_id})"
        else:
            colour, marker = _CLASSICAL_STYLE.get(info.name, ("black", "x"))
            width, label = 1.4, info.name.upper()
        for ax, (metric, _) in zip(axes, _PANELS, strict=True):
            ax.plot(
                [p.bpp for p in curve],
                [getattr(p, metric) for p in curve],
                color=colour,
                marker=marker,
                markersize=4,
                linewidth=width,
                label=label,
            )
    for ax, (metric, ylabel) in zip(axes, _PANELS, strict=True):
        ax.set_xlim(0, x_max)
        ax.set_ylim(*_y_limits(result, metric, x_max))
        ax.set_xlabel("bits per pixel (whole file)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    models = (
        ", ".join(dict.fromkeys(f"{c.model_name} {c.weights_id}" for c in result.learned))
        or "classical codecs only"
    )
    images = len(result.image_set.images)
    count = f"{images} image{'s' if images != 1 else ''}"
    fig.suptitle(f"Rate-distortion on {result.image_set.name} ({count}, mean per setting): {models}")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _x_max(result: EvalResult) -> float:
    learned = [p.bpp for c in result.learned for p in result.curve(c.name)]
    everything = [p.bpp for _, curve in result.curves for p in curve]
    cap = 1.3 * max(learned) if learned else 2.0
    return min(cap, max(everything, default=1.0)) or 1.0


def _y_limits(result: EvalResult, metric: str, x_max: float) -> tuple[float, float]:
    """The quality range of the points that are on screen, with a margin."""
    values = [
        getattr(p, metric)
        for _, curve in result.curves
        for p in curve
        if p.bpp <= x_max and math.isfinite(getattr(p, metric))
    ]
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    margin = 0.05 * (hi - lo) or 1.0
    return lo - margin, hi + margin

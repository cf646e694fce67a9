"""One evaluation: sweep, average, BD-rates, and the JSON record of it all.

Conventions, also written into every JSON record and docs/results.md:

- BD-rate of a learned model against each classical codec (test = ours, anchor = theirs), and of
  every later learned model against each earlier one, in the order given on the command line.
- Two averages, both reported: the headline number is the BD-rate of the mean curves (bpp and dB
  averaged over images per setting, the curve the plot draws); beside it, the mean, standard
  deviation, minimum and maximum of per-image BD-rates over the images that have one, and how many
  do. A mean curve can hide a codec that loses on most photos and wins big on a few.
- On PSNR (RGB) and on MS-SSIM in dB.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from s2c_pipeline.evaluate.bdrate import MIN_OVERLAP_DB, MIN_OVERLAP_FRACTION, BDRate, bd_rate
from s2c_pipeline.evaluate.classical import ClassicalCodec
from s2c_pipeline.evaluate.images import ImageSet
from s2c_pipeline.evaluate.learned import LearnedContender
from s2c_pipeline.evaluate.rd import Contender, CurvePoint, RDPoint, mean_curve, sweep

SCHEMA = 1
METRICS = ("psnr", "ms_ssim_db")
CONVENTIONS = {
    "bpp": "8 * file bytes / (width * height); the whole file (for .s2c the container header included)",
    "psnr": "RGB, 8-bit, over all samples, dB",
    "ms_ssim": "pytorch-msssim, data_range 255, 5 scales; single-scale SSIM for images under 161 px a side",
    "ms_ssim_db": "-10 log10(1 - MS-SSIM)",
    "mean_curve": "per setting: bpp, times and MS-SSIM averaged arithmetically, PSNR and MS-SSIM dB in dB",
    "bd_rate": "PCHIP of ln(rate) over quality (dB), integrated over the overlapping quality range; "
    "negative = test needs fewer bits than anchor",
    "bd_rate_pairs": "each learned model against each classical codec; each later learned model against "
    "each earlier one",
    "bd_rate_average": "headline = BD-rate of the mean curves; beside it the per-image BD-rates: mean, "
    "sample standard deviation, min and max over the images that have one (n)",
    "bd_rate_small_overlap": f"flagged when the overlap is under {MIN_OVERLAP_DB} dB or under "
    f"{MIN_OVERLAP_FRACTION:.0%} of either curve's range; null with a reason when there is none",
    "input": "8-bit RGB pixels only (alpha, ICC and EXIF are not coded by any codec)",
    "timing": "wall time of encode and of decode, in this process, one image at a time",
}


@dataclass(frozen=True)
class ContenderInfo:
    name: str
    kind: str  # "learned" or "classical"
    description: str
    settings: tuple[float, ...]
    model_name: str | None = None
    weights_id: str | None = None


@dataclass(frozen=True)
class Spread:
    """Per-image BD-rates summarised: over the ``count`` images where one is defined.

    ``std_pct`` is the sample standard deviation (n - 1), None for fewer than two images.
    """

    count: int
    mean_pct: float | None
    std_pct: float | None
    min_pct: float | None
    max_pct: float | None
    min_image: str | None
    max_image: str | None

    @classmethod
    def of(cls, per_image: Sequence[tuple[str, BDRate]]) -> Spread:
        defined = [(bd.value_pct, name) for name, bd in per_image if bd.value_pct is not None]
        if not defined:
            return cls(0, None, None, None, None, None, None)
        values = [v for v, _ in defined]
        (low, low_name), (high, high_name) = min(defined), max(defined)
        std = statistics.stdev(values) if len(values) > 1 else None
        return cls(len(values), statistics.fmean(values), std, low, high, low_name, high_name)


@dataclass(frozen=True)
class BDEntry:
    """BD-rate of ``test`` against ``anchor`` on one metric, on the mean curve and per image."""

    test: str
    anchor: str
    metric: str
    mean_curve: BDRate
    per_image: tuple[tuple[str, BDRate], ...]

    @property
    def spread(self) -> Spread:
        return Spread.of(self.per_image)

    @property
    def per_image_mean_pct(self) -> float | None:
        return self.spread.mean_pct

    def to_dict(self) -> dict:
        spread = self.spread
        return {
            "test": self.test,
            "anchor": self.anchor,
            "metric": self.metric,
            "mean_curve": self.mean_curve.to_dict(),
            "per_image_mean_pct": spread.mean_pct,
            "per_image_count": spread.count,
            "per_image_std_pct": spread.std_pct,
            "per_image_min_pct": spread.min_pct,
            "per_image_max_pct": spread.max_pct,
            "per_image_min_image": spread.min_image,
            "per_image_max_image": spread.max_image,
            "per_image": {name: bd.to_dict() for name, bd in self.per_image},
        }


@dataclass(frozen=True)
class EvalResult:
    image_set: ImageSet
    contenders: tuple[ContenderInfo, ...]
    skipped: tuple[tuple[str, str], ...]
    points: tuple[RDPoint, ...]
    curves: tuple[tuple[str, tuple[CurvePoint, ...]], ...]
    bd: tuple[BDEntry, ...]
    environment: tuple[tuple[str, object], ...]

    def curve(self, codec: str) -> tuple[CurvePoint, ...]:
        return dict(self.curves)[codec]

    @property
    def learned(self) -> list[ContenderInfo]:
        return [c for c in self.contenders if c.kind == "learned"]

    def to_dict(self, command: str | None = None) -> dict:
        """Plain JSON types; infinite or undefined numbers (lossless PSNR, SSIM of tiny images) as null."""
        return _finite(
            {
                "schema": SCHEMA,
                "command": command,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "environment": dict(self.environment),
                "conventions": CONVENTIONS,
                "image_set": {
                    "name": self.image_set.name,
                    "images": [
                        {
                            "name": i.name,
                            "width": i.rgb.shape[1],
                            "height": i.rgb.shape[0],
                            "source": i.source,
                            "sha256": i.sha256,
                            **({"provenance": dict(i.provenance)} if i.provenance else {}),
                        }
                        for i in self.image_set.images
                    ],
                },
                "codecs": [{**c.__dict__, "settings": list(c.settings)} for c in self.contenders],
                "skipped_codecs": dict(self.skipped),
                "mean_curves": {name: [p.to_dict() for p in curve] for name, curve in self.curves},
                "bd_rate": [e.to_dict() for e in self.bd],
                "points": [p.to_dict() for p in self.points],
            }
        )


def run_evaluation(
    image_set: ImageSet,
    contenders: Sequence[Contender],
    *,
    skipped: dict[str, str] | None = None,
    progress: bool = True,
) -> EvalResult:
    infos = tuple(_info(c) for c in contenders)
    points = sweep(image_set.images, contenders, progress=progress)
    curves = tuple((c.name, tuple(mean_curve(points, c.name))) for c in contenders)
    return EvalResult(
        image_set=image_set,
        contenders=infos,
        skipped=tuple((skipped or {}).items()),
        points=tuple(points),
        curves=curves,
        bd=tuple(_bd_entries(infos, points, dict(curves), [i.name for i in image_set.images])),
        environment=tuple(_environment(contenders).items()),
    )


def bd_pairs(infos: Sequence[ContenderInfo]) -> list[tuple[str, str]]:
    """(test, anchor) pairs: learned vs classical, and each later learned vs each earlier one."""
    learned = [c.name for c in infos if c.kind == "learned"]
    classical = [c.name for c in infos if c.kind == "classical"]
    pairs = [(t, a) for t in learned for a in classical]
    pairs += [(learned[j], learned[i]) for i in range(len(learned)) for j in range(i + 1, len(learned))]
    return pairs


def _bd_entries(
    infos: Sequence[ContenderInfo],
    points: Sequence[RDPoint],
    curves: dict[str, tuple[CurvePoint, ...]],
    image_names: list[str],
) -> list[BDEntry]:
    entries = []
    for test, anchor in bd_pairs(infos):
        for metric in METRICS:
            label = f"{test} vs {anchor} ({metric})"
            mean = bd_rate(_rd(curves[anchor], metric), _rd(curves[test], metric), label=label)
            per_image = tuple(
                (
                    name,
                    bd_rate(
                        _rd([p for p in points if p.codec == anchor and p.image == name], metric),
                        _rd([p for p in points if p.codec == test and p.image == name], metric),
                        label=f"{label} on {name}",
                        warn=False,
                    ),
                )
                for name in image_names
            )
            entries.append(BDEntry(test, anchor, metric, mean, per_image))
    return entries


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _rd(points: Sequence[RDPoint | CurvePoint], metric: str) -> list[tuple[float, float]]:
    return [(p.bpp, getattr(p, metric)) for p in points]


def _info(contender: Contender) -> ContenderInfo:
    if isinstance(contender, LearnedContender):
        codec = contender.codec
        return ContenderInfo(
            contender.name,
            "learned",
            contender.description,
            contender.settings,
            codec.model_name,
            codec.weights.weights_id,
        )
    if isinstance(contender, ClassicalCodec):
        return ContenderInfo(contender.name, "classical", contender.description, contender.settings)
    return ContenderInfo(contender.name, "other", type(contender).__name__, tuple(contender.settings))


def _environment(contenders: Sequence[Contender]) -> dict[str, object]:
    devices = sorted({str(c.codec.device) for c in contenders if isinstance(c, LearnedContender)})
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "devices": devices,
        "pillow": importlib.metadata.version("pillow"),
    }

"""The codec sections of the ``s2c analyze`` report: every codec ranked, priced and paid back.

Answers the planner's questions in order: which codec stores this data in the fewest bytes at the
same quality, what that costs per month in each storage class, when the compute pays for itself,
and how each group of images (``.cls`` or a JSON field) fares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from s2c_pipeline.analysis.analyze import Analysis, CodecRow
from s2c_pipeline.analysis.compute_prices import ComputeOptions
from s2c_pipeline.analysis.costs import layout_cost
from s2c_pipeline.analysis.document import (
    Block,
    Bullets,
    Figure,
    Heading,
    Paragraph,
    Table,
    fmt_bytes,
    fmt_count,
    fmt_number,
    fmt_usd,
)
from s2c_pipeline.analysis.matching import HIGHEST, LOWEST
from s2c_pipeline.analysis.payback import CodecPayback, current_layout, gpu_figure, tar_layout
from s2c_pipeline.analysis.plots import CostBar, plot_costs, plot_intervals
from s2c_pipeline.analysis.prices import PriceTable
from s2c_pipeline.analysis.projection import Interval, SampledSizes, project
from s2c_pipeline.archive.status import Status
from s2c_pipeline.evaluate.plot import CLASSICAL_STYLE, RDSeries, plot_rd_series
from s2c_pipeline.evaluate.rd import ms_ssim_to_db

RD_PNG, BYTES_PNG, PAYBACK_PNG = "rd_scatter.png", "bytes_by_codec.png", "payback.png"
LEARNED_COLOUR = "tab:red"
MAX_GROUPS = 20


CLASSICAL_LABELS = {"jpeg": "JPEG", "webp": "WebP", "avif": "AVIF", "jxl": "JPEG XL"}


def codec_label(codec: str) -> str:
    """Our model's name as it is; a classical codec's usual name."""
    return CLASSICAL_LABELS.get(codec, codec)


def display_name(row: CodecRow) -> str:
    return codec_label(row.codec)


def ranked(rows: Sequence[CodecRow]) -> list[CodecRow]:
    """Fewest projected image bytes first (the output shards add the same headers and carried
    members to every codec)."""
    return sorted(rows, key=lambda r: r.projection.compressed_image_bytes.value)


def relative_bytes(analysis: Analysis, row: CodecRow, base: CodecRow) -> Interval:
    """``row``'s image bytes over ``base``'s, paired image by image on the sample, with the same
    two-stage bootstrap as every projection (the ratio estimator with ``base``'s sizes as the source)."""
    sample = SampledSizes(
        shard=np.array([r.image.shard_index for r in analysis.results], dtype=int),
        source=np.array([c.coded_bytes for c in base.coded], dtype=float),
        coded=np.array([c.coded_bytes for c in row.coded], dtype=float),
    )
    return project(analysis.dataset_bytes, len(analysis.shard_sizes), analysis.tallies, sample,
                   replicates=analysis.options.replicates, confidence=analysis.options.confidence,
                   seed=analysis.options.design.seed).ratio


def verdict(analysis: Analysis) -> str:
    """One sentence: who stores this data in the fewest bytes at the reference level, and how surely."""
    index = analysis.reference_index
    rows = analysis.rows(index)
    ours, others = rows[0], [r for r in rows[1:] if r.matched]
    level = analysis.level_name(index)
    if not analysis.classical:
        return f"Only {ours.codec} was coded (no classical codec installed or asked for)."
    if not others:
        return (f"No classical codec reached our quality at {level}, so none stores this data at the same "
                f"PSNR; {ours.codec} is the only match.")
    best = ranked(others)[0]
    ratio = relative_bytes(analysis, best, ours)
    conf = f"{analysis.options.confidence:.0%}"
    span = f"{ratio.value:.3f} [{ratio.low:.3f}, {ratio.high:.3f}] times {ours.codec}'s bytes ({conf} interval, paired)"
    sure = "" if ratio.high < 1 or ratio.low > 1 else "; the interval includes 1, so this sample cannot tell them apart"
    if ratio.value < 1:
        return (f"**{display_name(best)} beats {ours.codec} on this data**: at {level}, {display_name(best)} stores "
                f"the images in {span}{sure}.")
    return (f"**{ours.codec} stores this data in the fewest bytes**: at {level}, the best classical codec, "
            f"{display_name(best)}, needs {span}{sure}.")


def _bytes_interval(i: Interval) -> str:
    return f"{fmt_bytes(i.value)} [{fmt_bytes(i.low)}, {fmt_bytes(i.high)}]"


def _ms(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _spread(summary, digits: int) -> str:
    if not summary.count:
        return "-"
    return f"{fmt_number(summary.mean, digits)} ({fmt_number(summary.p5, digits)}-{fmt_number(summary.p95, digits)})"


def _statuses(row: CodecRow) -> str:
    other = {k: v for k, v in row.statuses.items() if k != Status.OK}
    return ", ".join(f"{k} {v}" for k, v in sorted(other.items())) or "-"


def _matching_text(analysis: Analysis) -> str:
    target = analysis.options.target_psnr
    if target is not None:
        missed = {display_name(r): r.statuses.get("target_not_reached", 0) for r in analysis.rows(0)}
        return (f"**Matched per image at a PSNR target of {target:g} dB** (`--target-psnr`): every codec codes each "
                f"image at the smallest setting that reaches it ({analysis.model_name}: quality levels in eighths; "
                f"classical codecs: quality {LOWEST}..{HIGHEST}). An image that even the best setting cannot lift "
                "to the target is coded at that setting and counted as `target_not_reached`: "
                + ", ".join(f"{k} {v}" for k, v in missed.items()) + ".")
    return (f"**Matched at our quality levels**: at each level, each classical codec runs at the smallest "
            f"setting ({LOWEST}..{HIGHEST}) whose mean PSNR over the sample reaches {analysis.model_name}'s mean PSNR "
            "at that level (one setting per codec and level, as a batch job would be configured). A row marked "
            "*short* is a codec whose best setting stays below that PSNR.")


def codec_blocks(analysis: Analysis) -> list[Block]:
    conf = f"{analysis.options.confidence:.0%}"
    blocks: list[Block] = [Heading("Codecs compared"), Paragraph(_matching_text(analysis))]
    if analysis.classical_skipped:
        blocks.append(Paragraph("Not installed, left out: " + "; ".join(
            f"{k} ({v})" for k, v in analysis.classical_skipped.items())))
    for index in range(len(analysis.per_quality)):
        rows = ranked(analysis.rows(index))
        blocks += [
            Paragraph(f"**At {analysis.level_name(index)}**, ranked by projected image bytes; point estimate "
                      f"[{conf} interval]; output shards as a share of today's bytes; mean (p5-p95) over the "
                      "sampled images; times per image."),
            Table(("rank", "codec", "setting", "image bytes", "output shards", "of today", "bpp", "PSNR [dB]",
                   "MS-SSIM", "encode ms", "decode ms", "not ok"),
                  tuple((str(rank), display_name(r) + ("" if r.matched else " (short)"), r.setting,
                         _bytes_interval(r.projection.compressed_image_bytes),
                         _bytes_interval(r.projection.output_bytes),
                         f"{100 * r.projection.output_bytes.value / analysis.dataset_bytes:.1f}%",
                         _spread(r.bpp, 3), _spread(r.psnr, 2), _spread(r.ms_ssim, 4),
                         _ms(r.encode_ms.mean), _ms(r.decode_ms.mean), _statuses(r))
                        for rank, r in enumerate(rows, 1)), (0, 3, 4, 5, 6, 7, 8, 9, 10)),
        ]
    blocks += [
        Bullets((verdict(analysis),)),
        Figure(RD_PNG, "Rate-distortion of the sample per codec: each image as a dot, the mean per level as a line"),
        Figure(BYTES_PNG, f"Projected image bytes per codec at {analysis.level_name(analysis.reference_index)} "
                          f"(whiskers: {conf} interval)"),
    ]
    return blocks


def storage_blocks(analysis: Analysis, prices: PriceTable, priced: float, note: str) -> list[Block]:
    scale = priced / analysis.dataset_bytes
    rows = ranked(analysis.rows(analysis.reference_index))
    today = current_layout(analysis, scale)
    layouts = [tar_layout(analysis, r, scale) for r in rows]
    table = tuple(
        (c.name, fmt_usd(layout_cost(today, c, prices).storage_usd_month),
         *(fmt_usd(layout_cost(layout, c, prices).storage_usd_month) for layout in layouts))
        for c in prices.classes
    )
    return [
        Heading("Storage per month, per codec"),
        Paragraph(f"Output shards of each codec at {analysis.level_name(analysis.reference_index)}, "
                  f"per month{note}, at the list prices below (point estimates; the intervals of the bytes are "
                  "in the table and figure above)."),
        Table(("class", "today", *(display_name(r) for r in rows)), table, tuple(range(1, len(rows) + 2))),
    ]


def payback_blocks(analysis: Analysis, paybacks: Sequence[CodecPayback], options: ComputeOptions,
                   note: str) -> list[Block]:
    gpu = gpu_figure(analysis, options)
    threads = analysis.threads
    text = (f"Compute{note}: projected images x (encode + decode-verify time per image measured on the sample) x "
            f"threads ({analysis.model_name}: {threads} on {analysis.device}; classical codecs: 1). "
            f"CPU at ${options.cpu.usd_per_hour:g} per {options.cpu.unit} ({options.cpu.basis}; {options.cpu.source}, "
            f"as of {options.cpu.as_of}); GPU at ${options.gpu.usd_per_hour:g} per {options.gpu.unit} "
            f"({options.gpu.basis}; {options.gpu.source}, as of {options.gpu.as_of}). ")
    if analysis.device.startswith("cuda"):
        text += f"{analysis.model_name}'s GPU-hours are measured on this analysis's GPU. "
    elif gpu is not None:
        text += f"{analysis.model_name}'s GPU-hours: {gpu.images_per_s:.3g} images/s ({gpu.source}). "
    else:
        text += (f"No GPU figure for {analysis.model_name} (give `--gpu-images-per-s`, or commit a GPU benchmark), "
                 "so its compute is priced on CPUs. ")
    text += ("One-off = compute (the cheaper of CPU and GPU) + moving: reading today's shards once and writing "
             "the new tars once, at the class's request and retrieval prices. Saving = storage per month today "
             "minus after")
    text += (f", minus the extra decode compute of {fmt_count(options.reads_per_month)} image reads a month."
             if options.reads_per_month else " (no reads counted: `--reads-per-month`).")
    compute_rows = tuple(
        (payback_name(p), fmt_count(p.images), _hours(p.cpu_core_hours), _hours(p.gpu_hours),
         f"{fmt_usd(p.compute_usd)} ({p.compute_on})", fmt_usd(p.decode_usd_month)) for p in paybacks)
    classes = paybacks[0].per_class if paybacks else ()
    months = tuple(
        (c.class_name, fmt_usd(c.today_usd_month),
         *(_months(p.per_class[i]) for p in paybacks)) for i, c in enumerate(classes))
    return [
        Heading("Compute and payback"),
        Paragraph(text),
        Table(("codec", "images", "CPU core-hours", "GPU-hours", "compute once", "decode $/month"), compute_rows,
              (1, 2, 3, 4, 5)),
        Paragraph("**Months to pay back** (one-off cost in brackets; *never* when the codec saves nothing there):"),
        Table(("class", "today $/month", *(payback_name(p) for p in paybacks)), months,
              tuple(range(1, len(paybacks) + 2))),
        Figure(PAYBACK_PNG, "Months until the monthly saving repays compute and moving, per storage class "
                            "(log scale; no bar: never)"),
    ]


def payback_name(p: CodecPayback) -> str:
    return codec_label(p.codec)


def _hours(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _months(c) -> str:
    if not math.isfinite(c.months):
        return f"never ({fmt_usd(c.one_off_usd)})"
    return f"{c.months:,.1f} ({fmt_usd(c.one_off_usd)})"


def group_blocks(analysis: Analysis) -> list[Block]:
    """Sizes and quality per label, at the reference level; nothing when no image has a label."""
    groups = group_table(analysis)
    if not groups:
        return []
    rows = analysis.rows(analysis.reference_index)
    shown = groups[:MAX_GROUPS]
    more = f" ({len(groups) - MAX_GROUPS} smaller groups not shown; all are in report.json)" if len(groups) > MAX_GROUPS \
        else ""
    return [
        Heading(f"Per group (`{analysis.options.group_by}`)"),
        Paragraph(f"At {analysis.level_name(analysis.reference_index)}: compressed / source image bytes and mean "
                  f"PSNR per group of sampled images{more}. A group with few images has a wide spread."),
        Table(("group", "images", "mean source", *(display_name(r) for r in rows)),
              tuple((g["group"], str(g["images"]), fmt_bytes(g["mean_source_bytes"]),
                     *(f"{100 * c['ratio']:.1f}% / {fmt_number(c['psnr'], 2)} dB" for c in g["codecs"]))
                    for g in shown), tuple(range(1, len(rows) + 3))),
    ]


def group_table(analysis: Analysis) -> list[dict[str, Any]]:
    labels = [r.image.label for r in analysis.results]
    if all(label is None for label in labels):
        return []
    weights = np.array([r.image.weight for r in analysis.results])
    rows = analysis.rows(analysis.reference_index)
    out = []
    for label in sorted({x for x in labels if x is not None} | ({None} if None in labels else set()),
                        key=lambda x: (x is None, str(x))):
        mask = np.array([x == label for x in labels])
        codecs = []
        for row in rows:
            coded = [c for c, keep in zip(row.coded, mask, strict=True) if keep]
            w = weights[mask]
            source = float(np.sum(w * [c.source_bytes for c in coded]))
            codecs.append({"codec": row.codec, "ratio": float(np.sum(w * [c.coded_bytes for c in coded])) / source,
                           "psnr": _weighted([c.psnr for c in coded], w),
                           "bpp": _weighted([c.bpp for c in coded], w)})
        out.append({"group": "(none)" if label is None else label, "images": int(mask.sum()),
                    "mean_source_bytes": float(np.average([r.coded[0].source_bytes for r, keep
                                                           in zip(analysis.results, mask, strict=True) if keep],
                                                          weights=weights[mask])),
                    "codecs": codecs})
    return sorted(out, key=lambda g: -g["images"])


def _weighted(values: Sequence[float], weights: np.ndarray) -> float:
    v = np.asarray(values, float)
    keep = np.isfinite(v)
    return float(np.average(v[keep], weights=weights[keep])) if keep.any() else math.nan


def rd_plot(analysis: Analysis, out: Path) -> Path:
    series = []
    for position in range(len(analysis.rows(0))):
        rows = [analysis.rows(i)[position] for i in range(len(analysis.per_quality))]
        ok = [[c for c in r.coded if c.status == Status.OK] for r in rows]
        first = rows[0]
        colour, marker = (LEARNED_COLOUR, "o") if first.learned else CLASSICAL_STYLE.get(first.codec, ("black", "x"))
        label = f"{first.codec} ({analysis.weights_id})" if first.learned else codec_label(first.codec)
        series.append(RDSeries(
            label, [c.bpp for per in ok for c in per], [c.psnr for per in ok for c in per],
            [ms_ssim_to_db(c.ms_ssim) for per in ok for c in per],
            [r.bpp.mean for r in rows], [r.psnr.mean for r in rows],
            [float(np.mean([ms_ssim_to_db(c.ms_ssim) for c in per])) if per else math.nan for per in ok],
            colour, marker, learned=first.learned,
        ))
    return plot_rd_series(series, out, f"Sample of {len(analysis.results)} images, every codec at "
                                + ", ".join(analysis.level_name(i) for i in range(len(analysis.per_quality))))


def bytes_plot(analysis: Analysis, out: Path) -> Path:
    rows = ranked(analysis.rows(analysis.reference_index))
    colours = [LEARNED_COLOUR if r.learned else CLASSICAL_STYLE.get(r.codec, ("black", "x"))[0] for r in rows]
    mb = 1e6
    images = [r.projection.compressed_image_bytes for r in rows]
    return plot_intervals(
        [display_name(r) + f" ({r.setting})" for r in rows], [i.value / mb for i in images],
        [i.low / mb for i in images], [i.high / mb for i in images],
        colours, out, f"Projected image bytes at {analysis.level_name(analysis.reference_index)}; today "
                      f"{fmt_bytes(rows[0].projection.source_image_bytes.value)}",
        "MB (10^6 bytes) of coded images in the listed dataset",
    )


def payback_plot(paybacks: Sequence[CodecPayback], prices: PriceTable, out: Path) -> Path:
    bars = [CostBar(payback_name(p), [c.months for c in p.per_class],
                    LEARNED_COLOUR if p.learned else CLASSICAL_STYLE.get(p.codec, ("black", "x"))[0])
            for p in paybacks]
    return plot_costs([c.name for c in prices.classes], bars, out, "Months to pay back, per storage class",
                      ylabel="months (log scale)")


def codec_json(analysis: Analysis, paybacks: Sequence[CodecPayback], options: ComputeOptions) -> dict[str, Any]:
    gpu = gpu_figure(analysis, options)
    return {
        "matching": {"mode": "target_psnr" if analysis.options.target_psnr is not None else "levels",
                     "target_psnr": analysis.options.target_psnr, "settings": [LOWEST, HIGHEST]},
        "levels": [
            {"level": analysis.level_name(i),
             "rows": [_row_json(r) for r in ranked(analysis.rows(i))]}
            for i in range(len(analysis.per_quality))
        ],
        "verdict": verdict(analysis),
        "compute": {"cpu": asdict(options.cpu), "gpu": asdict(options.gpu), "threads": analysis.threads,
                    "device": analysis.device, "reads_per_month": options.reads_per_month,
                    "gpu_figure": asdict(gpu) if gpu else None},
        "payback": [asdict(p) for p in paybacks],
        "groups": group_table(analysis),
    }


def _row_json(row: CodecRow) -> dict[str, Any]:
    return {"codec": row.codec, "learned": row.learned, "quality": row.quality, "setting": row.setting,
            "matched": row.matched, "statuses": dict(row.statuses), "projection": row.projection.to_dict(),
            **{name: getattr(row, name).to_dict() for name in ("bpp", "psnr", "ms_ssim", "encode_ms", "decode_ms")},
            "images": [{"setting": c.quality, "status": c.counted_status, "coded_bytes": c.coded_bytes,
                        "psnr": c.psnr, "ms_ssim": c.ms_ssim} for c in row.coded]}

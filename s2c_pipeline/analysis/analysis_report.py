"""The ``s2c analyze`` outputs: report.json, report.md, report.html and five PNGs in one folder."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from s2c_pipeline import __version__
from s2c_pipeline.analysis.analyze import Analysis
from s2c_pipeline.analysis.codec_report import (
    BYTES_PNG,
    PAYBACK_PNG,
    RD_PNG,
    bytes_plot,
    codec_blocks,
    codec_json,
    codec_label,
    group_blocks,
    payback_blocks,
    payback_name,
    payback_plot,
    rd_plot,
    storage_blocks,
    verdict,
)
from s2c_pipeline.analysis.compute_prices import ComputeOptions
from s2c_pipeline.analysis.cost_report import (
    COSTS_PNG,
    cost_blocks,
    cost_plot,
    headline_cost,
    price_layouts,
    priced_note,
)
from s2c_pipeline.analysis.costs import LayoutCost
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
    write_report,
)
from s2c_pipeline.analysis.payback import CodecPayback, payback
from s2c_pipeline.analysis.plots import Series, plot_histograms
from s2c_pipeline.analysis.prices import PriceTable
from s2c_pipeline.analysis.projection import Interval
from s2c_pipeline.archive.status import Status

BPP_PNG = "bpp_histogram.png"
METHOD = (
    "Two-stage sample: shards drawn at random without replacement (seeded), then images drawn at "
    "random without replacement inside each shard read; every shard is read whole, the others are "
    "known by their listed size only.",
    "Projection: ratio estimators. Compressed/source image bytes R = sum w_i c_j / sum w_i s_j with "
    "w_i = images in shard i / images sampled there; image bytes and image count per byte of the shards "
    "read, times the dataset's listed bytes. Output bytes model each read shard's output tar exactly "
    "(headers and carried members as read, bitstreams as R' times its image bytes in 512-byte tar "
    "blocks, whole tar records), scaled by the dataset's bytes over the read shards' bytes.",
    "Intervals: two-stage percentile bootstrap (shards with replacement unless all were read, then "
    "images with replacement inside each drawn shard unless all its images were coded). The interval "
    "covers sampling error only, not a change of the data between sampling and compression.",
    "Images that cannot be coded (not an image, too large, codec error) count with their source size: "
    "`s2c compress` keeps them verbatim. Per-image metrics are weighted like the ratio (w_i).",
    "Every codec goes through the same estimator and bootstrap on the same sampled images; a classical "
    "codec's output tars are modelled with the `.s2c` member names (same header sizes but for names over "
    "100 characters). Classical codecs code the RGB pixels our codec codes, at 1 thread, without metadata.",
    "Costs: list prices of the table below, storage billed per GB-month of 2**30 bytes; minimum "
    "billable object sizes and per-object overheads applied per object; no egress, tiered discounts, "
    "taxes or early-deletion fees. Objects are the output shards only (one manifest part and one "
    "marker per shard add two small objects each, best kept in a Standard class).",
)


def write_analysis_report(analysis: Analysis, prices: PriceTable, out: Path, *, command: str = "",
                          priced_bytes: float | None = None, compute: ComputeOptions | None = None) -> list[Path]:
    """Write every output of an analysis into ``out`` and return the paths (JSON first).

    ``priced_bytes`` prices a dataset of that many bytes made of shards like the listed ones (a
    what-if for planning: "500 TB of images like these"); the projection tables stay as measured.
    ``compute`` prices the compute and the reads (``payback``); None: the default prices, no reads.
    """
    out = Path(out)
    compute = compute or ComputeOptions()
    priced = float(priced_bytes or analysis.dataset_bytes)
    layouts, costs = price_layouts(analysis, prices, priced)
    paybacks = payback(analysis, prices, priced, compute)
    figures = [
        _bpp_histogram(analysis, out / BPP_PNG),
        rd_plot(analysis, out / RD_PNG),
        bytes_plot(analysis, out / BYTES_PNG),
        cost_plot(analysis, prices, layouts, costs, priced, out / COSTS_PNG),
        payback_plot(paybacks, prices, out / PAYBACK_PNG),
    ]
    data = _json(analysis, prices, costs, command, priced)
    data.update(codec_json(analysis, paybacks, compute))
    blocks = _blocks(analysis, prices, costs, command, priced, paybacks, compute)
    return write_report(out, data, blocks, title="s2c storage analysis") + figures


def _interval(i: Interval, fmt) -> str:
    return f"{fmt(i.value)} [{fmt(i.low)}, {fmt(i.high)}]"


def _share(i: Interval, total: float) -> str:
    return f"{100 * i.value / total:.1f}% [{100 * i.low / total:.1f}, {100 * i.high / total:.1f}]"


def _summary_cell(s, digits: int) -> str:
    if not s.count:
        return "-"
    return f"{fmt_number(s.mean, digits)} ({fmt_number(s.p5, digits)} / {fmt_number(s.p50, digits)} / " \
           f"{fmt_number(s.p95, digits)})"


def _blocks(analysis: Analysis, prices: PriceTable, costs: dict[str, list[LayoutCost]], command: str,
            priced: float, paybacks: Sequence[CodecPayback], compute: ComputeOptions) -> list[Block]:
    d = analysis.dataset_bytes
    ref = analysis.reference
    conf = f"{analysis.options.confidence:.0%}"
    n_ok = sum(1 for r in analysis.results if all(c.status == Status.OK for c in r.coded))
    read_bytes = sum(t.size_bytes for t in analysis.tallies)
    blocks: list[Block] = [
        Heading("Storage analysis", 1),
        Paragraph(f"Made by `{command or 's2c analyze'}` with s2c-pipeline {__version__}, model "
                  f"`{analysis.model_name}` (weights `{analysis.weights_id}`), seed {analysis.options.design.seed}, "
                  f"in {analysis.seconds:.0f} s."),
        Heading("Summary"),
        Bullets((
            f"**Dataset**: {len(analysis.shard_sizes)} shards, {fmt_bytes(d)} (listed); about "
            f"{_interval(ref.projection.images, fmt_count)} images ({conf} interval).",
            f"**Sample**: {len(analysis.results)} images from {len(analysis.tallies)} shards "
            f"({fmt_bytes(read_bytes)} read); {n_ok} coded at every quality"
            + (f"; not coded: {_statuses(analysis)}" if n_ok < len(analysis.results) else "") + "; codecs: "
            + ", ".join([analysis.model_name, *(codec_label(n) for n in analysis.classical)]) + ".",
            f"**{analysis.model_name} at {analysis.level_name(analysis.reference_index)}**: the output would be "
            f"{_interval(ref.projection.output_bytes, fmt_bytes)}, saving {_share(ref.projection.savings_bytes, d)} "
            f"of today's bytes; mean {fmt_number(ref.bpp.mean)} bpp, PSNR {fmt_number(ref.psnr.mean, 2)} dB.",
            verdict(analysis),
            headline_cost(costs, ref, priced, d),
            _payback_headline(paybacks, prices),
        )),
    ]
    if analysis.skipped_shards:
        blocks.append(Paragraph("Shards that could not be read (replaced by the next in the random order): "
                                + "; ".join(s.reason for s in analysis.skipped_shards)))
    blocks += [
        *codec_blocks(analysis),
        *storage_blocks(analysis, prices, priced, priced_note(priced, d)),
        *payback_blocks(analysis, paybacks, compute, priced_note(priced, d)),
        *group_blocks(analysis),
        Heading(f"{analysis.model_name}: quality of the sample"),
        Paragraph("Mean (p5 / p50 / p95) over the images coded, weighted by the sampling weights."),
        Table(("level", "bpp", "PSNR [dB]", "MS-SSIM", "encode ms", "decode ms"),
              tuple((q.setting, _summary_cell(q.bpp, 3), _summary_cell(q.psnr, 2), _summary_cell(q.ms_ssim, 4),
                     _summary_cell(q.encode_ms, 0), _summary_cell(q.decode_ms, 0)) for q in analysis.per_quality)),
        Figure(BPP_PNG, "Bits per pixel of the sampled images at each quality"),
        Heading(f"{analysis.model_name}: projection for the whole dataset"),
        Paragraph(f"Point estimate [{conf} bootstrap interval]. Today: {fmt_bytes(d)} in "
                  f"{len(analysis.shard_sizes)} shards."),
        Table(("level", "compressed image bytes", "output shards (tar)", "saved", "saved share"),
              tuple((q.setting, _interval(q.projection.compressed_image_bytes, fmt_bytes),
                     _interval(q.projection.output_bytes, fmt_bytes), _interval(q.projection.savings_bytes, fmt_bytes),
                     _share(q.projection.savings_bytes, d)) for q in analysis.per_quality), (1, 2, 3, 4)),
    ]
    blocks += cost_blocks(analysis, prices, costs, priced)
    blocks += [Heading("Method"), Bullets(METHOD)]
    return blocks


def _payback_headline(paybacks: Sequence[CodecPayback], prices: PriceTable) -> str:
    """The fastest payback per class, in one line."""
    parts = []
    for i, c in enumerate(prices.classes):
        best = min(paybacks, key=lambda p: p.per_class[i].months)
        months = best.per_class[i].months
        parts.append(f"{c.name} {months:,.1f} ({payback_name(best)})" if math.isfinite(months) else f"{c.name} never")
    return "**Months to pay back**, fastest codec per class: " + "; ".join(parts) + "."


def _statuses(analysis: Analysis) -> str:
    counts: dict[str, int] = {}
    for r in analysis.results:
        for c in r.coded:
            if c.status != Status.OK:
                counts[f"{c.status} at q{c.quality:g}"] = counts.get(f"{c.status} at q{c.quality:g}", 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


def _bpp_histogram(analysis: Analysis, out: Path) -> Path:
    weights = [r.image.weight for r in analysis.results]
    series = [Series(q.setting, [r.coded[i].bpp for r in analysis.results], weights)
              for i, q in enumerate(analysis.per_quality)]
    return plot_histograms([("bits per pixel", series)], out,
                           f"bpp of {len(analysis.results)} sampled images, {analysis.model_name} "
                           f"({analysis.weights_id})")


def _json(analysis: Analysis, prices: PriceTable, costs: dict[str, list[LayoutCost]], command: str,
          priced: float) -> dict[str, Any]:
    options = analysis.options
    return {
        "kind": "s2c-analysis",
        "format": 1,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "s2c_pipeline": __version__,
        "inputs": list(analysis.inputs),
        "model": analysis.model_name,
        "weights_id": analysis.weights_id,
        "design": {"images": options.design.images, "fraction": options.design.fraction,
                   "shards": options.design.shards, "seed": options.design.seed,
                   "replicates": options.replicates, "confidence": options.confidence},
        "dataset": {"shards": len(analysis.shard_sizes), "bytes": analysis.dataset_bytes},
        "sample": {
            "shards_read": [asdict(t) for t in analysis.tallies],
            "shards_skipped": [asdict(s) for s in analysis.skipped_shards],
            "images": len(analysis.results),
        },
        "qualities": [
            {"quality": q.quality, "setting": q.setting, "statuses": dict(q.statuses), "bpp": q.bpp.to_dict(),
             "psnr": q.psnr.to_dict(), "ms_ssim": q.ms_ssim.to_dict(), "encode_ms": q.encode_ms.to_dict(),
             "decode_ms": q.decode_ms.to_dict(), "projection": q.projection.to_dict()}
            for q in analysis.per_quality
        ],
        "reference_quality": analysis.reference.quality,
        "classical": {"codecs": list(analysis.classical), "skipped": dict(analysis.classical_skipped)},
        "images": [
            {"shard": r.image.shard_url, "member": r.image.member, "weight": r.image.weight, "label": r.image.label,
             "source_ms": r.source_ms, "coded": [{**asdict(c), "bpp": c.bpp} for c in r.coded]}
            for r in analysis.results
        ],
        "costs_priced_bytes": priced,
        "costs": {name: [asdict(c) for c in rows] for name, rows in costs.items()},
        "prices": prices.to_dict(),
        "method": list(METHOD),
        "seconds": analysis.seconds,
    }

"""The ``s2c report`` outputs: report.json, report.md, report.html and PNGs, from a ``PrefixSummary``."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from s2c_pipeline import __version__
from s2c_pipeline.analysis.costs import LayoutCost, ObjectLayout, layout_cost
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
    write_report,
)
from s2c_pipeline.analysis.plots import Series, plot_histograms, plot_throughput
from s2c_pipeline.analysis.prices import PriceTable, default_prices
from s2c_pipeline.analysis.run_summary import PrefixSummary, throughput
from s2c_pipeline.archive.status import Status

BPP_PNG, QUALITY_PNG, THROUGHPUT_PNG = "bpp_histogram.png", "quality_histograms.png", "throughput.png"
SLOWEST = 10
FAILURE_GROUPS = 20


def write_run_report(summary: PrefixSummary, out: Path, *, command: str = "",
                     prices: PriceTable | None = None) -> list[Path]:
    """Write the report of one output prefix into ``out``; returns the paths (JSON first).

    ``prices`` (default: the built-in table) turns the committed bytes into $/month per storage
    class, the same figures ``s2c analyze`` projects, so a projection can be checked against a run.
    """
    out = Path(out)
    prices = prices or default_prices()
    costs = run_costs(summary, prices)
    label = _identity(summary)
    figures = [
        plot_histograms([("bits per pixel", [Series(label, summary.values["bpp"])])], out / BPP_PNG,
                        f"bpp of {fmt_count(len(summary.values['bpp']))} coded images"),
        plot_histograms([("PSNR (RGB) [dB]", [Series(label, summary.values["psnr"])]),
                         ("MS-SSIM", [Series(label, summary.values["ms_ssim"])])], out / QUALITY_PNG,
                        "Quality of the coded images"),
    ]
    elapsed, cumulative, bin_start, rate = throughput(summary)
    if len(elapsed):
        figures.append(plot_throughput(elapsed, cumulative, bin_start, rate, out / THROUGHPUT_PNG,
                                       f"Throughput: {len(elapsed)} committed shards"))
    data = _json(summary, command, elapsed, cumulative)
    data["prices"] = prices.to_dict()
    data["costs"] = [{"source": asdict(a), "output": asdict(b)} for a, b in costs]
    blocks = _blocks(summary, command, elapsed, cumulative) + _cost_blocks(summary, prices, costs)
    return write_report(out, data, blocks, "s2c run report") + figures


def run_costs(summary: PrefixSummary, prices: PriceTable) -> list[tuple[LayoutCost, LayoutCost]]:
    """(source shards, output shards) in every class of ``prices``, committed shards only."""
    source = ObjectLayout("source shards", len(summary.shards), summary.source_shard_bytes,
                          tuple(float(t.source_bytes) for t in summary.shards))
    output = ObjectLayout("output shards", len(summary.shards), summary.output_shard_bytes,
                          tuple(float(t.output_bytes) for t in summary.shards))
    return [(layout_cost(source, c, prices), layout_cost(output, c, prices)) for c in prices.classes]


def _cost_blocks(summary: PrefixSummary, prices: PriceTable, costs) -> list[Block]:
    return [
        Heading("Storage cost per month"),
        Paragraph(f"The committed shards priced as `s2c analyze` prices its projection (same layouts, minimum "
                  f"object sizes and per-object overheads): {fmt_bytes(summary.source_shard_bytes)} of source shards "
                  f"against {fmt_bytes(summary.output_shard_bytes)} of output shards, "
                  f"{len(summary.shards)} objects each; the manifests ({fmt_bytes(summary.manifest_bytes)}) are "
                  f"best kept in a Standard class and are not in these figures. Prices: {prices.origin}."),
        Table(("class", "source $/month", "output $/month", "saved $/month", "write output once",
               "read source once", "as of"),
              tuple((a.class_name, fmt_usd(a.storage_usd_month), fmt_usd(b.storage_usd_month),
                     fmt_usd(a.storage_usd_month - b.storage_usd_month), fmt_usd(b.write_usd), fmt_usd(a.read_all_usd),
                     prices.by_id(a.class_id).as_of) for a, b in costs), (1, 2, 3, 4, 5)),
    ]


def _identity(summary: PrefixSummary) -> str:
    ident = summary.identity
    if not ident:
        return "this run"
    target = ident.get("target")
    setting = ", ".join(f"target {k} {v:g}" for k, v in target.items()) if target else f"q{ident.get('quality', '?'):g}"
    return f"{ident.get('model', '?')} ({ident.get('weights_id', '?')}) {setting}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def _blocks(summary: PrefixSummary, command: str, elapsed, cumulative) -> list[Block]:
    s = summary
    ok = s.statuses.get(Status.OK, 0)
    blocks: list[Block] = [
        Heading(f"Run report: {s.prefix}", 1),
        Paragraph(f"Made by `{command or 's2c report'}` with s2c-pipeline {__version__} at "
                  f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}; coded with {_identity(s)}; "
                  f"{len(s.run_starts)} run(s) recorded in run.json."),
        Heading("Totals"),
        Table(("", "value"), (
            ("committed shards", fmt_count(len(s.shards))),
            ("samples", f"{fmt_count(s.samples)} ({fmt_count(ok)} ok, {fmt_count(s.samples - ok)} not coded)"),
            ("statuses", ", ".join(f"{k} {v}" for k, v in s.statuses.items()) or "-"),
            ("source shards", fmt_bytes(s.source_shard_bytes)),
            ("output shards", f"{fmt_bytes(s.output_shard_bytes)} (+ {fmt_bytes(s.manifest_bytes)} of manifests)"),
            ("saved", f"{fmt_bytes(s.saved_bytes)} "
                      f"({100 * s.saved_bytes / s.source_shard_bytes if s.source_shard_bytes else math.nan:.1f}%), "
                      f"shards {_ratio(s.source_shard_bytes, s.output_shard_bytes)} smaller"),
            ("images coded", f"{fmt_bytes(s.image_bytes_ok)} -> {fmt_bytes(s.s2c_bytes_ok)} "
                             f"({_ratio(s.image_bytes_ok, s.s2c_bytes_ok)})"),
        ), (1,)),
    ]
    if s.uncommitted_sources:
        shown = ", ".join(f"`{u}`" for u in s.uncommitted_sources[:5])
        more = f" and {len(s.uncommitted_sources) - 5} more" if len(s.uncommitted_sources) > 5 else ""
        blocks.append(Paragraph(f"**Not committed** (manifest rows but no marker; in flight, or left by a crash "
                                f"and redone by the next run), left out of every number here: {shown}{more}."))
    blocks += [
        Heading("Quality"),
        Paragraph("Mean (p5 / p50 / p95) over the images coded ok."),
        Table(("metric", "mean", "p5", "p50", "p95"), tuple(
            (name, fmt_number(m.mean, d), fmt_number(m.p5, d), fmt_number(m.p50, d), fmt_number(m.p95, d))
            for name, m, d in (("quality level", s.quality, 2), ("bpp", s.bpp, 4), ("PSNR [dB]", s.psnr, 2),
                               ("MS-SSIM", s.ms_ssim, 4),
                               ("encode ms", s.encode_ms, 0), ("decode ms", s.decode_ms, 0))
        ), (1, 2, 3, 4)),
        Figure(BPP_PNG, "Bits per pixel of the coded images"),
        Figure(QUALITY_PNG, "PSNR and MS-SSIM of the coded images"),
        Heading("Failures"),
    ]
    if s.failures:
        blocks.append(Paragraph("Grouped by status and error, with numbers and quoted names blanked out; the "
                                "example names one row to look at."))
        blocks.append(Table(("status", "error", "rows", "example"),
                            tuple((g.status, g.error, fmt_count(g.count), f"`{g.example}`")
                                  for g in s.failures[:FAILURE_GROUPS]), (2,)))
    else:
        blocks.append(Paragraph("None: every sample was coded."))
    slowest = sorted((t for t in s.shards if math.isfinite(t.seconds)), key=lambda t: -t.seconds)[:SLOWEST]
    blocks += [
        Heading("Slowest shards"),
        Table(("shard", "samples", "read s", "encode s", "samples/s", "device", "node"),
              tuple((t.shard_id, fmt_count(t.samples), fmt_number(t.read_s, 1), fmt_number(t.encode_s, 1),
                     fmt_number(t.samples / t.seconds if t.seconds else math.nan, 2), t.device, t.node_id[:12])
                    for t in slowest), (1, 2, 3, 4)),
        Heading("Throughput"),
    ]
    if len(elapsed):
        span = float(elapsed[-1])
        actor_s = sum(t.seconds for t in s.shards if math.isfinite(t.seconds))
        blocks += [
            Bullets((
                f"{fmt_count(cumulative[-1])} samples committed in {span / 60:.1f} min since the first run started: "
                f"{cumulative[-1] / span if span else math.nan:.2f} samples/s overall (gaps between runs included).",
                f"Actor time (read + encode, summed over shards): {actor_s / 60:.1f} min, "
                f"{cumulative[-1] / actor_s if actor_s else math.nan:.2f} samples/s per actor.",
            )),
            Figure(THROUGHPUT_PNG, "Samples committed over time, and the commit rate"),
        ]
    else:
        blocks.append(Paragraph("No committed shard has a commit time."))
    return blocks


def _json(summary: PrefixSummary, command: str, elapsed, cumulative) -> dict[str, Any]:
    s = summary
    return {
        "kind": "s2c-run-report",
        "format": 1,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "s2c_pipeline": __version__,
        "prefix": s.prefix,
        "identity": dict(s.identity),
        "run_starts": [t.isoformat() for t in s.run_starts],
        "committed_shards": len(s.shards),
        "uncommitted_sources": list(s.uncommitted_sources),
        "samples": s.samples,
        "statuses": dict(s.statuses),
        "bytes": {"source_shards": s.source_shard_bytes, "output_shards": s.output_shard_bytes,
                  "manifests": s.manifest_bytes, "saved": s.saved_bytes, "images_ok_source": s.image_bytes_ok,
                  "images_ok_s2c": s.s2c_bytes_ok},
        "metrics": {name: getattr(s, name).to_dict()
                    for name in ("quality", "bpp", "psnr", "ms_ssim", "encode_ms", "decode_ms")},
        "failures": [asdict(g) for g in s.failures],
        "shards": [{**asdict(t), "committed_at": t.committed_at.isoformat() if t.committed_at else None,
                    "seconds": t.seconds} for t in s.shards],
        "throughput": {"elapsed_s": list(map(float, elapsed)), "cumulative_samples": list(map(int, cumulative))},
    }

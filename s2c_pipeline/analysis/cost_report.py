"""The cost sections of the ``s2c analyze`` report: layouts priced per class, the tars-vs-objects table."""

from __future__ import annotations

from pathlib import Path

from s2c_pipeline.analysis.analyze import Analysis, QualityResult
from s2c_pipeline.analysis.costs import LayoutCost, ObjectLayout, cost_table, layout_cost
from s2c_pipeline.analysis.document import (
    Block,
    Figure,
    Heading,
    Paragraph,
    Table,
    fmt_bytes,
    fmt_count,
    fmt_usd,
)
from s2c_pipeline.analysis.plots import CostBar, plot_costs, quality_colours
from s2c_pipeline.analysis.prices import PriceTable

COSTS_PNG = "costs.png"


def price_layouts(analysis: Analysis, prices: PriceTable, priced_bytes: float
                  ) -> tuple[dict[str, ObjectLayout], dict[str, list[LayoutCost]]]:
    """Every layout (see ``_layouts``) and its cost in every class, for ``priced_bytes`` of source."""
    layouts = _layouts(analysis, priced_bytes / analysis.dataset_bytes)
    return layouts, {name: cost_table([layout], prices) for name, layout in layouts.items()}


def _layouts(analysis: Analysis, scale: float) -> dict[str, ObjectLayout]:
    """Current shards, the output tars at each quality and, at the reference quality, one object per
    image; all ``scale`` times as many objects (shards and images keep their sizes)."""
    shards = [s.size_bytes for s in analysis.shard_sizes]
    dataset = float(analysis.dataset_bytes)
    count = len(shards) * scale
    layouts = {"current": ObjectLayout("current shards", count, dataset * scale, tuple(shards))}
    for q in analysis.per_quality:
        for bound in ("value", "low", "high"):
            total = getattr(q.projection.output_bytes, bound)
            sizes = tuple(s * total / dataset for s in shards)
            layouts[f"tars:{q.quality:g}:{bound}"] = ObjectLayout(f"s2c tars q{q.quality:g}", count, total * scale, sizes)
    ref = analysis.reference
    index = analysis.per_quality.index(ref)
    images = ref.projection.images.value
    read = sum(t.size_bytes for t in analysis.tallies)
    carried = dataset * sum(t.carried_bytes for t in analysis.tallies) / read  # .json, .cls... ride along
    sizes = tuple(float(r.coded[index].coded_bytes) + carried / images for r in analysis.results)
    weights = tuple(r.image.weight for r in analysis.results)
    layouts["per_image"] = ObjectLayout(
        f"one object per image q{ref.quality:g}", images * scale,
        (ref.projection.compressed_image_bytes.value + carried) * scale, sizes, weights,
    )
    return layouts


def priced_note(priced: float, dataset: float) -> str:
    if priced == dataset:
        return ""
    ratio = priced / dataset
    times = f"{ratio:,.0f}" if ratio >= 100 else f"{ratio:.3g}"
    return f" for an assumed {fmt_bytes(priced)} of shards like these ({times} times the listed bytes)"


def headline_cost(costs: dict[str, list[LayoutCost]], ref: QualityResult, priced: float, dataset: float) -> str:
    now = {c.class_id: c for c in costs["current"]}
    then = {c.class_id: c for c in costs[f"tars:{ref.quality:g}:value"]}
    parts = [f"{c.class_name} {fmt_usd(now[i].storage_usd_month)} -> {fmt_usd(c.storage_usd_month)}"
             for i, c in then.items()]
    return f"**Per month**{priced_note(priced, dataset)} (today -> compressed): " + "; ".join(parts) + "."


def cost_blocks(analysis: Analysis, prices: PriceTable, costs: dict[str, list[LayoutCost]],
                 priced: float) -> list[Block]:
    ref = analysis.reference
    now = costs["current"]
    columns = [f"q{q.quality:g}" for q in analysis.per_quality]
    rows = []
    for i, c in enumerate(now):
        per_quality = [costs[f"tars:{q.quality:g}:value"][i].storage_usd_month for q in analysis.per_quality]
        ref_cost = costs[f"tars:{ref.quality:g}:value"][i]
        rows.append((c.class_name, fmt_usd(c.storage_usd_month), *map(fmt_usd, per_quality),
                     fmt_usd(c.storage_usd_month - ref_cost.storage_usd_month), fmt_usd(ref_cost.write_usd),
                     fmt_usd(ref_cost.read_all_usd), str(c.min_storage_days or "-")))
    tars, per_image = costs[f"tars:{ref.quality:g}:value"], costs["per_image"]
    packing = tuple(
        (t.class_name, fmt_count(t.objects), fmt_usd(t.storage_usd_month), fmt_usd(t.write_usd), fmt_usd(t.read_all_usd),
         fmt_count(p.objects), fmt_usd(p.storage_usd_month), fmt_usd(p.overhead_usd_month), fmt_usd(p.write_usd),
         fmt_usd(p.read_all_usd), _times(p.storage_usd_month + p.write_usd, t.storage_usd_month + t.write_usd))
        for t, p in zip(tars, per_image, strict=True)
    )
    mean_object = ref.projection.compressed_image_bytes.value / max(ref.projection.images.value, 1)
    return [
        Heading("Storage cost per month"),
        Paragraph(f"Storage only, per month{priced_note(priced, analysis.dataset_bytes)}, at list prices "
                  "(table below); the compressed columns store the output shards of each quality. Saved, write and "
                  f"read columns are for quality {ref.quality:g}: write = PUT (or lifecycle transition) of every object once, read = GET/restore requests and "
                  "retrieval fees to read everything back once."),
        Table(("class", "today", *columns, f"saved/month q{ref.quality:g}", "write once", "read all once", "min days"),
              tuple(rows), tuple(range(1, len(columns) + 6))),
        Figure(COSTS_PNG, "Storage cost per month by class: today, compressed tars per quality (whiskers: "
                          "interval), and one object per image"),
        Heading("Why per-shard tars, not one object per image"),
        Paragraph(f"At quality {ref.quality:g} a bitstream averages {fmt_bytes(mean_object)}. Stored one object per "
                  "image (its other members, e.g. `.json`, in the same object), every object pays a PUT, and archive classes bill a minimum object size (128 KiB in "
                  "Standard-IA and Glacier Instant Retrieval) or a fixed overhead (40 KiB in Deep Archive, 8 KiB of "
                  "it at the Standard rate). S3 lifecycle rules also skip objects under 128 KiB by default, so "
                  "small objects never reach the cold classes. `s2c compress` writes one tar per input shard and "
                  "records each bitstream's byte offset in the manifest, so one image is still one ranged GET."),
        Table(("class", "tar objects", "tars $/month", "tars write", "tars read all", "image objects",
               "per-image $/month", "of it overhead", "per-image write", "per-image read all",
               "per-image / tars (month 1)"), packing, tuple(range(1, 11))),
        Heading("Price table"),
        Paragraph(f"Source: {prices.origin}. List prices in USD for one region; **check them against the "
                  "provider's page before relying on this report** and override with `--prices FILE` "
                  "(docs/analysis.md)."),
        Table(("class", "$/GB-month", "PUT /1000", "GET /1000", "retrieval /GB", "min object", "min days",
               "overhead / object", "as of", "source"),
              tuple((c.name, f"{c.storage_per_gb_month:g}", f"{c.put_per_1000:g}", f"{c.get_per_1000:g}",
                     f"{c.retrieval_per_gb:g}", f"{c.min_object_bytes / 1024:g} KiB" if c.min_object_bytes else "-",
                     str(c.min_storage_days or "-"), _overhead(c), c.as_of, c.source + (f"; {c.notes}" if c.notes else ""))
                    for c in prices.classes), (1, 2, 3, 4, 5, 6)),
    ]


def _overhead(c) -> str:
    if not c.overhead:
        return "-"
    return " + ".join(f"{o.bytes // 1024} KiB" + (f" at {o.billed_as}" if o.billed_as else "") for o in c.overhead)


def _times(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "-"


def cost_plot(analysis: Analysis, prices: PriceTable, layouts: dict[str, ObjectLayout],
               costs: dict[str, list[LayoutCost]], priced: float, out: Path) -> Path:
    names = [c.name for c in prices.classes]
    colours = quality_colours(len(analysis.per_quality))
    bars = [CostBar("today (source shards)", [c.storage_usd_month for c in costs["current"]], "#9e9e9e")]
    for q, colour in zip(analysis.per_quality, colours, strict=True):
        low = [layout_cost(layouts[f"tars:{q.quality:g}:low"], c, prices).storage_usd_month for c in prices.classes]
        high = [layout_cost(layouts[f"tars:{q.quality:g}:high"], c, prices).storage_usd_month for c in prices.classes]
        bars.append(CostBar(f"s2c tars, quality {q.quality:g}",
                            [c.storage_usd_month for c in costs[f"tars:{q.quality:g}:value"]], colour, low, high))
    bars.append(CostBar(f"s2c one object per image, quality {analysis.reference.quality:g}",
                        [c.storage_usd_month for c in costs["per_image"]], "#d62728"))
    return plot_costs(names, bars, out, f"Storage per month for {fmt_bytes(priced)} of source shards "
                                        f"({fmt_count(layouts['current'].objects)} objects) today")

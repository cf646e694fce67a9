"""Does recompressing pay? One-off compute and moving costs against the monthly storage saving.

Per codec, at the reference level, for the dataset priced (the listed one, or ``--assume-size``):

- **compute**: core-hours = projected images x (encode + decode-verify seconds per image, as
  measured on the sample) x the CPU threads each encode used; ``s2c compress`` decodes every
  bitstream again before it commits it, and so does this count for every codec. For our codec
  measured on a CPU, GPU-hours come from ``--gpu-images-per-s`` or a committed GPU benchmark
  (``benchmarks/results/*.json`` with ``"kind": "s2c-gpu-coding"``, in megapixels per second,
  scaled by the sample's mean pixels per image). The compute cost is the cheaper of the two.
- **moving**, per storage class: reading today's shards once (requests and retrieval fees) and
  writing the new tars once (PUTs), at the class's list prices;
- **monthly saving**, per storage class: today's storage minus the new tars' storage, less the
  extra decode compute when images are read (``--reads-per-month`` images a month, each decoded
  at the measured decode time instead of decoding today's file at its measured time);
- **months to pay back** = (compute + moving) / monthly saving; never, when nothing is saved.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from s2c_pipeline.analysis.analyze import Analysis, CodecRow
from s2c_pipeline.analysis.compute_prices import GPU_BENCHMARK_KIND, ComputeOptions
from s2c_pipeline.analysis.costs import ObjectLayout, layout_cost
from s2c_pipeline.analysis.prices import PriceTable


@dataclass(frozen=True)
class GpuFigure:
    images_per_s: float
    source: str


@dataclass(frozen=True)
class ClassPayback:
    class_id: str
    class_name: str
    today_usd_month: float
    after_usd_month: float
    moving_usd: float
    """Read today's shards once plus write the new tars once."""
    one_off_usd: float
    saving_usd_month: float
    """Storage saved, less the extra decode compute of the reads."""
    months: float
    """One-off over monthly saving; inf when nothing is saved."""


@dataclass(frozen=True)
class CodecPayback:
    codec: str
    learned: bool
    images: float
    cpu_core_hours: float | None
    gpu_hours: float | None
    compute_usd: float
    compute_on: str
    """"CPU" or "GPU": the cheaper of the two that have a figure."""
    decode_usd_month: float
    """Extra compute per month to decode ``reads_per_month`` images instead of today's files."""
    per_class: tuple[ClassPayback, ...]


def tar_layout(analysis: Analysis, row: CodecRow, scale: float, bound: str = "value") -> ObjectLayout:
    """The output tars of ``row`` (one per source shard, sizes in proportion), ``scale`` times as many."""
    shards = [s.size_bytes for s in analysis.shard_sizes]
    total = getattr(row.projection.output_bytes, bound)
    sizes = tuple(s * total / analysis.dataset_bytes for s in shards)
    name = f"{row.codec} tars" + (f" q{row.quality:g}" if math.isfinite(row.quality) else "")
    return ObjectLayout(name, len(shards) * scale, total * scale, sizes)


def current_layout(analysis: Analysis, scale: float) -> ObjectLayout:
    shards = [s.size_bytes for s in analysis.shard_sizes]
    return ObjectLayout("current shards", len(shards) * scale, analysis.dataset_bytes * scale, tuple(shards))


def gpu_figure(analysis: Analysis, options: ComputeOptions) -> GpuFigure | None:
    """Our codec's GPU throughput on images like the sample's, from the flag or a committed benchmark."""
    if options.gpu_images_per_s is not None:
        return GpuFigure(options.gpu_images_per_s, "--gpu-images-per-s")
    if options.benchmarks is None or not options.benchmarks.is_dir():
        return None
    pixels = _mean_pixels(analysis)
    for path in sorted(options.benchmarks.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("kind") != GPU_BENCHMARK_KIND:
            continue
        if data.get("model") != analysis.model_name or not pixels:
            continue
        rate = float(data["megapixels_per_s"])
        return GpuFigure(rate * 1e6 / pixels, f"{path.name}: {rate:g} MP/s on {data.get('device', 'a GPU')}")
    return None


def _mean_pixels(analysis: Analysis) -> float:
    coded = [(c.width * c.height, r.image.weight) for r in analysis.results for c in r.coded[:1]
             if c.width and c.height]
    if not coded:
        return 0.0
    pixels, weights = zip(*coded, strict=True)
    return float(np.average(pixels, weights=weights))


def _source_decode_s(analysis: Analysis) -> float:
    pairs = [(r.source_ms, r.image.weight) for r in analysis.results if math.isfinite(r.source_ms)]
    if not pairs:
        return 0.0
    values, weights = zip(*pairs, strict=True)
    return float(np.average(values, weights=weights)) / 1000


def payback(analysis: Analysis, prices: PriceTable, priced_bytes: float, options: ComputeOptions
            ) -> tuple[CodecPayback, ...]:
    """Every codec at the reference level (module doc), ours first."""
    scale = priced_bytes / analysis.dataset_bytes
    today = current_layout(analysis, scale)
    gpu = gpu_figure(analysis, options)
    source_decode_s = _source_decode_s(analysis)
    out = []
    for row in analysis.rows(analysis.reference_index):
        images = row.projection.images.value * scale
        threads = analysis.threads if row.learned else 1
        seconds = (row.encode_ms.mean + row.decode_ms.mean) / 1000 if row.encode_ms.count else math.nan
        on_gpu = row.learned and analysis.device.startswith("cuda")
        cpu_hours = None if on_gpu or not math.isfinite(seconds) else images * seconds * threads / 3600
        gpu_hours = images * seconds / 3600 if on_gpu else None
        if row.learned and not on_gpu and gpu is not None:
            gpu_hours = images / gpu.images_per_s / 3600
        options_usd = {"CPU": cpu_hours * options.cpu.usd_per_hour if cpu_hours is not None else math.inf,
                       "GPU": gpu_hours * options.gpu.usd_per_hour if gpu_hours is not None else math.inf}
        compute_on = min(options_usd, key=options_usd.__getitem__)
        compute = options_usd[compute_on]
        decode_s = row.decode_ms.mean / 1000 if row.decode_ms.count else math.nan
        decode_price = options.gpu.usd_per_hour if on_gpu else options.cpu.usd_per_hour * threads
        extra_decode = (options.reads_per_month * (decode_s - source_decode_s) / 3600 * decode_price
                        if options.reads_per_month else 0.0)
        after = tar_layout(analysis, row, scale)
        per_class = []
        for storage_class in prices.classes:
            now, then = layout_cost(today, storage_class, prices), layout_cost(after, storage_class, prices)
            moving = now.read_all_usd + then.write_usd
            saving = now.storage_usd_month - then.storage_usd_month - extra_decode
            one_off = compute + moving
            per_class.append(ClassPayback(
                storage_class.id, storage_class.name, now.storage_usd_month, then.storage_usd_month, moving,
                one_off, saving, one_off / saving if saving > 0 and math.isfinite(one_off) else math.inf,
            ))
        out.append(CodecPayback(row.codec, row.learned, images, cpu_hours, gpu_hours, compute, compute_on,
                                extra_decode, tuple(per_class)))
    return tuple(out)

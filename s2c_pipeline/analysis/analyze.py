"""``s2c analyze``: list, sample, code with every codec, project each. The result feeds ``analysis_report``.

Every codec is a row of the projection: ours at each quality level (or per image at a PSNR
target), each classical codec matched to it (``matching``), all on the same sampled images, with
the same estimator, intervals and prices. Progress: a tqdm bar counting sampled images through our
codec (its total is the sample size, lowered when the dataset turns out to hold fewer images), then
one counting the classical codecs' encodes (no total: a bisection's length is not known ahead).
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from s2c_pipeline.analysis.coding import CodedImage, ImageResult, code_images
from s2c_pipeline.analysis.matching import SampledSource, code_to_target, match_levels
from s2c_pipeline.analysis.projection import Projection, SampledSizes, project
from s2c_pipeline.analysis.sampling import (
    PickedImage,
    SampleDesign,
    SampleError,
    ShardSize,
    ShardTally,
    SkippedShard,
    draw_sample,
    list_shard_sizes,
)
from s2c_pipeline.analysis.stats import Summary, summarize
from s2c_pipeline.archive.status import Status
from s2c_pipeline.codec.image_codec import ImageCodec, default_quality, round_quality
from s2c_pipeline.evaluate.classical import ClassicalCodec, classical_codecs
from s2c_pipeline.imaging import DEFAULT_MAX_PIXELS
from s2c_pipeline.shards import expand_inputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalyzeOptions:
    design: SampleDesign = field(default_factory=SampleDesign)
    qualities: tuple[float, ...] | None = None
    """None: the lowest, middle and highest level of the model."""
    target_psnr: float | None = None
    """Instead of ``qualities``: every codec, per image, at the smallest setting reaching this PSNR."""
    codecs: tuple[str, ...] = ()
    """Classical codecs coded next to ours (names from ``evaluate.CLASSICAL_NAMES``)."""
    group_by: str | None = None
    """Label each sampled image for the per-group tables (``sampling.sample_label``); None: no groups."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int = 1
    """Processes coding the sample on CPU (each with one torch thread); 1 codes in this process."""
    replicates: int = 2000
    confidence: float = 0.95
    show_progress: bool = True
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.target_psnr is not None and self.qualities is not None:
            raise ValueError("give quality levels or a PSNR target, not both")
        if self.target_psnr is not None and not 0 < self.target_psnr < 100:
            raise ValueError(f"the PSNR target must be between 0 and 100 dB, got {self.target_psnr:g}")


@dataclass(frozen=True)
class CodecRow:
    """One codec at one level (one of our qualities, or the PSNR target), projected to the dataset."""

    codec: str
    """Our model's name, or a classical codec's (``jpeg``...)."""
    quality: float
    """The level: our quality level; with a PSNR target, NaN."""
    setting: str
    """What this codec ran at: ``q4.5``, ``63``, ``per image: 31-78 (median 52)``."""
    matched: bool
    """Levels: the codec's mean PSNR reaches ours (false: even its best setting falls short).
    Target: every image it coded reached the target."""
    learned: bool
    projection: Projection
    bpp: Summary
    psnr: Summary
    ms_ssim: Summary
    encode_ms: Summary
    decode_ms: Summary
    statuses: Mapping[str, int]
    coded: tuple[CodedImage, ...] = field(repr=False, compare=False)
    """One per sampled image, in the order of ``Analysis.results``."""


QualityResult = CodecRow  # our codec's rows keep the name the report modules use for them


@dataclass(frozen=True)
class Analysis:
    inputs: tuple[str, ...]
    shard_sizes: tuple[ShardSize, ...]
    tallies: tuple[ShardTally, ...]
    results: tuple[ImageResult, ...]
    per_quality: tuple[CodecRow, ...]
    """Our codec, one row per level."""
    classical_rows: tuple[tuple[CodecRow, ...], ...]
    """Per level (parallel to ``per_quality``), one row per classical codec."""
    model_name: str
    weights_id: str
    device: str
    threads: int
    """CPU threads each of our encodes used (compute cost counts core time)."""
    classical: tuple[str, ...]
    classical_skipped: Mapping[str, str]
    skipped_shards: tuple[SkippedShard, ...]
    options: AnalyzeOptions
    seconds: float

    @property
    def dataset_bytes(self) -> int:
        return sum(s.size_bytes for s in self.shard_sizes)

    @property
    def qualities(self) -> tuple[float, ...]:
        return tuple(q.quality for q in self.per_quality)

    @property
    def reference_index(self) -> int:
        return (len(self.per_quality) - 1) // 2

    @property
    def reference(self) -> CodecRow:
        """The level the layout and payback comparisons use: the middle one analysed."""
        return self.per_quality[self.reference_index]

    def rows(self, index: int) -> tuple[CodecRow, ...]:
        """Every codec at level ``index``, ours first."""
        return (self.per_quality[index], *self.classical_rows[index])

    def level_name(self, index: int) -> str:
        if self.options.target_psnr is not None:
            return f"PSNR >= {self.options.target_psnr:g} dB per image"
        row = self.per_quality[index]
        return f"q{row.quality:g} (mean PSNR {row.psnr.mean:.2f} dB)"


def default_qualities(num_qualities: int) -> tuple[float, ...]:
    """Lowest, middle (``s2c compress``'s default) and highest level."""
    return tuple(sorted({1.0, default_quality(num_qualities), float(num_qualities)}))


def analyze(inputs: Sequence[str], codec: ImageCodec, options: AnalyzeOptions) -> Analysis:
    """Sample the shards ``inputs`` names, code the sample with every codec and project each.

    Raises:
        FileNotFoundError, ValueError: inputs that match nothing, bad qualities or codec names.
        SampleError: no shard could be read, or they hold no images.
    """
    started = time.monotonic()
    storage = dict(options.storage_options)
    target = options.target_psnr
    if target is None:
        qualities = tuple(round_quality(q) for q in (options.qualities or default_qualities(codec.num_qualities)))
    else:
        qualities = (math.nan,)
    bad = [q for q in qualities if target is None and not 1 <= q <= codec.num_qualities]
    if bad:
        raise ValueError(f"qualities {', '.join(f'{q:g}' for q in bad)} are outside 1..{codec.num_qualities} "
                         f"for {codec.model_name}")
    classical, skipped_codecs = classical_codecs(list(options.codecs)) if options.codecs else ([], {})
    urls = expand_inputs(inputs, storage_options=storage)
    sizes = list_shard_sizes(urls, storage)
    log.info("%d shards, %.3f GB listed; sampling with %s", len(sizes), sum(s.size_bytes for s in sizes) / 1e9,
             options.design)
    skipped: list[SkippedShard] = []
    tallies: list[ShardTally] = []
    results: list[ImageResult] = []
    sources: list[SampledSource] = []
    with tqdm(total=options.design.images, unit="image", desc="analyze", disable=not options.show_progress) as bar:

        def sampled() -> Iterator[PickedImage]:
            for draw in draw_sample(sizes, options.design, storage_options=storage, skipped=skipped,
                                    group_by=options.group_by):
                tallies.append(draw.tally)
                bar.total = draw.target
                bar.set_postfix_str(f"{len(tallies)} shards read", refresh=False)
                for picked in draw.picked:
                    if classical:  # kept for the classical codecs' pass
                        sources.append(SampledSource(picked.data, picked.weight))
                    yield picked

        for result in code_images(sampled(), codec, qualities, max_pixels=options.max_pixels, target_psnr=target,
                                  workers=options.workers):
            results.append(result)
            bar.update(1)
        bar.total = len(results)
        bar.refresh()
    if not tallies:
        raise SampleError("no shard could be read: " + "; ".join(s.reason for s in skipped))
    if not results:
        raise SampleError(f"the {len(tallies)} shard(s) read hold no image member "
                          f"({', '.join(t.url for t in tallies[:3])}); nothing to analyse")
    project_row = partial(_row, sizes=sizes, tallies=tallies, results=results, options=options)
    per_quality = tuple(
        project_row(codec.model_name, quality, _our_setting(quality, [r.coded[index] for r in results]),
                    [r.coded[index] for r in results], index, learned=True)
        for index, quality in enumerate(qualities)
    )
    classical_rows = _classical_rows(classical, sources, per_quality, results, options, project_row)
    return Analysis(
        inputs=tuple(inputs),
        shard_sizes=tuple(sizes),
        tallies=tuple(tallies),
        results=tuple(results),
        per_quality=per_quality,
        classical_rows=classical_rows,
        model_name=codec.model_name,
        weights_id=codec.weights.weights_id,
        device=str(codec.device),
        threads=1 if options.workers > 1 else torch.get_num_threads(),
        classical=tuple(c.name for c in classical),
        classical_skipped=skipped_codecs,
        skipped_shards=tuple(skipped),
        options=options,
        seconds=time.monotonic() - started,
    )


def _classical_rows(classical: Sequence[ClassicalCodec], sources: Sequence[SampledSource],
                    ours: Sequence[CodecRow], results: Sequence[ImageResult], options: AnalyzeOptions,
                    project_row: Callable[..., CodecRow]) -> tuple[tuple[CodecRow, ...], ...]:
    rows: list[list[CodecRow]] = [[] for _ in ours]
    bar = tqdm(unit="encode", desc="classical codecs", disable=not options.show_progress or not classical)
    tick = partial(bar.update, 1)
    for codec in classical:  # the bootstrap seed is the level's: every codec gets the same resamples
        log.info("coding the sample with %s (%s)", codec.name, codec.description)
        bar.set_postfix_str(codec.name, refresh=False)
        if options.target_psnr is not None:
            coded = code_to_target(codec, sources, options.target_psnr, options.max_pixels, tick)
            rows[0].append(project_row(codec.name, ours[0].quality, _per_image_setting(coded), coded, 0,
                                       matched=not any(c.target_missed for c in coded)))
            continue
        included = [[r.coded[i].status == Status.OK for r in results] for i in range(len(ours))]
        matches = match_levels(codec, sources, [row.psnr.mean for row in ours], included, options.max_pixels, tick)
        for level, (row, match) in enumerate(zip(ours, matches, strict=True)):
            rows[level].append(project_row(codec.name, row.quality, str(match.setting), list(match.coded),
                                           level, matched=match.reached))
    bar.close()
    return tuple(tuple(r) for r in rows)


def _our_setting(quality: float, coded: Sequence[CodedImage]) -> str:
    return f"q{quality:g}" if math.isfinite(quality) else _per_image_setting(coded, prefix="q")


def _per_image_setting(coded: Sequence[CodedImage], prefix: str = "") -> str:
    values = sorted(c.quality for c in coded if c.status == Status.OK)
    if not values:
        return "-"
    median = float(np.median(values))
    return f"per image: {prefix}{values[0]:g}-{prefix}{values[-1]:g} (median {prefix}{median:g})"


def _row(codec: str, quality: float, setting: str, coded: Sequence[CodedImage], index: int, *,
         sizes: Sequence[ShardSize], tallies: Sequence[ShardTally], results: Sequence[ImageResult],
         options: AnalyzeOptions, learned: bool = False, matched: bool = True) -> CodecRow:
    sample = SampledSizes(
        shard=np.array([r.image.shard_index for r in results], dtype=int),
        source=np.array([c.source_bytes for c in coded], dtype=float),
        coded=np.array([c.coded_bytes for c in coded], dtype=float),
    )
    projection = project(
        sum(s.size_bytes for s in sizes), len(sizes), tallies, sample,
        replicates=options.replicates, confidence=options.confidence, seed=options.design.seed + index,
    )
    ok = [(c, r.image.weight) for c, r in zip(coded, results, strict=True) if c.status == Status.OK]
    weights = [w for _, w in ok]
    if learned and options.target_psnr is not None:
        matched = not any(c.target_missed for c in coded)
    return CodecRow(
        codec=codec,
        quality=quality,
        setting=setting,
        matched=matched,
        learned=learned,
        projection=projection,
        bpp=summarize([c.bpp for c, _ in ok], weights),
        psnr=summarize([c.psnr for c, _ in ok], weights),
        ms_ssim=summarize([c.ms_ssim for c, _ in ok], weights),
        encode_ms=summarize([c.encode_ms for c, _ in ok], weights),
        decode_ms=summarize([c.decode_ms for c, _ in ok], weights),
        statuses=dict(Counter(c.counted_status for c in coded)),
        coded=tuple(coded),
    )

"""``s2c analyze``: list, sample, code, project. The result feeds ``analysis_report``.

Progress is one tqdm bar counting sampled images (each coded at every quality); its total is the
sample size, lowered when the dataset turns out to hold fewer images.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from s2c_pipeline.analysis.coding import CodedImage, ImageResult, code_images
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
from s2c_pipeline.codec.image_codec import ImageCodec, default_quality, round_quality
from s2c_pipeline.evaluate.classical import classical_codecs
from s2c_pipeline.imaging import DEFAULT_MAX_PIXELS
from s2c_pipeline.shards import expand_inputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalyzeOptions:
    design: SampleDesign = field(default_factory=SampleDesign)
    qualities: tuple[float, ...] | None = None
    """None: the lowest, middle and highest level of the model."""
    codecs: tuple[str, ...] = ()
    """Classical codecs to compare against (names from ``evaluate.CLASSICAL_NAMES``)."""
    classical_images: int = 50
    """The classical codecs code only the first this-many sampled images (they are for the RD plot)."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int = 1
    """Processes coding the sample on CPU (each with one torch thread); 1 codes in this process."""
    replicates: int = 2000
    confidence: float = 0.95
    show_progress: bool = True
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class QualityResult:
    quality: float
    projection: Projection
    bpp: Summary
    psnr: Summary
    ms_ssim: Summary
    encode_ms: Summary
    statuses: Mapping[str, int]


@dataclass(frozen=True)
class Analysis:
    inputs: tuple[str, ...]
    shard_sizes: tuple[ShardSize, ...]
    tallies: tuple[ShardTally, ...]
    results: tuple[ImageResult, ...]
    per_quality: tuple[QualityResult, ...]
    model_name: str
    weights_id: str
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
    def reference(self) -> QualityResult:
        """The quality the layout comparison uses: the middle one analysed."""
        return self.per_quality[(len(self.per_quality) - 1) // 2]


def default_qualities(num_qualities: int) -> tuple[float, ...]:
    """Lowest, middle (``s2c compress``'s default) and highest level."""
    return tuple(sorted({1.0, default_quality(num_qualities), float(num_qualities)}))


def analyze(inputs: Sequence[str], codec: ImageCodec, options: AnalyzeOptions) -> Analysis:
    """Sample the shards ``inputs`` names, code the sample and project to the whole dataset.

    Raises:
        FileNotFoundError, ValueError: inputs that match nothing, bad qualities or codec names.
        SampleError: no shard could be read, or they hold no images.
    """
    started = time.monotonic()
    storage = dict(options.storage_options)
    qualities = tuple(round_quality(q) for q in (options.qualities or default_qualities(codec.num_qualities)))
    bad = [q for q in qualities if not 1 <= q <= codec.num_qualities]
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
    with tqdm(total=options.design.images, unit="image", desc="analyze", disable=not options.show_progress) as bar:

        def sampled() -> Iterator[PickedImage]:
            for draw in draw_sample(sizes, options.design, storage_options=storage, skipped=skipped):
                tallies.append(draw.tally)
                bar.total = draw.target
                bar.set_postfix_str(f"{len(tallies)} shards read", refresh=False)
                yield from draw.picked

        for result in code_images(sampled(), codec, qualities, max_pixels=options.max_pixels, classical=classical,
                                  classical_images=options.classical_images, workers=options.workers):
            results.append(result)
            bar.update(1)
        bar.total = len(results)
        bar.refresh()
    if not tallies:
        raise SampleError("no shard could be read: " + "; ".join(s.reason for s in skipped))
    if not results:
        raise SampleError(f"the {len(tallies)} shard(s) read hold no image member "
                          f"({', '.join(t.url for t in tallies[:3])}); nothing to analyse")
    per_quality = tuple(
        _quality_result(index, quality, sizes, tallies, results, options) for index, quality in enumerate(qualities)
    )
    return Analysis(
        inputs=tuple(inputs),
        shard_sizes=tuple(sizes),
        tallies=tuple(tallies),
        results=tuple(results),
        per_quality=per_quality,
        model_name=codec.model_name,
        weights_id=codec.weights.weights_id,
        classical=tuple(c.name for c in classical),
        classical_skipped=skipped_codecs,
        skipped_shards=tuple(skipped),
        options=options,
        seconds=time.monotonic() - started,
    )


def _quality_result(index: int, quality: float, sizes: Sequence[ShardSize], tallies: Sequence[ShardTally],
                    results: Sequence[ImageResult], options: AnalyzeOptions) -> QualityResult:
    coded: list[CodedImage] = [r.coded[index] for r in results]
    sample = SampledSizes(
        shard=np.array([r.image.shard_index for r in results], dtype=int),
        source=np.array([c.source_bytes for c in coded], dtype=float),
        coded=np.array([c.coded_bytes for c in coded], dtype=float),
    )
    projection = project(
        sum(s.size_bytes for s in sizes), len(sizes), tallies, sample,
        replicates=options.replicates, confidence=options.confidence, seed=options.design.seed + index,
    )
    ok = [(c, r.image.weight) for c, r in zip(coded, results, strict=True) if c.status == "ok"]
    weights = [w for _, w in ok]
    return QualityResult(
        quality=quality,
        projection=projection,
        bpp=summarize([c.bpp for c, _ in ok], weights),
        psnr=summarize([c.psnr for c, _ in ok], weights),
        ms_ssim=summarize([c.ms_ssim for c, _ in ok], weights),
        encode_ms=summarize([c.encode_ms for c, _ in ok], weights),
        statuses=dict(Counter(c.status for c in coded)),
    )

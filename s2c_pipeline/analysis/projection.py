"""From a two-stage sample to the whole dataset: ratio estimators and a two-stage bootstrap.

The dataset's bytes ``D`` are known exactly (listing). From the shards that were read in full we
know their bytes ``S_i``, image counts ``M_i`` and image bytes ``I_i`` exactly; from the ``m_i``
images coded in shard ``i`` we know source sizes ``s_j`` and coded sizes ``c_j`` (an image that
could not be coded keeps ``c_j = s_j``, as ``s2c compress`` carries it verbatim). With weights
``w_i = M_i / m_i``:

- ratio ``R = sum_i w_i sum_j c_j / sum_i w_i sum_j s_j`` (compressed / source image bytes);
- image-byte share ``f = sum I_i / sum S_i`` and images per byte ``g = sum M_i / sum S_i``;
- images ``g D``; source image bytes ``f D``; compressed image bytes ``R f D``;
- output bytes ``D sum_i O_i / sum_i S_i``: ``O_i`` is the output tar ``s2c compress`` would write
  for read shard ``i``, its headers and carried members (known exactly) plus ``R' I'_i`` bytes of
  bitstreams, where primes mean sizes rounded up to 512-byte tar blocks, rounded up to whole tar
  records; savings ``D - output``.

Intervals come from a two-stage percentile bootstrap: resample the read shards with replacement
(skipped when every shard was read), then the sampled images within each drawn shard (skipped
for shards whose images were all coded), and recompute every estimate. Resampling images from a
shard that was sampled heavily overstates the variance a little, so the intervals err wide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from s2c_pipeline.analysis.sampling import ShardTally, tar_padded, tar_size


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap interval (``low`` = ``high`` = ``value`` for a census)."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Projection:
    images: Interval
    source_image_bytes: Interval
    compressed_image_bytes: Interval
    ratio: Interval
    output_bytes: Interval
    savings_bytes: Interval
    dataset_bytes: int

    def to_dict(self) -> dict:
        out = {name: getattr(self, name).to_dict() for name in self.__dataclass_fields__ if name != "dataset_bytes"}
        out["dataset_bytes"] = self.dataset_bytes
        return out


@dataclass(frozen=True)
class SampledSizes:
    """The coded sample at one quality: per image, its shard's index in the tallies and two sizes."""

    shard: np.ndarray
    source: np.ndarray
    coded: np.ndarray


def project(
    dataset_bytes: int,
    dataset_shards: int,
    tallies: Sequence[ShardTally],
    sample: SampledSizes,
    *,
    replicates: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Projection:
    """Estimates for the whole dataset with ``confidence`` percentile intervals (see module doc)."""
    k = len(tallies)
    exact, sampled = _per_shard_sums(tallies, sample)
    point = _estimates(dataset_bytes, exact, sampled.sum(axis=1), np.arange(k)[None, :])
    rng = np.random.default_rng(seed)
    draws = (rng.integers(0, k, size=(replicates, k)) if k < dataset_shards
             else np.broadcast_to(np.arange(k), (replicates, k)))
    totals = np.zeros((4, replicates))
    for slot in range(k):
        totals += _resampled_image_sums(tallies, sample, draws[:, slot], rng)
    boot = _estimates(dataset_bytes, exact, totals, draws)
    alpha = (1 - confidence) / 2
    intervals = {}
    for name, value in point.items():
        value = float(value[0])
        low, high = np.nanquantile(boot[name], [alpha, 1 - alpha]) if np.isfinite(value) else (np.nan, np.nan)
        intervals[name] = Interval(value, float(min(low, value)), float(max(high, value)))
    return Projection(dataset_bytes=dataset_bytes, **intervals)


_EXACT = ("size_bytes", "images", "image_bytes", "image_tar_bytes", "output_fixed_bytes")


def _per_shard_sums(tallies: Sequence[ShardTally], sample: SampledSizes) -> tuple[np.ndarray, np.ndarray]:
    """(5, k) exact shard rows (``_EXACT``) and (4, k) weighted sampled sums of c, s, c', s'."""
    k = len(tallies)
    exact = np.array([[getattr(t, name) for t in tallies] for name in _EXACT], dtype=float)
    weights = np.array([t.images / t.sampled if t.sampled else 0.0 for t in tallies])
    sampled = np.stack([np.bincount(sample.shard, weights=values, minlength=k) * weights
                        for values in _columns(sample)])
    return exact, sampled


def _columns(sample: SampledSizes) -> tuple[np.ndarray, ...]:
    padded = np.vectorize(tar_padded, otypes=[float])
    return sample.coded, sample.source, padded(sample.coded), padded(sample.source)


def _resampled_image_sums(tallies: Sequence[ShardTally], sample: SampledSizes, chosen: np.ndarray,
                          rng: np.random.Generator) -> np.ndarray:
    """(4, replicates): weighted sums of c, s, c', s' over a resample of each chosen shard's images."""
    out = np.zeros((4, len(chosen)))
    columns = _columns(sample)
    for index, tally in enumerate(tallies):
        rows = np.flatnonzero(chosen == index)
        members = np.flatnonzero(sample.shard == index)
        if not len(rows) or not len(members):
            continue
        weight = tally.images / len(members)
        if len(members) >= tally.images:  # every image of the shard was coded: nothing to resample
            picks = np.broadcast_to(members, (len(rows), len(members)))
        else:
            picks = members[rng.integers(0, len(members), size=(len(rows), len(members)))]
        for row, values in enumerate(columns):
            out[row, rows] = values[picks].sum(axis=1) * weight
    return out


def _estimates(dataset_bytes: int, exact: np.ndarray, sampled: np.ndarray, draws: np.ndarray) -> dict:
    """Every estimate, one per row of ``draws`` (the read shards in each replicate, by index).

    ``sampled`` holds the weighted sums over those draws: shape (4,) for one row or (4, rows).
    """
    size, images, image_bytes, image_tar, fixed = (exact[i][draws] for i in range(len(_EXACT)))
    coded, source, coded_tar, source_tar = (np.atleast_1d(v) for v in sampled)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = coded / source
        tar_ratio = coded_tar / source_tar
        # Each read shard's output tar: fixed part plus its images' bitstreams, to whole records.
        outputs = tar_size(fixed + tar_ratio[:, None] * image_tar).sum(axis=1)
        scale = dataset_bytes / size.sum(axis=1)
        share = image_bytes.sum(axis=1) * scale
        output = outputs * scale
    return {
        "images": images.sum(axis=1) * scale,
        "source_image_bytes": share,
        "compressed_image_bytes": share * ratio,
        "ratio": ratio,
        "output_bytes": output,
        "savings_bytes": dataset_bytes - output,
    }

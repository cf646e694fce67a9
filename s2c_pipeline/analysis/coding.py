"""The sampled images through our codec, exactly as ``s2c compress`` codes them, and the classical codecs.

Ours: ``codec.image_coding``, the very function ``s2c compress`` codes each image with (encode,
decode again, measure), so sizes, metrics and failure statuses are those a run would write into
its manifest. An image that is not coded keeps its status, and its coded size is its source size,
since the pipeline carries such images into the output verbatim.

The classical codecs (``s2c_pipeline.evaluate``) code the same RGB pixels at a few settings, for
the RD comparison only; they do not enter the projection.

On CPU, ``code_images`` can spread the work over worker processes, each holding its own codec with
one torch thread: the entropy coder is single-threaded, so processes scale where threads do not.
"""

from __future__ import annotations

import math
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from s2c_pipeline.analysis.sampling import PickedImage
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.codec.image_coding import OK, EncodeSettings, NotCoded, code_one, prepare_image
from s2c_pipeline.evaluate.classical import ClassicalCodec, classical_codecs
from s2c_pipeline.evaluate.rd import EvalImage, RDPoint, measure

CLASSICAL_SETTINGS = (10, 30, 50, 70, 90)
"""A few settings per classical codec: enough for a curve, cheap next to our own encodes."""


@dataclass(frozen=True)
class CodedImage:
    """One sampled image at one quality. Metrics are NaN unless ``status == "ok"``."""

    quality: float
    status: str
    source_bytes: int
    coded_bytes: int
    """``.s2c`` bytes; for an image that was not coded, its source bytes (kept verbatim)."""
    width: int | None = None
    height: int | None = None
    psnr: float = math.nan
    ms_ssim: float = math.nan
    encode_ms: float = math.nan
    decode_ms: float = math.nan
    error: str | None = None

    @property
    def bpp(self) -> float:
        if self.status != OK or not self.width or not self.height:
            return math.nan
        return self.coded_bytes * 8 / (self.width * self.height)


@dataclass(frozen=True)
class ImageResult:
    image: PickedImage
    """The sampled image, its ``data`` dropped once coded (a sample of 200 photos need not stay in memory)."""
    coded: tuple[CodedImage, ...]
    """One per quality, in the order of the qualities asked for."""
    classical: tuple[RDPoint, ...] = ()


def code_image(
    picked: PickedImage,
    codec: ImageCodec,
    qualities: Sequence[float],
    *,
    max_pixels: int,
    classical: Sequence[ClassicalCodec] = (),
) -> ImageResult:
    source_bytes = len(picked.data)
    done = replace(picked, data=b"")
    try:
        prepared = prepare_image(picked.data, max_pixels)
    except NotCoded as failure:
        rejected = tuple(CodedImage(q, failure.status, source_bytes, source_bytes, error=failure.error)
                         for q in qualities)
        return ImageResult(done, rejected)
    coded = []
    for quality in qualities:
        outcome = code_one(prepared, codec, EncodeSettings(quality, max_pixels, device=str(codec.device)))
        if isinstance(outcome, NotCoded):
            coded.append(CodedImage(quality, outcome.status, source_bytes, source_bytes, error=outcome.error))
            continue
        coded.append(CodedImage(
            quality, OK, source_bytes, len(outcome.s2c), outcome.width, outcome.height,
            outcome.psnr, outcome.ms_ssim, outcome.encode_ms, outcome.decode_ms,
        ))
    reference = EvalImage(picked.key, prepared.rgb, f"{picked.shard_url}:{picked.member}")
    points = tuple(measure(c, reference, s) for c in classical for s in CLASSICAL_SETTINGS)
    return ImageResult(done, tuple(coded), points)


def code_images(
    images: Iterable[PickedImage],
    codec: ImageCodec,
    qualities: Sequence[float],
    *,
    max_pixels: int,
    classical: Sequence[ClassicalCodec] = (),
    classical_images: int = 0,
    workers: int = 1,
) -> Iterator[ImageResult]:
    """``code_image`` for each image, results in input order; the first ``classical_images`` also
    go through the classical codecs.

    With ``workers > 1`` (CPU only), images are coded in that many spawned processes that load the
    same checkpoint; a few images per worker are in flight, so reading the next shard overlaps coding.
    """
    if workers <= 1 or codec.device.type != "cpu":
        for index, picked in enumerate(images):
            yield code_image(picked, codec, qualities, max_pixels=max_pixels,
                             classical=classical if index < classical_images else ())
        return
    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    setup = (str(codec.weights.path), codec.model_name, tuple(c.name for c in classical))
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=setup) as pool:
        pending: deque[Future] = deque()
        for index, picked in enumerate(images):
            pending.append(pool.submit(_code_in_worker, picked, tuple(qualities), max_pixels,
                                       index < classical_images))
            while len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


_worker: tuple[ImageCodec, list[ClassicalCodec]] | None = None


def _start_worker(weights: str, model_name: str, classical: tuple[str, ...]) -> None:
    global _worker
    torch.set_num_threads(1)
    codec = ImageCodec.load(model_name, weights_file=Path(weights), device="cpu")
    _worker = (codec, classical_codecs(list(classical))[0] if classical else [])


def _code_in_worker(picked: PickedImage, qualities: tuple[float, ...], max_pixels: int, with_classical: bool
                    ) -> ImageResult:
    assert _worker is not None, "worker process not initialised"
    codec, classical = _worker
    return code_image(picked, codec, qualities, max_pixels=max_pixels, classical=classical if with_classical else ())

"""The sampled images through our codec, exactly as ``s2c compress`` codes them.

``codec.encode_and_verify`` is the very function ``s2c compress`` codes each image with (encode,
decode again, measure), so sizes, metrics and failure statuses are those a run would write into
its manifest. An image that is not coded keeps its status, and its coded size is its source size,
since the pipeline carries such images into the output verbatim. With a PSNR target each image
gets the lowest quality that reaches it (``codec.target``), as ``s2c compress --target-psnr`` does.

The classical codecs code the same pixels afterwards (``analysis.matching``), once our codec's
quality on the sample is known.

On CPU, ``code_images`` can spread the work over worker processes, each holding its own codec with
one torch thread: the entropy coder is single-threaded, so processes scale where threads do not.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from s2c_pipeline.analysis.sampling import PickedImage
from s2c_pipeline.archive.outcomes import status_of
from s2c_pipeline.archive.status import Status
from s2c_pipeline.codec.encode_and_verify import EncodeSettings, NotCoded, code_one, prepare_image
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.codec.target import RateTarget

TARGET_NOT_REACHED = "target_not_reached"
"""Counted apart in the statuses: coded (its bytes are real) at the best setting, below the target."""


@dataclass(frozen=True)
class CodedImage:
    """One sampled image through one codec at one setting. Metrics are NaN unless ``status == "ok"``.

    ``quality`` is our quality level, or a classical codec's setting (1..99).
    """

    quality: float
    status: Status
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
    target_missed: bool = False
    """Coded ok, but even the best setting stays below the PSNR target."""

    @property
    def counted_status(self) -> str:
        """The status as the report counts it: a missed target is its own status."""
        return TARGET_NOT_REACHED if self.target_missed else self.status

    @property
    def bpp(self) -> float:
        if self.status != Status.OK or not self.width or not self.height:
            return math.nan
        return self.coded_bytes * 8 / (self.width * self.height)


@dataclass(frozen=True)
class ImageResult:
    image: PickedImage
    """The sampled image, its ``data`` dropped once coded (a sample of 200 photos need not stay in memory)."""
    coded: tuple[CodedImage, ...]
    """One per quality, in the order of the qualities asked for (one, with a PSNR target)."""
    source_ms: float = math.nan
    """Time to decode the source file to RGB (what reading today's image costs)."""


def code_image(
    picked: PickedImage,
    codec: ImageCodec,
    qualities: Sequence[float],
    *,
    max_pixels: int,
    target_psnr: float | None = None,
) -> ImageResult:
    """Our codec at every quality of ``qualities``, or once at the lowest quality reaching ``target_psnr``."""
    source_bytes = len(picked.data)
    done = replace(picked, data=b"")
    # with a target, one code per image at the quality codec.target picks (NaN until it does)
    levels = qualities if target_psnr is None else (math.nan,)
    started = time.perf_counter()
    try:
        prepared = prepare_image(picked.data, max_pixels)
    except NotCoded as failure:
        rejected = tuple(CodedImage(q, status_of(failure), source_bytes, source_bytes, error=failure.error)
                         for q in levels)
        return ImageResult(done, rejected)
    source_ms = (time.perf_counter() - started) * 1000
    target = RateTarget("psnr", target_psnr) if target_psnr is not None else None
    coded = []
    for quality in levels:
        settings = EncodeSettings(quality, max_pixels, device=str(codec.device), target=target)
        outcome = code_one(prepared, codec, settings)
        if isinstance(outcome, NotCoded):
            coded.append(CodedImage(quality, status_of(outcome), source_bytes, source_bytes, error=outcome.error))
            continue
        coded.append(CodedImage(
            outcome.quality, Status.OK, source_bytes, len(outcome.s2c), outcome.width, outcome.height,
            outcome.psnr, outcome.ms_ssim, outcome.encode_ms, outcome.decode_ms,
            target_missed=target is not None and outcome.note is not None,
        ))
    return ImageResult(done, tuple(coded), source_ms)


def code_images(
    images: Iterable[PickedImage],
    codec: ImageCodec,
    qualities: Sequence[float],
    *,
    max_pixels: int,
    target_psnr: float | None = None,
    workers: int = 1,
) -> Iterator[ImageResult]:
    """``code_image`` for each image, results in input order.

    With ``workers > 1`` (CPU only), images are coded in that many spawned processes that load the
    same checkpoint; a few images per worker are in flight, so reading the next shard overlaps coding.
    """
    if workers <= 1 or codec.device.type != "cpu":
        for picked in images:
            yield code_image(picked, codec, qualities, max_pixels=max_pixels, target_psnr=target_psnr)
        return
    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    setup = (str(codec.weights.path), codec.model_name)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=setup) as pool:
        pending: deque[Future] = deque()
        for picked in images:
            pending.append(pool.submit(_code_in_worker, picked, tuple(qualities), max_pixels, target_psnr))
            while len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


_worker: ImageCodec | None = None


def _start_worker(weights: str, model_name: str) -> None:
    global _worker
    torch.set_num_threads(1)
    _worker = ImageCodec.load(model_name, weights_file=Path(weights), device="cpu")


def _code_in_worker(picked: PickedImage, qualities: tuple[float, ...], max_pixels: int, target_psnr: float | None
                    ) -> ImageResult:
    assert _worker is not None, "worker process not initialised"
    return code_image(picked, _worker, qualities, max_pixels=max_pixels, target_psnr=target_psnr)

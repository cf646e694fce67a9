"""Image bytes -> coded images and their measurements, or typed refusals; batches of one padded size.

The one way an image is coded for a record: ``s2c compress`` (a manifest row per image) and
``s2c analyze`` (a sampled projection of what compress would write) both come here. Every image
is encoded, decoded again (decode-verify) and measured; a failure becomes a typed ``NotCoded``
(the manifest status each records is ``archive.outcomes``' business, not the codec's):

* ``ImageUnreadable``: not an image the imaging module accepts;
* ``ImageTooLarge``: above ``max_pixels`` (or Pillow's decompression-bomb limit);
* ``EncodeFailed``: the codec raised while encoding;
* ``VerifyFailed``: the bitstream did not decode again, or decoded to the wrong size.

With ``batch_size`` > 1 (the default on a GPU) images of equal padded size share one g_a and one
g_s pass; a batch that fails as a whole is coded again image by image, so that one bad image or a
device out of memory never marks its neighbours.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from s2c_pipeline.bitstream import BitstreamError
from s2c_pipeline.codec.batching import DEFAULT_BATCH_PIXELS, plan_batches
from s2c_pipeline.codec.image_codec import DecodedImage, EncodeTiming, ImageCodec, padded_size
from s2c_pipeline.codec.refine import RefineSettings
from s2c_pipeline.codec.target import RateTarget
from s2c_pipeline.imaging import ImageRejected, PreparedImage, load_image, metrics

log = logging.getLogger(__name__)


class ImageBytes(Protocol):
    """An image file's bytes as a reader gives them (``shards.Member`` is one)."""

    data: bytes
    omitted: str | None
    """Why ``data`` is empty although the file is not (a reader's size limit), else ``None``."""


@dataclass(frozen=True)
class EncodeSettings:
    quality: float
    max_pixels: int
    device: str
    """Recorded in each row (e.g. ``cpu`` or ``cuda:NVIDIA H100``)."""
    target: RateTarget | None = None
    """When set, each image gets its own quality (recorded per row) instead of ``quality``."""
    batch_size: int = 1
    """Images of one padded size coded in one g_a / g_s pass (a GPU's gain; 1 on CPU)."""
    batch_pixels: int = DEFAULT_BATCH_PIXELS
    """Padded pixels per pass at most (device memory)."""
    refine: RefineSettings | None = None
    """Encoder-side latent refinement (``codec.refine``): a lower rate-distortion cost for encode time."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")


@dataclass(frozen=True)
class Coded:
    s2c: bytes
    decoded: DecodedImage
    width: int
    height: int
    mode: str
    psnr: float
    ms_ssim: float
    encode_ms: float
    decode_ms: float
    """In a batch, each image is charged an equal share of the pass."""
    quality: float
    note: str | None = None


class NotCoded(Exception):
    """An image that was not coded; the message says why (it goes into the manifest's ``error``)."""

    @property
    def error(self) -> str:
        return str(self)


class ImageUnreadable(NotCoded):
    """Not an image the imaging module accepts (unknown format, damaged, unsupported mode)."""


class ImageTooLarge(NotCoded):
    """More pixels than ``max_pixels`` or Pillow's decompression-bomb limit, or not read at all."""


class EncodeFailed(NotCoded):
    """The codec raised while encoding (out of memory, a shape it cannot take)."""


class VerifyFailed(NotCoded):
    """The bitstream did not decode again, or decoded to another size (decode-verify)."""


def code_images(images: Sequence[ImageBytes], codec: ImageCodec, settings: EncodeSettings) -> list[Coded | NotCoded]:
    """One outcome per image member, in order. Per-image targets are searched one image at a time."""
    outcomes: list[Coded | NotCoded | None] = [None] * len(images)
    prepared: dict[int, PreparedImage] = {}
    for i, image in enumerate(images):
        try:
            prepared[i] = prepare_image(image.data, settings.max_pixels, omitted=image.omitted)
        except NotCoded as failure:
            outcomes[i] = failure
    order = list(prepared)
    if settings.batch_size > 1 and settings.target is None:
        sizes = [padded_size(prepared[i]) for i in order]
        batches = [[order[j] for j in b] for b in plan_batches(sizes, settings.batch_size, settings.batch_pixels)]
    else:
        batches = [[i] for i in order]
    for batch in batches:
        for i, outcome in zip(batch, _code_batch([prepared[i] for i in batch], codec, settings), strict=True):
            outcomes[i] = outcome
    return outcomes  # type: ignore[return-value]  # every slot is filled above


def prepare_image(data: bytes, max_pixels: int, *, omitted: str | None = None) -> PreparedImage:
    """``load_image``, with a rejection raised as ``ImageTooLarge`` or ``ImageUnreadable``."""
    if omitted:
        raise ImageTooLarge(f"image member not read by the shard reader: {omitted}")
    try:
        return load_image(data, max_pixels=max_pixels)
    except ImageRejected as exc:
        kind = ImageTooLarge if _too_large(data, max_pixels) else ImageUnreadable
        raise kind(str(exc)) from None


def _code_batch(images: list[PreparedImage], codec: ImageCodec, settings: EncodeSettings) -> list[Coded | NotCoded]:
    if len(images) == 1:
        return [code_one(images[0], codec, settings)]
    try:
        results = codec.encode_timed_batch(images, settings.quality, settings.refine)
    except (BitstreamError, RuntimeError, ValueError, MemoryError) as exc:
        log.info("a batch of %d images failed (%s); coding them one by one", len(images), str(exc).splitlines()[0])
        return [code_one(image, codec, settings) for image in images]
    return [
        _measured(image, data, decoded, timing, settings.quality, None)
        for image, (data, decoded, timing) in zip(images, results, strict=True)
    ]


def code_one(prepared: PreparedImage, codec: ImageCodec, settings: EncodeSettings) -> Coded | NotCoded:
    """Encode, decode again and measure one image at ``settings.quality`` (or its target)."""
    quality, note = settings.quality, None
    try:
        if settings.target is None:
            data, decoded, timing = codec.encode_timed(prepared, settings.quality, settings.refine)
        else:
            result = settings.target.encode(codec, prepared, settings.refine)
            data, decoded, timing, quality = result.data, result.decoded, result.timing, result.quality
            if not result.reached:
                note = f"target {settings.target.kind} {settings.target.value:g} not reached; used quality {quality:g}"
    except BitstreamError as exc:
        return VerifyFailed(f"decode-verify failed: {exc}")
    except (RuntimeError, ValueError, MemoryError) as exc:
        # torch reports out-of-memory and shape problems as RuntimeError; nothing else is expected.
        return EncodeFailed(f"{type(exc).__name__}: {exc}".splitlines()[0])
    return _measured(prepared, data, decoded, timing, quality, note)


def _measured(
    prepared: PreparedImage, data: bytes, decoded: DecodedImage, timing: EncodeTiming, quality: float, note: str | None
) -> Coded | NotCoded:
    if decoded.rgb.shape != prepared.rgb.shape:
        return VerifyFailed(f"decoded to {decoded.rgb.shape}, expected {prepared.rgb.shape}")
    return Coded(
        s2c=data,
        decoded=decoded,
        width=prepared.width,
        height=prepared.height,
        mode=prepared.source_mode,
        psnr=metrics.psnr(prepared.rgb, decoded.rgb),
        ms_ssim=metrics.ms_ssim(prepared.rgb, decoded.rgb),
        encode_ms=timing.encode_ms,
        decode_ms=timing.decode_ms,
        quality=quality,
        note=note,
    )


def _too_large(data: bytes, max_pixels: int) -> bool:
    """Whether a rejection was for size: the header's declared size, or Pillow's bomb guard."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
    except Image.DecompressionBombError:
        return True
    except (OSError, ValueError, SyntaxError, EOFError):
        return False
    return width * height > max_pixels or width * height > Image.MAX_IMAGE_PIXELS

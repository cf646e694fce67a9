"""Image in, ``.s2c`` bytes out, and back: the model, the container and the image rules together.

This is the one object the CLI, the pipeline actors and the evaluation share. It owns padding
(replicate to a multiple of 64, crop after decoding), quality rounding (to the container's 1/256
step) and the check that a bitstream names weights we actually hold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from s2c_pipeline.bitstream import BitstreamError, S2CFile, S2CHeader, decode_container, encode_container
from s2c_pipeline.codec.model import FLOAT64_PATH, INTEGER_PATH, STRIDE, LatentCode, S2CFormer
from s2c_pipeline.codec.refine import RefineSettings
from s2c_pipeline.codec.weights import (
    Checkpoint,
    WeightsEntry,
    WeightsNotFound,
    find_weights,
    load_checkpoint,
)
from s2c_pipeline.imaging import DEFAULT_MAX_PIXELS, PreparedImage, check_restorable, restore_image

log = logging.getLogger(__name__)

QUALITY_STEP = 1 / 256
PATH_BY_VERSION = {1: FLOAT64_PATH, 2: INTEGER_PATH}
"""Container format version -> the coding path its latent strings were written with."""
VERSION_BY_PATH = {path: version for version, path in PATH_BY_VERSION.items()}


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # (H, W, 3) uint8, what the codec reconstructed
    image: Image.Image  # restored to the source's mode where recorded (grey, alpha), metadata attached
    header: S2CHeader
    latents_sha256: str | None = None
    """``model.latents_sha256`` of the decoded latents: identical on every device for format 2."""


@dataclass(frozen=True)
class EncodeTiming:
    encode_ms: float
    decode_ms: float


def round_quality(quality: float) -> float:
    return round(quality / QUALITY_STEP) * QUALITY_STEP


def default_quality(num_qualities: int) -> float:
    """The quality used when none is given: the middle of the model's range."""
    return round_quality((num_qualities + 1) / 2)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ImageCodec:
    """A loaded model plus the identity of its weights. Not thread-safe; one per worker."""

    def __init__(self, model: S2CFormer, weights: WeightsEntry, device: torch.device | str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.weights = weights
        self.device = torch.device(device)

    @classmethod
    def load(
        cls,
        model_name: str | None = None,
        *,
        weights_file: Path | None = None,
        weights_id: str | None = None,
        device: torch.device | str | None = None,
    ) -> ImageCodec:
        """The bundled checkpoint of ``model_name`` (default model if None), or ``weights_file``
        (read, hashed and loaded once)."""
        device = torch.device(device) if device is not None else default_device()
        if weights_file is not None:
            model, entry = Checkpoint.read(Path(weights_file)).load(device)
            if model_name is not None and entry.model_name != model_name:
                raise WeightsNotFound(f"{weights_file} holds {entry.model_name}, not {model_name}")
            return cls(model, entry, device)
        entry = find_weights(model_name, weights_id)
        model, _ = load_checkpoint(entry.path, device)
        return cls(model, entry, device)

    @property
    def model_name(self) -> str:
        return self.model.config.name

    @property
    def num_qualities(self) -> int:
        return self.model.config.num_qualities

    def encode(
        self,
        image: PreparedImage,
        quality: float,
        refine: RefineSettings | None = None,
        *,
        format_version: int | None = None,
    ) -> bytes:
        return self.encode_batch([image], quality, refine, format_version=format_version)[0]

    def encode_batch(
        self,
        images: Sequence[PreparedImage],
        quality: float,
        refine: RefineSettings | None = None,
        *,
        format_version: int | None = None,
    ) -> list[bytes]:
        """Images of one padded size (``padded_size``) through one g_a pass; ValueError otherwise.
        ``refine`` trades encode time for a lower rate-distortion cost (``codec.refine``); decoding
        is unchanged. ``format_version`` 2 (the default where the model has an integer path) codes
        with the exact fixed-point probability path, 1 with the float64 one."""
        if format_version is None:
            format_version = VERSION_BY_PATH[self.model.default_path()]
        if format_version not in PATH_BY_VERSION:
            raise ValueError(f"format version {format_version} is not one of {sorted(PATH_BY_VERSION)}")
        quality = round_quality(quality)
        self.model.check_quality(quality)
        sizes = [(im.height, im.width) for im in images]
        _one_padded_size(sizes)
        x = torch.cat([_pad(_to_tensor(im.rgb, self.device)) for im in images])
        codes = self.model.compress_latents_batch(
            x, [quality] * len(images), refine=refine, image_sizes=sizes, path=PATH_BY_VERSION[format_version]
        )
        return [self._container(image, quality, code) for image, code in zip(images, codes, strict=True)]

    def _container(self, image: PreparedImage, quality: float, code: LatentCode) -> bytes:
        header = S2CHeader(
            model_name=self.model_name,
            weights_id=self.weights.weights_id,
            quality=quality,
            width=image.width,
            height=image.height,
            source_mode=image.source_mode,
            colour=int(image.colour),
            format_version=VERSION_BY_PATH[code.path],
        )
        return encode_container(
            S2CFile(header, code.strings, icc_profile=image.icc_profile, exif=image.exif, alpha=image.alpha)
        )

    def decode(
        self,
        data: bytes,
        *,
        source: str = "<bytes>",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        reference: bool = False,
    ) -> DecodedImage:
        """Raises BitstreamError (one line, naming ``source``) for anything we cannot honour.
        ``reference`` runs g_s in float64 whatever the format: the pixels a format-2 decode must
        stay within one level of (``docs/codec.md``, determinism promise)."""
        return self.decode_batch([data], sources=[source], max_pixels=max_pixels, reference=reference)[0]

    def decode_batch(
        self,
        datas: Sequence[bytes],
        *,
        sources: Sequence[str] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        reference: bool = False,
    ) -> list[DecodedImage]:
        """Bitstreams of one padded size through one g_s pass. A BitstreamError names the first
        stream that cannot be honoured; decode those one by one to learn which ones are good."""
        sources = list(sources) if sources is not None else [f"<bytes #{i}>" for i in range(len(datas))]
        parsed = [
            self._check_stream(data, source, max_pixels) for data, source in zip(datas, sources, strict=True)
        ]
        headers = [p.header for p in parsed]
        size = _one_padded_size([(h.height, h.width) for h in headers])
        codes = [
            LatentCode(p.latent_strings, *size, path=PATH_BY_VERSION[h.format_version])
            for p, h in zip(parsed, headers, strict=True)
        ]
        digests: list[str] = []
        try:
            x_hat = self.model.decompress_latents_batch(
                codes,
                [h.quality for h in headers],
                digests=digests,
                synthesis_dtype=torch.float64 if reference else None,
            )
        except (ValueError, RuntimeError) as exc:  # rANS raises on streams that do not fit the model
            where = (
                sources[0] if len(sources) == 1 else f"{sources[0]} (or another of a batch of {len(sources)})"
            )
            raise BitstreamError(where, f"latent data does not decode with this model ({exc})") from exc
        decoded = []
        for i, (p, header, source, digest) in enumerate(zip(parsed, headers, sources, digests, strict=True)):
            rgb = _to_uint8(x_hat[i : i + 1, :, : header.height, : header.width])
            try:
                image = restore_image(
                    rgb, colour=header.colour, alpha=p.alpha, icc_profile=p.icc_profile, exif=p.exif
                )
            except ValueError as exc:  # _check_stream refuses these first; never a bare traceback
                raise BitstreamError(source, str(exc)) from exc
            decoded.append(DecodedImage(rgb, image, header, digest))
        return decoded

    def _check_stream(self, data: bytes, source: str, max_pixels: int) -> S2CFile:
        """Every check a header allows, before any decoding work: a stream that would fail late
        (after seconds of work and gigabytes of memory) fails here, in microseconds."""
        parsed = decode_container(data, source=source)
        header = parsed.header
        if header.model_name != self.model_name or header.weights_id != self.weights.weights_id:
            raise BitstreamError(
                source,
                f"coded with model {header.model_name} weights {header.weights_id}, but the loaded codec is "
                f"{self.model_name} weights {self.weights.weights_id}; load the codec the stream names with "
                "s2c_pipeline.codec.image_codec.codec_for_bitstream (as `s2c decode` does), or give its "
                "checkpoint file with --weights",
            )
        if header.width * header.height > max_pixels:
            raise BitstreamError(
                source, f"declares {header.width}x{header.height} pixels, above the {max_pixels} pixel limit"
            )
        if not 1.0 <= header.quality <= self.num_qualities:
            raise BitstreamError(source, f"quality {header.quality:g} is outside 1..{self.num_qualities}")
        try:
            self.model.check_string_count(len(parsed.latent_strings))
            check_restorable(header.colour, parsed.alpha, header.height, header.width)
        except ValueError as exc:
            raise BitstreamError(source, str(exc)) from None
        return parsed

    def encode_timed(
        self, image: PreparedImage, quality: float, refine: RefineSettings | None = None
    ) -> tuple[bytes, DecodedImage, EncodeTiming]:
        """Encode, then decode again (the commit rule: no bitstream is kept without a decode)."""
        return self.encode_timed_batch([image], quality, refine)[0]

    def encode_timed_batch(
        self, images: Sequence[PreparedImage], quality: float, refine: RefineSettings | None = None
    ) -> list[tuple[bytes, DecodedImage, EncodeTiming]]:
        """``encode_timed`` for images of one padded size; each image is charged an equal share of
        the batch's encode and decode time."""
        t0 = time.perf_counter()
        datas = self.encode_batch(images, quality, refine)
        t1 = time.perf_counter()
        limit = max(DEFAULT_MAX_PIXELS, *(im.width * im.height for im in images))
        decoded = self.decode_batch(datas, max_pixels=limit)
        t2 = time.perf_counter()
        share = EncodeTiming((t1 - t0) * 1000 / len(images), (t2 - t1) * 1000 / len(images))
        return [(data, dec, share) for data, dec in zip(datas, decoded, strict=True)]


def codec_for_bitstream(
    data: bytes, *, source: str, extra_weights: Sequence[Path | Checkpoint] = (), device=None
) -> ImageCodec:
    """Load the codec a bitstream names (model name + weights id), or raise BitstreamError.

    ``extra_weights`` (files, or checkpoints already in memory) are searched before the bundled
    ones; only the one whose hash the bitstream names is loaded.
    """
    header = decode_container(data, source=source).header
    device = torch.device(device) if device is not None else default_device()
    for weights in extra_weights:
        checkpoint = weights if isinstance(weights, Checkpoint) else Checkpoint.read(Path(weights))
        if checkpoint.weights_id == header.weights_id:
            model, entry = checkpoint.load(device)
            if entry.model_name == header.model_name:
                return ImageCodec(model, entry, device)
    try:
        entry = find_weights(header.model_name, header.weights_id)
    except WeightsNotFound as exc:
        raise BitstreamError(source, f"unknown model: {exc}") from None
    model, _ = load_checkpoint(entry.path, device)
    return ImageCodec(model, entry, device)


def _padded_size(height: int, width: int) -> tuple[int, int]:
    return -(-height // STRIDE) * STRIDE, -(-width // STRIDE) * STRIDE


def padded_size(image: PreparedImage) -> tuple[int, int]:
    """(height, width) the codec pads ``image`` to; images of equal padded size can share a batch."""
    return _padded_size(image.height, image.width)


def _one_padded_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The one padded size of (height, width) pairs; ValueError for none or several."""
    padded = {_padded_size(h, w) for h, w in sizes}
    if len(padded) != 1:
        raise ValueError(f"a batch needs images of one padded size, got {sorted(padded) or 'no images'}")
    return padded.pop()


def _to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.uint8).permute(2, 0, 1)[None].to(device, torch.float32) / 255.0


def _pad(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[2:]
    ph, pw = _padded_size(h, w)
    if (ph, pw) == (h, w):
        return x
    # replicate needs pad < size for reflect; replicate works for any size
    return F.pad(x, (0, pw - w, 0, ph - h), mode="replicate")


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    # A crafted stream's extreme symbols can overflow float32 synthesis; NaN has no defined uint8 value.
    x = torch.nan_to_num(x[0].permute(1, 2, 0), nan=0.0, posinf=1.0, neginf=0.0)
    return (x.clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()

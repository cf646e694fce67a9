"""The library face: ``encode`` an image to ``.s2c`` bytes, ``decode`` them back, ``Codec`` to reuse a model.

``import s2c_pipeline`` must stay cheap (``s2c --help`` runs it), so this module imports nothing
but the standard library: torch, compressai, numpy and Pillow load on the first ``encode``,
``decode`` or ``Codec()``. docs/library.md has the examples.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers only: importing these is what this module must not do
    from typing import TypeAlias

    import numpy as np
    import torch
    from PIL import Image

    from s2c_pipeline.codec.image_codec import ImageCodec

    ImageInput: TypeAlias = Image.Image | np.ndarray | str | os.PathLike | bytes
    StreamInput: TypeAlias = bytes | bytearray | memoryview | str | os.PathLike


class Codec:
    """One loaded model, reused for every call: load once, then code many images.

    Decoding follows the stream, not the loaded model: a stream coded with other weights (its
    header names model and weights id) loads those weights on first sight, and they are kept for
    the next such stream, so data coded over several releases decodes with one Codec. Not
    thread-safe: make one per thread or worker process.
    """

    def __init__(
        self,
        model: str | None = None,
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        """Load ``model``'s bundled weights (None: the default model), or the checkpoint file
        ``weights``, onto ``device`` (None: CUDA when available, else the CPU).

        Raises:
            WeightsNotFound: no such model among the bundled weights, or ``weights`` holds
                another model than ``model``.
        """
        from s2c_pipeline.codec.image_codec import ImageCodec

        self._weights_file = Path(weights) if weights is not None else None
        self._codec = ImageCodec.load(model, weights_file=self._weights_file, device=device)
        self._by_weights: dict[tuple[str, str], ImageCodec] = {
            (self.model_name, self.weights_id): self._codec
        }

    def __repr__(self) -> str:
        return (
            f"Codec(model={self.model_name!r}, weights_id={self.weights_id!r}, device={str(self.device)!r})"
        )

    @property
    def model_name(self) -> str:
        return self._codec.model_name

    @property
    def weights_id(self) -> str:
        """The first 16 hex digits of the checkpoint's sha256, as every stream it codes records."""
        return self._codec.weights.weights_id

    @property
    def device(self) -> torch.device:
        return self._codec.device

    @property
    def num_qualities(self) -> int:
        """Qualities run from 1 (smallest) to this (best); fractions in between are allowed."""
        return self._codec.num_qualities

    @property
    def default_quality(self) -> float:
        """The quality ``encode`` uses when given none: the middle of the model's range."""
        from s2c_pipeline.codec.image_codec import default_quality

        return default_quality(self.num_qualities)

    def encode(
        self, image: ImageInput, quality: float | None = None, *, max_pixels: int | None = None
    ) -> bytes:
        """The ``.s2c`` stream of one image.

        Args:
            image: a PIL image (any mode: grey, alpha, palette, 16-bit... as docs/imaging.md
                describes); a numpy uint8 array, (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA;
                the path of an image file; or an image file's bytes.
            quality: 1 (smallest) to ``num_qualities`` (best), fractions allowed, rounded to
                1/256; None for ``default_quality``.
            max_pixels: larger images are refused, not tiled; None for the package default
                (``s2c_pipeline.imaging.DEFAULT_MAX_PIXELS``, 25 MP).

        Raises:
            ImageRejected: the input is not an image we code (unreadable, too large...).
            ValueError: a quality outside the model's range, an array of another dtype or shape.
            TypeError: an input of another type.
        """
        from s2c_pipeline.imaging import DEFAULT_MAX_PIXELS, load_image

        prepared = load_image(
            _image_source(image), max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
        )
        return self._codec.encode(prepared, self.default_quality if quality is None else quality)

    def decode(self, data: StreamInput, *, max_pixels: int | None = None) -> Image.Image:
        """The image a ``.s2c`` stream holds, in its source's mode ("L", "LA", "RGB" or "RGBA"),
        with the source's ICC profile and EXIF in ``image.info``.

        Raises:
            BitstreamError: a damaged stream, one naming weights we do not hold, or one declaring
                more than ``max_pixels`` (None: the package default); the message names the file.
        """
        from s2c_pipeline.imaging import DEFAULT_MAX_PIXELS

        stream, source = _stream_bytes(data)
        limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
        return self._codec_for(stream, source).decode(stream, source=source, max_pixels=limit).image

    def _codec_for(self, stream: bytes, source: str) -> ImageCodec:
        """The loaded codec of the weights ``stream`` names, loading them on first sight."""
        from s2c_pipeline.bitstream import decode_container
        from s2c_pipeline.codec.image_codec import codec_for_bitstream

        header = decode_container(stream, source=source).header
        key = (header.model_name, header.weights_id)
        if key not in self._by_weights:
            extra = [self._weights_file] if self._weights_file is not None else []
            self._by_weights[key] = codec_for_bitstream(
                stream, source=source, extra_weights=extra, device=self.device
            )
        return self._by_weights[key]


def _image_source(image: ImageInput) -> Image.Image | str | os.PathLike | bytes:
    """What ``load_image`` takes: an array becomes a PIL image, anything else it reads passes."""
    import numpy as np
    from PIL import Image

    if isinstance(image, np.ndarray):
        return _array_image(image)
    if isinstance(image, Image.Image | str | os.PathLike | bytes | bytearray | memoryview):
        return image
    raise TypeError(
        "encode takes a PIL image, a numpy uint8 array, a path or an image file's bytes, not "
        f"{type(image).__name__}; for a (C, H, W) torch tensor pass t.permute(1, 2, 0).cpu().numpy()"
    )


def _array_image(array: np.ndarray) -> Image.Image:
    import numpy as np
    from PIL import Image

    if array.dtype != np.uint8:
        raise ValueError(
            f"encode takes uint8 arrays (0..255), got {array.dtype}; convert floats in 0..1 with "
            "(x * 255).round().astype(np.uint8)"
        )
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(
            f"encode takes an (H, W), (H, W, 3) or (H, W, 4) array, got shape {array.shape}; "
            "a channels-first (C, H, W) array needs .transpose(1, 2, 0)"
        )
    return Image.fromarray(np.ascontiguousarray(array))


def _stream_bytes(data: StreamInput) -> tuple[bytes, str]:
    """(stream bytes, the name error messages give it)."""
    if isinstance(data, str | os.PathLike):
        return Path(data).read_bytes(), os.fspath(data)
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data), "<bytes>"
    raise TypeError(f"decode takes a .s2c stream's bytes or a .s2c file's path, not {type(data).__name__}")


_shared: Codec | None = None
_shared_lock = threading.Lock()


def _forget_shared_codec() -> None:
    """In a forked child: a model loaded by the parent may sit on a CUDA device the child cannot
    use, and the lock may have been held by a parent thread. The child loads its own."""
    global _shared, _shared_lock
    _shared, _shared_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_shared_codec)


def _shared_codec() -> Codec:
    global _shared
    if _shared is None:
        _shared = Codec()
    return _shared


def encode(image: ImageInput, quality: float | None = None, *, max_pixels: int | None = None) -> bytes:
    """``Codec.encode`` with one Codec of the default model, loaded on the first call of ``encode``
    or ``decode`` and shared by both. Calls from several threads take turns; for parallel work,
    make one ``Codec`` per thread or process."""
    with _shared_lock:
        return _shared_codec().encode(image, quality, max_pixels=max_pixels)


def decode(data: StreamInput, *, max_pixels: int | None = None) -> Image.Image:
    """``Codec.decode`` with the Codec that ``encode`` shares: any stream whose weights we hold."""
    with _shared_lock:
        return _shared_codec().decode(data, max_pixels=max_pixels)

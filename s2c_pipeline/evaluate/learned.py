"""Our codec as an evaluation contender: an ``ImageCodec`` at a list of quality levels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from s2c_pipeline.codec.image_codec import ImageCodec, round_quality
from s2c_pipeline.codec.refine import RefineSettings
from s2c_pipeline.imaging import ColourHandling, PreparedImage


class LearnedContender:
    """Encodes to the complete ``.s2c`` file (container header included) and decodes it again.

    The image is given to the codec as plain RGB without ICC, EXIF or alpha, exactly the pixels the
    classical codecs get, so that no codec pays for metadata the others do not carry.
    """

    def __init__(
        self,
        codec: ImageCodec,
        name: str,
        qualities: Sequence[float] | None = None,
        refine: RefineSettings | None = None,
    ) -> None:
        levels = qualities if qualities is not None else range(1, codec.num_qualities + 1)
        settings = sorted({round_quality(float(q)) for q in levels})
        bad = [q for q in settings if not 1 <= q <= codec.num_qualities]
        if bad:
            raise ValueError(
                f"qualities {', '.join(f'{q:g}' for q in bad)} are outside 1..{codec.num_qualities} "
                f"for {codec.model_name}"
            )
        self.codec = codec
        self.name = name
        self.settings = tuple(settings)
        self.refine = refine

    @property
    def description(self) -> str:
        levels = ", ".join(f"{q:g}" for q in self.settings)
        effort = f"; latents refined {self.refine.steps} steps (lr {self.refine.lr:g})" if self.refine else ""
        return f"{self.codec.model_name}, weights {self.codec.weights.weights_id}; quality {levels}{effort}"

    def encode(self, rgb: np.ndarray, setting: float) -> bytes:
        image = PreparedImage(rgb, "RGB", ColourHandling.RGB, alpha=None, icc_profile=None, exif=None)
        return self.codec.encode(image, setting, self.refine)

    def decode(self, data: bytes) -> np.ndarray:
        # Our own bytes, just written from an image that was loaded: the size limit, which guards
        # against hostile files, has already been applied at load time.
        return self.codec.decode(data, source="<eval>", max_pixels=_NO_LIMIT).rgb


_NO_LIMIT = 1 << 62

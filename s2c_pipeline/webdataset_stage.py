"""Output shards in a PyTorch DataLoader: a webdataset decode handler for ``.s2c`` members.

Output shards are WebDataset tars: each sample coded ok has ``KEY.s2c`` in place of its image, and
its other members (and the original image of a sample that was not coded) carried verbatim. So::

    import webdataset as wds
    from torch.utils.data import DataLoader
    from s2c_pipeline.webdataset_stage import S2CDecoder

    dataset = wds.WebDataset(urls, shardshuffle=False).decode(S2CDecoder("torch", mode="RGB"))
    loader = DataLoader(dataset, num_workers=8, batch_size=None)

gives ``sample["s2c"]`` as an image; handlers listed after it (``"pil"``...) decode the members it
leaves alone. Each DataLoader worker process loads its own model on its first ``.s2c`` member: a
model is not shared between processes, and a forked worker cannot use a CUDA device its parent
initialised, hence ``device="cpu"`` by default. docs/library.md has the whole recipe.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from s2c_pipeline.api import Codec

from s2c_pipeline.archive.members import S2C_EXTENSION

OUTPUTS = ("pil", "numpy", "torch")


class S2CDecoder:
    """A webdataset handler, ``handler(extension, data)``: the decoded image for a ``.s2c``
    member, None (not mine) for any other, as ``WebDataset.decode`` expects."""

    def __init__(
        self,
        output: str = "pil",
        *,
        mode: str | None = None,
        weights: str | os.PathLike | None = None,
        device: str = "cpu",
        max_pixels: int | None = None,
    ) -> None:
        """
        Args:
            output: "pil" (a PIL image), "numpy" (uint8, (H, W) or (H, W, C)) or "torch" (a uint8
                (C, H, W) tensor).
            mode: a PIL mode every image is converted to, e.g. "RGB" so that grey and RGBA
                images batch with the rest; None keeps each image's own mode (``Codec.decode``).
            weights: a checkpoint file for streams coded with weights outside the package.
            device: where each worker decodes.
            max_pixels: streams declaring more pixels are refused (``Codec.decode``).
        """
        if output not in OUTPUTS:
            raise ValueError(f"output must be 'pil', 'numpy' or 'torch', got {output!r}")
        self.output = output
        self.mode = mode
        self.weights = weights
        self.device = device
        self.max_pixels = max_pixels
        self._codec: Codec | None = None
        self._codec_pid: int | None = None

    def __call__(self, extension: str, data: bytes) -> Any:
        if extension.lower().rsplit(".", 1)[-1] != S2C_EXTENSION:
            return None
        image = self._process_codec().decode(data, max_pixels=self.max_pixels)
        if self.mode is not None and image.mode != self.mode:
            image = image.convert(self.mode)
        return _as_output(image, self.output)

    def _process_codec(self) -> Codec:
        """This process's codec: a forked worker does not reuse the one its parent loaded."""
        if self._codec is None or self._codec_pid != os.getpid():
            from s2c_pipeline.api import Codec

            self._codec = Codec(weights=self.weights, device=self.device)
            self._codec_pid = os.getpid()
        return self._codec

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the model: a spawned worker loads its own."""
        return {**self.__dict__, "_codec": None, "_codec_pid": None}


def _as_output(image: Image.Image, output: str) -> Any:
    if output == "pil":
        return image
    import numpy as np

    array = np.array(image)  # a copy: writable, owned by the caller
    if output == "numpy":
        return array
    import torch

    tensor = torch.from_numpy(array)
    return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()

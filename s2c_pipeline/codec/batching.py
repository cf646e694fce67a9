"""Which images may share one pass of g_a / g_s: those with the same padded size.

A batch only pays off on a GPU, where one large convolution keeps the device busy while many
small ones leave it idle; entropy coding stays per image either way. Batches keep the images'
order within each padded size and are capped by count and by padded pixels (device memory).
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_GPU_BATCH = 8
"""Images per pass when the codec runs on a GPU and the user chose no ``--batch-size``."""

DEFAULT_BATCH_PIXELS = 1 << 24
"""Padded pixels per pass (16.8 M: eight 1536x1344 images): a GPU pass of this size holds a few
GB of g_s activations (float32 for format 2, float64 for format-1 streams)."""


def default_batch_size(device_type: str) -> int:
    """Batch on a GPU; one image at a time on a CPU, whose banded transforms run per image anyway."""
    return DEFAULT_GPU_BATCH if device_type == "cuda" else 1


def plan_batches(
    padded_sizes: Sequence[tuple[int, int]], max_images: int, max_pixels: int = DEFAULT_BATCH_PIXELS
) -> list[list[int]]:
    """Group the indexes of ``padded_sizes`` into batches of one padded size each.

    An image above ``max_pixels`` on its own still gets a batch of one (the pixel limit of the
    imaging module, not this cap, decides whether it is coded at all).
    """
    if max_images < 1:
        raise ValueError(f"batch size must be at least 1, got {max_images}")
    open_batches: dict[tuple[int, int], list[int]] = {}
    batches: list[list[int]] = []
    for index, (height, width) in enumerate(padded_sizes):
        key = (height, width)
        batch = open_batches.get(key)
        if batch is not None and (len(batch) >= max_images or (len(batch) + 1) * height * width > max_pixels):
            batch = None
        if batch is None:
            batch = open_batches[key] = []
            batches.append(batch)
        batch.append(index)
    return batches

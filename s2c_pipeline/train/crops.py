"""Training crops: random (optionally detail-picked) patches of a data pack, made off the GPU's path.

On a GPU a step of s2c-conv-small at 16 crops of 256 px takes tens of milliseconds, about as long
as scoring the 96 candidate crops of ``crop_candidates=6`` on one core. ``loader_threads`` > 0
therefore scores candidates on a thread pool (numpy releases the GIL) and builds the next batches
on a background thread while the GPU trains. The crops are the same either way: every random draw
comes from one generator, in one order.

That thread still capped the H100 at 4.4 steps of 64 crops a second with the GPU about a quarter
busy (docs/weights.md, stage 7). ``DeviceCropSampler`` keeps the decoded pack on the GPU instead
(0.56 GB for the Enlightenment pack) and cuts, scores and flips the crops there; only the random
draws stay on the CPU, in the same order, so it too gives the same crops. On the next lease (stage
8) that doubled the rate, to about 9.5 steps of 64 crops a second.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from s2c_pipeline.train.datapack import DataPack


def detail(crop: np.ndarray) -> float:
    """Mean absolute difference between horizontally and vertically neighbouring pixel values."""
    c = crop.astype(np.int16)
    return float(np.abs(np.diff(c, axis=0)).mean() + np.abs(np.diff(c, axis=1)).mean())


def training_images(pack: DataPack, indices: list[int], patch: int, candidates: int) -> list[np.ndarray]:
    """The decoded pack images that a ``patch`` crop fits in, checking the sampler's options first."""
    if candidates < 1:
        raise ValueError(f"crop_candidates must be at least 1, not {candidates}")
    images = [im for im in (pack.image(i) for i in indices) if min(im.shape[:2]) >= patch]
    if not images:
        raise ValueError(f"no training image is at least {patch}px on its short side")
    return images


def draw_crop(
    rng: np.random.Generator, images: Sequence[np.ndarray | torch.Tensor], patch: int, candidates: int
) -> tuple[list[tuple[int, int, int]], bool, bool]:
    """One crop's random choices, in the generator's fixed order: each candidate's image index and
    top-left corner (images are H x W x 3), then the horizontal and vertical flips. Both samplers
    draw through here, which is what makes their crops the same."""
    positions = []
    for _ in range(candidates):
        i = int(rng.integers(len(images)))
        y = int(rng.integers(images[i].shape[0] - patch + 1))
        x = int(rng.integers(images[i].shape[1] - patch + 1))
        positions.append((i, y, x))
    return positions, rng.random() < 0.5, rng.random() < 0.5


class CropSampler:
    """Random crops with flips from the training part of a data pack (decoded once, kept in RAM).

    With ``candidates`` > 1, each crop is the most detailed of that many uniform draws; with
    ``workers`` > 1, a batch's candidates are scored on that many threads.
    """

    def __init__(
        self, pack: DataPack, indices: list[int], patch: int, seed: int, candidates: int = 1, workers: int = 1
    ) -> None:
        self.images = training_images(pack, indices, patch, candidates)
        self.patch = patch
        self.candidates = candidates
        self.rng = np.random.default_rng(seed)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="crop-detail") if workers > 1 else None

    def _draw(self) -> tuple[list[np.ndarray], bool, bool]:
        positions, flip_x, flip_y = draw_crop(self.rng, self.images, self.patch, self.candidates)
        p = self.patch
        return [self.images[i][y : y + p, x : x + p] for i, y, x in positions], flip_x, flip_y

    def _crops(self, size: int) -> list[np.ndarray]:
        draws = [self._draw() for _ in range(size)]
        if self.candidates == 1:
            scores = [[0.0] for _ in draws]
        else:
            flat = [c for candidates, _, _ in draws for c in candidates]
            scored = list(self.pool.map(detail, flat)) if self.pool else [detail(c) for c in flat]
            scores = [scored[i : i + self.candidates] for i in range(0, len(scored), self.candidates)]
        crops = []
        for (candidates, flip_x, flip_y), row in zip(draws, scores, strict=True):
            crop = candidates[int(np.argmax(row))]  # the first of equally detailed ones
            if flip_x:
                crop = crop[:, ::-1]
            if flip_y:
                crop = crop[::-1]
            crops.append(np.ascontiguousarray(crop))
        return crops

    def crop(self) -> np.ndarray:
        return self._crops(1)[0]

    def batch(self, size: int) -> torch.Tensor:
        return torch.from_numpy(np.stack(self._crops(size))).permute(0, 3, 1, 2).float() / 255.0

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown(wait=False, cancel_futures=True)


class DeviceCropSampler:
    """``CropSampler``'s crops, cut from a copy of the pack on ``device``: the same draws in the same
    order, scored with the same integer sums, so batch for batch the same tensors, made where the
    training runs instead of on a CPU thread that the GPU waits for."""

    def __init__(
        self, pack: DataPack, indices: list[int], patch: int, seed: int, candidates: int, device: torch.device
    ) -> None:
        self.images = [torch.tensor(im, device=device) for im in training_images(pack, indices, patch, candidates)]
        self.patch = patch
        self.candidates = candidates
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> torch.Tensor:
        p, k = self.patch, self.candidates
        cuts, flips = [], []
        for _ in range(size):
            positions, flip_x, flip_y = draw_crop(self.rng, self.images, p, k)
            cuts += [self.images[i][y : y + p, x : x + p] for i, y, x in positions]
            flips.append((flip_x, flip_y))
        candidates = torch.stack(cuts)  # (size*k, p, p, 3) uint8
        if k > 1:
            c = candidates.to(torch.int16)
            # detail(): integer sums are exact, so the float64 means equal numpy's to the last bit
            rows = (c[:, 1:] - c[:, :-1]).abs().sum(dim=(1, 2, 3), dtype=torch.int64).double() / ((p - 1) * p * 3)
            cols = (c[:, :, 1:] - c[:, :, :-1]).abs().sum(dim=(1, 2, 3), dtype=torch.int64).double() / (p * (p - 1) * 3)
            best = (rows + cols).view(size, k).argmax(dim=1)  # the first of equally detailed ones
            candidates = candidates.view(size, k, p, p, 3)[torch.arange(size, device=best.device), best]
        flip_x = torch.tensor([fx for fx, _ in flips], device=candidates.device)
        flip_y = torch.tensor([fy for _, fy in flips], device=candidates.device)
        crops = torch.where(flip_x[:, None, None, None], candidates.flip(2), candidates)
        crops = torch.where(flip_y[:, None, None, None], crops.flip(1), crops)
        return crops.permute(0, 3, 1, 2).float() / 255.0

    def close(self) -> None:
        pass


class Prefetcher:
    """Calls ``make`` on a background thread, keeping up to ``depth`` results ready, in order.

    ``pin`` puts each batch in page-locked memory so that its copy to the GPU can overlap compute.
    An exception in ``make`` is raised again by ``next``.
    """

    def __init__(self, make: Callable[[], torch.Tensor], *, depth: int = 4, pin: bool = False) -> None:
        self._make = make
        self._pin = pin
        self._ready: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crop-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item: object = self._make()
                if self._pin:
                    item = item.pin_memory()  # type: ignore[union-attr]
            except BaseException as exc:  # handed to the consumer, which re-raises it
                item = exc
            while not self._stop.is_set():
                try:
                    self._ready.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return

    def next(self) -> torch.Tensor:
        item = self._ready.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

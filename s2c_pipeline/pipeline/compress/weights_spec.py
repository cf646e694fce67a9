"""Resolving ``--model`` / ``--weights`` / ``--quality`` once on the driver, loading in actors.

The driver reads and hashes the weights once (for run.json and the resume check) without building
the model; each actor then builds the model from exactly those bytes, in memory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from s2c_pipeline.codec.image_codec import ImageCodec, default_device, default_quality, round_quality
from s2c_pipeline.codec.weights import Checkpoint, WeightsEntry, find_weights, load_checkpoint


@dataclass(frozen=True)
class CodecSpec:
    """The weights a run codes with, as bytes: they travel to actors through the object store (no
    shared filesystem needed) and are stored in the output prefix, so the archive carries its
    decoder."""

    model: str
    weights_id: str
    weights_sha256: str
    qualities: int
    checkpoint: bytes = field(repr=False)

    @property
    def file_name(self) -> str:
        return f"{self.model}-{self.weights_id}.pt"

    def load(self, device: str | None, threads: int) -> ImageCodec:
        """The ImageCodec these weights describe; ``threads`` = torch CPU threads.

        The bytes were hashed on the driver and travel unchanged, so they are not hashed again.
        """
        import torch

        torch.set_num_threads(threads)
        target = torch.device(device) if device is not None else default_device()
        model, _ = load_checkpoint(self.checkpoint, target, name=self.file_name)
        entry = WeightsEntry(self.model, Path(self.file_name), self.weights_sha256, self.qualities)
        return ImageCodec(model, entry, target)


def resolve_codec(model: str | None, weights: str | None) -> CodecSpec:
    """The spec for ``--model`` / ``--weights``; raises WeightsNotFound, KeyError or ValueError.

    The file is read once and hashed once; a user's checkpoint is opened once more for its config.
    """
    if weights is None:
        entry = find_weights(model)
        data = Path(entry.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise ValueError(f"{entry.path}: sha256 differs from the weights index; the file was changed")
    else:
        checkpoint = Checkpoint.read(Path(weights))
        entry, data = checkpoint.describe(), checkpoint.data
        if model is not None and entry.model_name != model:
            raise ValueError(f"--weights {weights} holds model {entry.model_name}, not --model {model}")
    return CodecSpec(entry.model_name, entry.weights_id, entry.sha256, entry.qualities, data)


def resolve_quality(quality: float | None, spec: CodecSpec) -> float:
    """``quality`` rounded to the container's step, or the middle level; ValueError when outside."""
    value = round_quality(quality) if quality is not None else default_quality(spec.qualities)
    if not 1 <= value <= spec.qualities:
        raise ValueError(f"--quality must be within 1..{spec.qualities} for {spec.model}, got {quality}")
    return value

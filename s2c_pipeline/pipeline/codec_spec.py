"""Resolving ``--model`` / ``--weights`` / ``--quality`` once on the driver, loading in actors.

The driver hashes the weights (for run.json and the resume check) without building the model;
each actor then loads exactly those weights, refusing any others.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from s2c_pipeline.codec.image_codec import ImageCodec, default_quality, round_quality
from s2c_pipeline.codec.weights import describe_entry, find_weights


@dataclass(frozen=True, repr=False)
class CodecSpec:
    """The weights a run codes with, as bytes: they travel to actors through the object store (no
    shared filesystem needed) and are stored in the output prefix, so the archive carries its
    decoder."""

    model: str
    weights_id: str
    weights_sha256: str
    qualities: int
    checkpoint: bytes

    def __repr__(self) -> str:  # never print a checkpoint's bytes
        return f"CodecSpec({self.model}@{self.weights_id})"

    @property
    def file_name(self) -> str:
        return f"{self.model}-{self.weights_id}.pt"

    def load(self, device: str | None, threads: int) -> ImageCodec:
        """The ImageCodec these weights describe; ``threads`` = torch CPU threads."""
        import torch

        torch.set_num_threads(threads)
        if hashlib.sha256(self.checkpoint).hexdigest() != self.weights_sha256:
            raise ValueError(f"checkpoint {self.file_name}: sha256 differs from the one the driver hashed")
        path = write_weights_files([(self.file_name, self.checkpoint)])[0]
        try:
            return ImageCodec.load(self.model, weights_file=path, weights_id=self.weights_id, device=device)
        finally:  # the weights now live in the model; leave no folder behind on long-lived nodes
            shutil.rmtree(path.parent, ignore_errors=True)


def write_weights_files(files: list[tuple[str, bytes]]) -> list[Path]:
    """Checkpoints received as bytes, written to a private temporary folder for torch.load."""
    folder = Path(tempfile.mkdtemp(prefix="s2c-weights-"))
    paths = []
    for name, data in files:
        path = folder / Path(name).name
        path.write_bytes(data)
        paths.append(path)
    return paths


def resolve_codec(model: str | None, weights: str | None) -> CodecSpec:
    """The spec for ``--model`` / ``--weights``; raises WeightsNotFound, KeyError or ValueError."""
    if weights is None:
        entry = find_weights(model)
    else:
        entry = describe_entry(Path(weights))
        if model is not None and entry.model_name != model:
            raise ValueError(f"--weights {weights} holds model {entry.model_name}, not --model {model}")
    data = Path(entry.path).read_bytes()
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise ValueError(f"{entry.path}: sha256 differs from the weights index; the file was changed")
    return CodecSpec(entry.model_name, entry.weights_id, entry.sha256, entry.qualities, data)


def resolve_quality(quality: float | None, spec: CodecSpec) -> float:
    """``quality`` rounded to the container's step, or the middle level; ValueError when outside."""
    value = round_quality(quality) if quality is not None else default_quality(spec.qualities)
    if not 1 <= value <= spec.qualities:
        raise ValueError(f"--quality must be within 1..{spec.qualities} for {spec.model}, got {quality}")
    return value

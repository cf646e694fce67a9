"""Checkpoints: compact export, sha256 naming, and finding the weights a bitstream names.

A checkpoint is a ``torch.save`` dict ``{"format": 1, "config": {...}, "state_dict": {...},
"recipe": {...}}`` with float tensors stored as float16. Its identity is the sha256 of the file's
bytes; bitstreams carry the first 16 hex digits of it (the weights id). Files are always loaded
with ``weights_only=True``. The entropy tables inside a checkpoint are used as stored and never
recomputed at load time, since recomputing them could differ across machines.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from s2c_pipeline.catalogue import index_entries
from s2c_pipeline.codec.config import ModelConfig
from s2c_pipeline.codec.model import S2CFormer

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).parent / "weights"
INDEX_FILE = BUNDLED_DIR / "index.json"
CHECKPOINT_FORMAT = 1
WEIGHTS_ID_HEX = 16


class WeightsNotFound(LookupError):
    """No checkpoint matches the requested model name / weights id."""


@dataclass(frozen=True)
class WeightsEntry:
    model_name: str
    path: Path
    sha256: str
    qualities: int
    default: bool = False
    current: bool = True
    """False for a checkpoint a newer one of the same model replaced: kept so that the streams
    written with it still decode, never chosen for encoding."""

    @property
    def weights_id(self) -> str:
        return self.sha256[:WEIGHTS_ID_HEX]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_checkpoint(model: S2CFormer, out_dir: Path, recipe: dict[str, Any]) -> WeightsEntry:
    """Write ``<model>-<weights id>.pt``: float16 weights, entropy tables rebuilt from them.

    The float16 rounding happens before ``update()`` so that the stored CDF tables match the
    stored weights exactly.
    """
    model = model.to("cpu").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    model.update(force=True)
    state, aliases = _deduplicate(
        {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    )
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        "state_dict": state,
        "aliases": aliases,
        "recipe": recipe,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{model.config.name}-{sha[:WEIGHTS_ID_HEX]}.pt"
    path.write_bytes(data)
    log.info("exported %s (%.1f MB, sha256 %s)", path, len(data) / 1e6, sha)
    return WeightsEntry(model.config.name, path, sha, model.config.num_qualities)


def _deduplicate(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Store identical tensors once: every channel group shares the same Gaussian CDF tables."""
    kept: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    for key, tensor in state.items():
        twin = next(
            (k for k, t in kept.items() if t.dtype == tensor.dtype and t.shape == tensor.shape and torch.equal(t, tensor)),
            None,
        ) if tensor.numel() > 1024 else None
        if twin is None:
            kept[key] = tensor
        else:
            aliases[key] = twin
    return kept, aliases


def load_checkpoint(
    source: Path | bytes, device: str | torch.device = "cpu", *, name: str = "checkpoint bytes"
) -> tuple[S2CFormer, dict[str, Any]]:
    """Load a checkpoint written by ``export_checkpoint`` (or a training checkpoint's model part),
    from a file or from its bytes (as actors receive it: no temporary file); ``name`` says where
    bytes came from in errors."""
    payload = _payload(source, name)
    model = S2CFormer(ModelConfig.from_dict(payload["config"]))
    state = dict(payload["state_dict"])
    for key, same_as in payload.get("aliases", {}).items():
        state[key] = state[same_as]
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    model.load_state_dict(state)
    return model.to(device).eval(), payload.get("recipe", {})


def _payload(source: Path | bytes, name: str) -> dict[str, Any]:
    readable = io.BytesIO(source) if isinstance(source, bytes) else source
    payload = torch.load(readable, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        where = name if isinstance(source, bytes) else source
        raise ValueError(f"{where}: not an s2c-pipeline checkpoint (format {CHECKPOINT_FORMAT})")
    return payload


def bundled_weights(directory: Path = BUNDLED_DIR) -> list[WeightsEntry]:
    """The checkpoints shipped in the package, as listed in ``weights/index.json``."""
    return [
        WeightsEntry(
            model_name=e["model_name"],
            path=directory / e["file"],
            sha256=e["sha256"],
            qualities=e["qualities"],
            default=e.get("default", False),
            current=e.get("current", True),
        )
        for e in index_entries(directory)
        if "retired" not in e
    ]


def retired_hint(weights_id: str, directory: Path = BUNDLED_DIR) -> str:
    """How to get a checkpoint that left the package (the 40 MB cap), or "" if it never did."""
    for e in index_entries(directory):
        if "retired" in e and e["sha256"].startswith(weights_id):
            where = e["retired"]
            return (
                f"weights {weights_id} of {e['model_name']} left the package in {where['left_in']} to keep it under "
                f"40 MB; get the file from the s2c-pipeline repository with `git show {where['commit']}:"
                f"s2c_pipeline/codec/weights/{e['file']} > {e['file']}` and pass --weights {e['file']}"
            )
    return ""


def find_weights(
    model_name: str | None = None,
    weights_id: str | None = None,
    extra: list[WeightsEntry] | None = None,
    directory: Path = BUNDLED_DIR,
) -> WeightsEntry:
    """Pick a checkpoint: by weights id when decoding, else the model's (or the default) one."""
    candidates = [*(extra or []), *bundled_weights(directory)]
    for entry in candidates:
        if weights_id is not None and entry.weights_id != weights_id:
            continue
        if model_name is not None and entry.model_name != model_name:
            continue
        if weights_id is None and not entry.current:
            continue
        if model_name is None and weights_id is None and not entry.default:
            continue
        return entry
    if weights_id is not None and (hint := retired_hint(weights_id, directory)):
        raise WeightsNotFound(hint)
    wanted = " ".join(x for x in (model_name, weights_id and f"weights {weights_id}") if x) or "default model"
    known = ", ".join(f"{e.model_name} ({e.weights_id})" for e in candidates) or "none"
    raise WeightsNotFound(f"no checkpoint for {wanted}; available: {known}. Pass --weights FILE.pt")


def describe_entry(path: Path) -> WeightsEntry:
    """A WeightsEntry for a user-supplied checkpoint file (reading and hashing it once)."""
    return Checkpoint.read(path).describe()


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's bytes, hashed once where they were read.

    It loads from memory, so the bytes can travel to Ray actors through the object store and be
    loaded there without a shared filesystem, a temporary file or hashing them again.
    """

    name: str
    """Where the bytes came from (a path or a file name), for messages and ``WeightsEntry.path``."""
    data: bytes = field(repr=False)
    sha256: str

    @classmethod
    def of(cls, name: str, data: bytes) -> Checkpoint:
        return cls(name, data, hashlib.sha256(data).hexdigest())

    @classmethod
    def read(cls, path: Path) -> Checkpoint:
        return cls.of(str(path), Path(path).read_bytes())

    @property
    def weights_id(self) -> str:
        return self.sha256[:WEIGHTS_ID_HEX]

    def describe(self) -> WeightsEntry:
        """Its entry, from the stored config alone (no model is built)."""
        config = ModelConfig.from_dict(_payload(self.data, self.name)["config"])
        return WeightsEntry(config.name, Path(self.name), self.sha256, config.num_qualities)

    def load(self, device: str | torch.device = "cpu") -> tuple[S2CFormer, WeightsEntry]:
        """The model on ``device``, and its entry."""
        model, _ = load_checkpoint(self.data, device, name=self.name)
        return model, WeightsEntry(model.config.name, Path(self.name), self.sha256, model.config.num_qualities)

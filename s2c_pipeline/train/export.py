"""Turn a training run into a compact, sha256-named checkpoint with its recipe."""

from __future__ import annotations

import glob
import json
import os
import platform
import sys
from pathlib import Path

import torch

from s2c_pipeline.codec.config import ModelConfig
from s2c_pipeline.codec.model import S2CFormer
from s2c_pipeline.codec.weights import BUNDLED_DIR, INDEX_FILE, WeightsEntry, export_checkpoint, file_sha256


def hardware_description(train_cfg: dict) -> str:
    """Where the run trained (export runs on the same machine as training, by convention)."""
    if train_cfg.get("device") != "cpu" and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    threads = train_cfg.get("threads") or torch.get_num_threads()
    return f"{platform.machine()} CPU ({os.cpu_count()} cores), {threads} torch thread(s) (torch {torch.__version__})"


def run_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a run exports: ``best.pt`` when the run validated on a validation split (the
    split picks, not the last step), else ``last.pt``."""
    best = run_dir / "best.pt"
    return best if best.exists() else run_dir / "last.pt"


def data_files(pattern: str) -> list[dict[str, str | None]]:
    """The training packs a ``data`` option names (a file or a glob), each with its sha256."""
    files = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    return [
        {"file": Path(f).name, "sha256": file_sha256(Path(f)) if Path(f).exists() else None} for f in files
    ]


def export_run(run_dir: Path, out_dir: Path, *, command: str | None = None) -> WeightsEntry:
    """Export the run's checkpoint (``run_checkpoint``); the recipe records data, steps, wall time,
    hardware, command and the validation of the exported step."""
    checkpoint = run_checkpoint(run_dir)
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = S2CFormer(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    train_cfg = ckpt["train_config"]
    history = run_dir / "history.jsonl"
    validations = [json.loads(line) for line in history.read_text().splitlines()] if history.exists() else []
    at_step = [v for v in validations if v["step"] == ckpt["step"]]
    packs = data_files(train_cfg["data"])
    recipe = {
        "model": model.config.name,
        "steps": ckpt["step"],
        "wall_seconds": round(ckpt["wall_seconds"], 1),
        "hardware": hardware_description(train_cfg),
        "data": packs[0] if len(packs) == 1 else packs,
        "train_config": train_cfg,
        "command": command or " ".join(sys.argv),
        "checkpoint": checkpoint.name,
        "final_validation": at_step[-1] if at_step else (validations[-1] if validations else None),
    }
    return export_checkpoint(model, out_dir, recipe)


def bundle(entry: WeightsEntry, *, default: bool, directory: Path = BUNDLED_DIR) -> None:
    """Copy an exported checkpoint into the package and list it in ``weights/index.json`` as its
    model's current checkpoint. Earlier checkpoints of the model stay listed (``current: false``),
    so that every ``.s2c`` file written with them still decodes."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / entry.path.name
    index_file = directory / INDEX_FILE.name
    if entry.path.resolve() != target.resolve():
        target.write_bytes(entry.path.read_bytes())
    index = json.loads(index_file.read_text()) if index_file.exists() else []
    index = [e for e in index if e["sha256"] != entry.sha256]
    for e in index:
        if e["model_name"] == entry.model_name and "retired" not in e:
            e["current"] = False
        if default:
            e["default"] = False
    index.append(
        {
            "model_name": entry.model_name,
            "file": target.name,
            "sha256": entry.sha256,
            "qualities": entry.qualities,
            "default": default,
            "current": True,
        }
    )
    # One stable order: by model, its current checkpoint first.
    index.sort(key=lambda e: (e["model_name"], not e.get("current", True)))
    index_file.write_text(json.dumps(index, indent=2) + "\n")


def retire(weights_id: str, *, commit: str, left_in: str, directory: Path = BUNDLED_DIR) -> Path:
    """Take a non-current checkpoint out of the package (the 40 MB cap) while its index entry stays,
    saying which commit still holds the file, so a stream that names it gets a usable message.

    ``commit``: one that contains the file; ``left_in``: a label for the change that removes it.
    Returns the removed file's path."""
    index_file = directory / INDEX_FILE.name
    index = json.loads(index_file.read_text())
    matches = [e for e in index if e["sha256"].startswith(weights_id) and "retired" not in e]
    if len(matches) != 1:
        raise ValueError(
            f"{weights_id!r} matches {len(matches)} bundled checkpoints; give a longer weights id"
        )
    (e,) = matches
    if e.get("current", True):
        raise ValueError(f"{e['file']} is the current {e['model_name']} checkpoint; bundle a newer one first")
    e["retired"] = {"commit": commit, "left_in": left_in}
    e["default"] = False
    index_file.write_text(json.dumps(index, indent=2) + "\n")
    removed = directory / e["file"]
    removed.unlink(missing_ok=True)
    return removed

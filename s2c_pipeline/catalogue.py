"""What the model zoo holds and which weights ship with the package, read without torch.

``s2c models`` and anything else that lists before it loads read this: two JSON files in
``codec/weights/``, ``index.json`` (the bundled checkpoints, written by ``train.export``) and
``zoo.json`` (each zoo model's parameter count; ``tests/test_cli_behaviour.py`` checks it against
the models themselves, and ``python -m s2c_pipeline.catalogue --write`` rewrites it after a change
to the zoo). Importing torch only to count parameters made ``s2c models`` take seconds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

WEIGHTS_DIR = Path(__file__).parent / "codec" / "weights"
ZOO_FILE = WEIGHTS_DIR / "zoo.json"


def index_entries(directory: Path = WEIGHTS_DIR) -> list[dict[str, Any]]:
    """Every record of ``index.json`` in ``directory``, retired checkpoints included."""
    index_file = directory / "index.json"
    return json.loads(index_file.read_text()) if index_file.exists() else []


def zoo_parameters() -> dict[str, int]:
    """Parameter count of every zoo model, by name."""
    return json.loads(ZOO_FILE.read_text())["parameters"]


def describe_models() -> list[dict[str, Any]]:
    """One row per zoo entry: parameter count and the current bundled checkpoint, if any."""
    bundled = {e["model_name"]: e for e in index_entries() if "retired" not in e and e.get("current", True)}
    rows = []
    for name, params in sorted(zoo_parameters().items()):
        entry = bundled.get(name)
        rows.append(
            {
                "name": name,
                "params": params,
                "params_m": params / 1e6,
                "bundled_qualities": entry["qualities"] if entry else None,
                "weights_sha256": entry["sha256"] if entry else None,
                "default": bool(entry and entry.get("default", False)),
            }
        )
    return rows


def count_parameters() -> dict[str, int]:
    """The counts ``zoo.json`` must hold, from the models themselves (imports torch)."""
    from s2c_pipeline.codec import create_model, model_names

    return {name: sum(p.numel() for p in create_model(name).parameters()) for name in model_names()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Check or rewrite codec/weights/zoo.json.")
    parser.add_argument("--write", action="store_true", help="rewrite zoo.json from the zoo")
    args = parser.parse_args()
    counts = count_parameters()
    if args.write:
        ZOO_FILE.write_text(json.dumps({"parameters": counts}, indent=2) + "\n")
    elif counts != zoo_parameters():
        raise SystemExit(f"{ZOO_FILE} is stale: run python -m s2c_pipeline.catalogue --write")


if __name__ == "__main__":
    main()

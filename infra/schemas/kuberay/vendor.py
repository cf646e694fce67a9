"""Re-vendor the KubeRay CRD schemas used by tests/test_infra.py (see README.md beside this file).

    git clone https://github.com/ray-project/kuberay && git -C kuberay checkout v1.7.0
    python infra/schemas/kuberay/vendor.py kuberay v1.7.0

Writes ``<kind>.json`` for each CRD: the storage version's ``openAPIV3Schema`` with every
``description`` removed (they are four fifths of the bytes and validate nothing).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

CRDS = {
    "RayCluster": "ray.io_rayclusters.yaml",
    "RayJob": "ray.io_rayjobs.yaml",
    "RayCronJob": "ray.io_raycronjobs.yaml",
}
CRD_DIR = "ray-operator/config/crd/bases"


def strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: strip_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def storage_schema(crd: dict) -> tuple[str, dict]:
    """(version name, openAPIV3Schema) of the version the API server stores."""
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    return version["name"], version["schema"]["openAPIV3Schema"]


def main(checkout: str, ref: str) -> None:
    out = Path(__file__).resolve().parent
    commit = subprocess.run(
        ["git", "-C", checkout, "rev-parse", f"{ref}^{{commit}}"], check=True, capture_output=True, text=True
    ).stdout.strip()
    for kind, file_name in CRDS.items():
        text = subprocess.run(
            ["git", "-C", checkout, "show", f"{ref}:{CRD_DIR}/{file_name}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        version, schema = storage_schema(yaml.safe_load(text))
        path = out / f"{kind.lower()}.json"
        path.write_text(json.dumps(strip_descriptions(schema), sort_keys=True, separators=(",", ":")) + "\n")
        log.info("%s %s (ray.io/%s) from %s@%s -> %s", kind, file_name, version, ref, commit[:12], path.name)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(*sys.argv[1:3])

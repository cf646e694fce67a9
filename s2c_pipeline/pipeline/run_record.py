"""``run.json``: what produced an output prefix, and the check that refuses a mismatched resume.

Only the identity (model, weights sha256, quality, layout version) must match for a resume: those
decide the bytes of every output shard, so mixing them in one prefix would make one archive with
two meanings. Execution settings may change between runs; each run is appended to ``runs``.
Nothing from the storage options (credentials) is ever written here.
"""

from __future__ import annotations

import json
import platform
import sys
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from s2c_pipeline import __version__
from s2c_pipeline.codec.target import RateTarget
from s2c_pipeline.pipeline.codec_spec import CodecSpec
from s2c_pipeline.pipeline.commit import read_json
from s2c_pipeline.pipeline.config import LAYOUT_VERSION, RunConfig
from s2c_pipeline.pipeline.layout import OutputLayout
from s2c_pipeline.shards import filesystem, publish

RUN_FORMAT = 1


class ResumeRefused(ValueError):
    """The prefix was written under another identity; the message lists each difference."""


def identity(
    model: str, weights_sha256: str, quality: float, target: RateTarget | None = None
) -> dict[str, Any]:
    """In target mode ``quality`` is None: each manifest row records the quality its image got."""
    return {
        "layout_version": LAYOUT_VERSION,
        "model": model,
        "weights_sha256": weights_sha256,
        "weights_id": weights_sha256[:16],
        "quality": None if target else quality,
        "target": {target.kind: target.value} if target else None,
    }


def new_run_id() -> str:
    """An id for one ``s2c compress`` invocation: its UTC start time, then 8 random hex digits
    (``20250301T020000Z-1a2b3c4d``), so ids sort by start and two runs never share one."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def versions() -> dict[str, str]:
    import ray
    import torch

    return {
        "s2c_pipeline": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "ray": ray.__version__,
        "platform": platform.platform(),
    }


def check_or_write_run_record(
    layout: OutputLayout,
    wanted: Mapping[str, Any],
    config: RunConfig,
    storage_options: Mapping[str, Any],
    *,
    dry_run: bool = False,
    run_id: str | None = None,
) -> bool:
    """Write run.json for a new prefix, or check it and append this run; True if it existed.

    ``run_id`` (``new_run_id``) is recorded with the run; its shards' markers and manifest rows
    carry the same id.

    Raises ResumeRefused when the stored identity differs from ``wanted``.
    """
    record = read_json(layout.run_json, storage_options)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    this_run = {
        "run_id": run_id,
        "started_at": now,
        "execution": config.execution_dict(),
        "versions": versions(),
        "retry_failed": config.retry_failed,
    }
    if record is None:
        if not dry_run:
            record = {"format": RUN_FORMAT, "identity": dict(wanted), "runs": [this_run]}
            publish(
                json.dumps(record, indent=1).encode(), layout.run_json, storage_options=dict(storage_options)
            )
        return False
    stored = record.get("identity", {})
    differences = [
        f"{name}: the prefix has {stored.get(name)!r}, this run asks for {value!r}"
        for name, value in wanted.items()
        if stored.get(name) != value
    ]
    if differences:
        raise ResumeRefused(
            f"{layout.prefix} was written under another configuration, refusing to resume: "
            + "; ".join(differences)
            + ". Use the same --model/--weights/--quality, or another OUTPUT_PREFIX."
        )
    if not dry_run:
        record.setdefault("runs", []).append(this_run)
        publish(json.dumps(record, indent=1).encode(), layout.run_json, storage_options=dict(storage_options))
    return True


def store_weights(layout: OutputLayout, spec: CodecSpec, storage_options: Mapping[str, Any]) -> str:
    """Copy the checkpoint into ``weights/`` of the prefix once (decompress finds it there)."""
    url = layout.weights(spec.file_name)
    fs, path = filesystem(url, dict(storage_options))
    if not fs.exists(path):
        publish(spec.checkpoint, url, storage_options=dict(storage_options))
    return url

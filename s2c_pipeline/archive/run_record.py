"""``run.json``: what produced an output prefix, and the check that refuses a mismatched resume.

Only the identity (model, weights sha256, quality, layout version) must match for a resume: those
decide the bytes of every output shard, so mixing them in one prefix would make one archive with
two meanings. Execution settings may change between runs; each run is appended to ``runs``.
Nothing from the storage options (credentials) is ever written here.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from s2c_pipeline import __version__
from s2c_pipeline.archive.layout import LAYOUT_VERSION, OutputLayout
from s2c_pipeline.shards import filesystem, publish

if TYPE_CHECKING:
    from s2c_pipeline.codec.target import RateTarget

log = logging.getLogger(__name__)

RUN_FORMAT = 1


class RunSettings(Protocol):
    """What run.json records of a run's settings (``pipeline.RunConfig`` is one)."""

    retry_failed: bool

    def execution_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RunRecord:
    """run.json as read back: the identity every shard was coded under, and each run's entry."""

    identity: Mapping[str, Any]
    runs: tuple[Mapping[str, Any], ...]
    format: int = RUN_FORMAT

    @property
    def run_starts(self) -> tuple[datetime, ...]:
        """The start of each run, in the order they were appended (unparsable ones left out)."""
        starts = []
        for run in self.runs:
            try:
                starts.append(datetime.fromisoformat(str(run.get("started_at"))))
            except ValueError:
                continue
        return tuple(starts)

    def to_json(self) -> bytes:
        record = {
            "format": self.format,
            "identity": dict(self.identity),
            "runs": [dict(r) for r in self.runs],
        }
        return json.dumps(record, indent=1).encode()


def read_run_record(layout: OutputLayout, storage_options: Mapping[str, Any]) -> RunRecord | None:
    """run.json of ``layout``, or None when it is missing or not a JSON object (logged)."""
    fs, path = filesystem(layout.run_json, dict(storage_options))
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        return None
    try:
        value = json.loads(data)
    except ValueError as exc:
        log.warning("%s: not valid JSON (%s); treating it as absent", layout.run_json, exc)
        return None
    if not isinstance(value, dict):
        return None
    return RunRecord(
        identity=dict(value.get("identity") or {}),
        runs=tuple(value.get("runs") or ()),
        format=int(value.get("format", RUN_FORMAT)),
    )


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
    config: RunSettings,
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
    record = read_run_record(layout, storage_options)
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
            record = RunRecord(identity=dict(wanted), runs=(this_run,))
            publish(record.to_json(), layout.run_json, storage_options=dict(storage_options))
        return False
    stored = record.identity
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
        record = RunRecord(identity=record.identity, runs=(*record.runs, this_run), format=record.format)
        publish(record.to_json(), layout.run_json, storage_options=dict(storage_options))
    return True

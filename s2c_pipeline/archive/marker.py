"""The commit marker ``_done/ID.json``: a shard is committed once it exists (written last).

A marker records the hashes and sizes of the shard's tar and manifest part (so ``verify`` can
detect any later change), its counts (``ShardStats``), where and how it was coded, and when.
A shard is committed by its marker's existence: a marker that lacks a field (written before the
field existed, or edited) reads back with that field's default, and ``verify`` reports what no
longer matches. One that is not a JSON object with fields of the right types is treated as absent
(with a warning): markers are published atomically, so only an outside change can damage one, and
redoing the shard repairs it.
"""

from __future__ import annotations

import json
import logging
import math
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fsspec import AbstractFileSystem

from s2c_pipeline.archive.layout import OutputLayout
from s2c_pipeline.archive.shard_stats import ShardStats
from s2c_pipeline.shards import filesystem

log = logging.getLogger(__name__)

MARKER_FORMAT = 1


class MarkerError(ValueError):
    """A marker file that is not a JSON object, or has a field of the wrong type."""


@dataclass(frozen=True, kw_only=True)
class Marker:
    """One committed shard. URLs of its files are relative to the prefix."""

    shard_id: str
    source_url: str = ""
    """The input shard, as compress was given it (expanded to an absolute path or full URL)."""
    output_shard: str = ""
    manifest: str = ""
    tar_bytes: int = 0
    tar_sha256: str = ""
    manifest_bytes: int = 0
    manifest_sha256: str = ""
    rows: int = 0
    """Manifest rows, shard-problem rows included."""
    stats: ShardStats = field(default_factory=ShardStats)
    source_sha256: str | None = None
    run_id: str | None = None
    """The ``s2c compress`` invocation that committed it (run.json's ``runs``)."""
    model: str = ""
    weights_id: str = ""
    quality: float | None = None
    """None in target mode: each manifest row records its own."""
    attempt: int = 1
    retry_failed: bool = False
    node_id: str = ""
    device: str = ""
    pid: int = 0
    read_s: float = math.nan
    encode_s: float = math.nan
    committed_at: datetime | None = None
    format: int = MARKER_FORMAT

    @property
    def failed_samples(self) -> int:
        """Samples not coded plus input-shard problems: what ``--retry-failed`` redoes a shard for."""
        from s2c_pipeline.archive.status import Status

        return self.stats.images_failed + int(self.stats.statuses.get(Status.SHARD_PROBLEM, 0))

    def to_json(self) -> bytes:
        """The marker file, fields in the order markers have always had."""
        return json.dumps(self.to_dict(), indent=1).encode()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "shard_id": self.shard_id,
            "run_id": self.run_id,
            "source_url": self.source_url,
            "source_sha256": self.source_sha256,
            "output_shard": self.output_shard,
            "manifest": self.manifest,
            "tar_bytes": self.tar_bytes,
            "tar_sha256": self.tar_sha256,
            "manifest_bytes": self.manifest_bytes,
            "manifest_sha256": self.manifest_sha256,
            "rows": self.rows,
            "stats": self.stats.to_dict(),
            "model": self.model,
            "weights_id": self.weights_id,
            "quality": self.quality,
            "attempt": self.attempt,
            "retry_failed": self.retry_failed,
            "node_id": self.node_id,
            "device": self.device,
            "pid": self.pid,
            "timings_s": {"read": round(self.read_s, 4), "encode": round(self.encode_s, 4)},
            "committed_at": self.committed_at.isoformat(timespec="seconds") if self.committed_at else None,
        }

    @classmethod
    def from_json(cls, data: bytes, shard_id: str) -> Marker:
        """The marker in ``data`` (the file ``_done/SHARD_ID.json``); MarkerError when it is not one."""
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise MarkerError(f"not valid JSON ({exc})") from None
        if not isinstance(value, dict):
            raise MarkerError("not a JSON object")
        timings = value.get("timings_s") or {}
        try:
            return cls(
                shard_id=str(value.get("shard_id") or shard_id),
                source_url=str(value.get("source_url") or ""),
                output_shard=str(value.get("output_shard") or ""),
                manifest=str(value.get("manifest") or ""),
                tar_bytes=int(value.get("tar_bytes") or 0),
                tar_sha256=str(value.get("tar_sha256") or ""),
                manifest_bytes=int(value.get("manifest_bytes") or 0),
                manifest_sha256=str(value.get("manifest_sha256") or ""),
                rows=int(value.get("rows") or 0),
                stats=ShardStats.from_dict(value.get("stats") or {}),
                source_sha256=value.get("source_sha256"),
                run_id=value.get("run_id"),
                model=str(value.get("model") or ""),
                weights_id=str(value.get("weights_id") or ""),
                quality=None if value.get("quality") is None else float(value["quality"]),
                attempt=int(value.get("attempt", 1)),
                retry_failed=bool(value.get("retry_failed", False)),
                node_id=str(value.get("node_id") or ""),
                device=str(value.get("device") or ""),
                pid=int(value.get("pid") or 0),
                read_s=float(timings.get("read", math.nan)),
                encode_s=float(timings.get("encode", math.nan)),
                committed_at=_time(value.get("committed_at")),
                format=int(value.get("format", MARKER_FORMAT)),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise MarkerError(f"a field has the wrong type ({exc})") from None


def _time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def marker_ids_in(fs: AbstractFileSystem, folder: str) -> set[str]:
    """Shard ids with a marker in ``folder`` of ``fs``, from one fresh listing (empty when it does
    not exist); hidden names (a publish's temporary files) are not markers."""
    fs.invalidate_cache(folder)  # s3fs keeps listings: a marker written since must be seen
    try:
        names = fs.ls(folder, detail=False)
    except FileNotFoundError:
        return set()
    return {
        name.removesuffix(".json")
        for name in (posixpath.basename(n.rstrip("/")) for n in names)
        if name.endswith(".json") and not name.startswith(".")
    }


def list_marker_ids(layout: OutputLayout, storage_options: Mapping[str, Any]) -> set[str]:
    """Shard ids with a marker under ``layout`` (``_done/``)."""
    return marker_ids_in(*filesystem(layout.markers_dir, dict(storage_options)))


def read_marker(layout: OutputLayout, shard_id: str, storage_options: Mapping[str, Any]) -> Marker | None:
    """The marker of ``shard_id``, or None when there is none (or it is damaged: logged)."""
    fs, path = filesystem(layout.marker(shard_id), dict(storage_options))
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        return None
    try:
        return Marker.from_json(data, shard_id)
    except MarkerError as exc:
        log.warning("%s: %s; treating the shard as not committed", layout.marker(shard_id), exc)
        return None


def read_markers(layout: OutputLayout, storage_options: Mapping[str, Any]) -> dict[str, Marker]:
    """Every readable marker of the prefix by shard id, sorted (one batched read); damaged ones are
    left out with a warning."""
    ids = sorted(list_marker_ids(layout, storage_options))
    if not ids:
        return {}
    fs, folder = filesystem(layout.markers_dir, dict(storage_options))
    blobs = fs.cat([f"{folder}/{i}.json" for i in ids], on_error="omit")
    markers = {}
    for path, data in blobs.items():
        shard_id = path.rsplit("/", 1)[-1][: -len(".json")]
        try:
            markers[shard_id] = Marker.from_json(data, shard_id)
        except MarkerError as exc:
            log.warning("marker %s: %s; left out", path, exc)
    return dict(sorted(markers.items()))

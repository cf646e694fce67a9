"""Publishing one shard's outputs in the order that makes a crash harmless.

Order: output tar, then manifest part, each published atomically (``shards.publish``), then the
marker ``_done/<id>.json`` last. A shard without a marker is not committed, whatever else exists
for it: readers (decompress, verify, resume) trust only marked shards, and a re-run overwrites the
leftovers. The marker holds the sha256 of the tar and the manifest, so ``verify`` can detect any
later change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from s2c_pipeline.archive.layout import OutputLayout
from s2c_pipeline.archive.manifest import manifest_bytes
from s2c_pipeline.archive.marker import Marker
from s2c_pipeline.pipeline.compress.shard_coder import ShardOutput
from s2c_pipeline.shards import publish


@dataclass(frozen=True)
class CommitContext:
    """Facts about the try that produced a shard's outputs, recorded in its marker."""

    source_url: str
    source_sha256: str
    attempt: int
    node_id: str
    device: str
    pid: int
    read_s: float
    encode_s: float
    model: str
    weights_id: str
    quality: float | None  # None in target mode: each row has its own
    retry_failed: bool = False
    run_id: str | None = None
    """The ``s2c compress`` invocation (run.json), recorded in the marker and every row."""


def commit_shard(
    layout: OutputLayout,
    shard_id: str,
    output: ShardOutput,
    context: CommitContext,
    storage_options: Mapping[str, Any],
) -> Marker:
    """Publish tar, manifest, then marker; returns the marker.

    Every row gets the run's id and the commit time, the same values as the marker's, so one
    run's rows can be selected from the manifests alone.
    """
    options = dict(storage_options)
    committed_at = datetime.now(timezone.utc).replace(microsecond=0)
    rows = [replace(row, run_id=context.run_id, committed_at=committed_at) for row in output.rows]
    parquet = manifest_bytes(rows)
    publish(output.tar, layout.shard(shard_id), storage_options=options)
    publish(parquet, layout.manifest(shard_id), storage_options=options)
    marker = Marker(
        shard_id=shard_id,
        run_id=context.run_id,
        source_url=context.source_url,
        source_sha256=context.source_sha256,
        output_shard=layout.relative(layout.shard(shard_id)),
        manifest=layout.relative(layout.manifest(shard_id)),
        tar_bytes=len(output.tar),
        tar_sha256=hashlib.sha256(output.tar).hexdigest(),
        manifest_bytes=len(parquet),
        manifest_sha256=hashlib.sha256(parquet).hexdigest(),
        rows=len(rows),
        stats=output.stats,
        model=context.model,
        weights_id=context.weights_id,
        quality=context.quality,
        attempt=context.attempt,
        retry_failed=context.retry_failed,
        node_id=context.node_id,
        device=context.device,
        pid=context.pid,
        read_s=context.read_s,
        encode_s=context.encode_s,
        committed_at=committed_at,
    )
    publish(marker.to_json(), layout.marker(shard_id), storage_options=options)
    return marker

"""What an actor does with one shard task: check the marker, read, code, commit.

Kept apart from the actor class so the whole path runs without Ray in tests, and so the actor
stays a thin holder of the loaded codec. Storage reads and writes happen outside ``encode_lock``,
so with two tasks in flight one shard is read or written while the other is being encoded.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from s2c_pipeline.archive.layout import OutputLayout
from s2c_pipeline.archive.manifest import ManifestRow, read_manifests
from s2c_pipeline.archive.marker import read_marker
from s2c_pipeline.archive.status import Status
from s2c_pipeline.bitstream import BitstreamError, decode_container
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.pipeline.compress.commit import CommitContext, commit_shard
from s2c_pipeline.pipeline.compress.results import ShardResult
from s2c_pipeline.pipeline.compress.resume import ShardTask
from s2c_pipeline.pipeline.compress.shard_coder import EncodeSettings, ReusedSample, compress_shard
from s2c_pipeline.shards import DEFAULT_MAX_MEMBER_BYTES, filesystem, read_shard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerContext:
    """Where a worker runs, recorded in markers and manifest rows."""

    node_id: str = ""
    device: str = "cpu"
    pid: int = 0


def run_shard_task(
    task: ShardTask,
    *,
    attempt: int,
    codec: ImageCodec,
    settings: EncodeSettings,
    layout: OutputLayout,
    storage_options: Mapping[str, Any],
    worker: WorkerContext,
    encode_lock: threading.Lock | None = None,
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
) -> ShardResult:
    """Process one input shard end to end; idempotent (a committed shard is left alone)."""
    started = time.perf_counter()
    options = dict(storage_options)
    marker = read_marker(layout, task.shard_id, options)
    if marker is not None and not task.retry_failed:
        log.info("%s: already committed (marker exists); nothing to do", task.shard_id)
        return ShardResult(
            task.shard_id,
            task.url,
            False,
            marker.stats,
            worker.node_id,
            worker.device,
            attempt,
            0.0,
        )
    reuse, prior = _previous_outputs(layout, task.shard_id, options) if marker is not None else ({}, {})
    contents = read_shard(task.url, storage_options=options, max_member_bytes=max_member_bytes)
    read_s = time.perf_counter() - started
    with encode_lock or nullcontext():
        t0 = time.perf_counter()
        output = compress_shard(
            contents,
            codec,
            settings,
            output_url=layout.shard(task.shard_id),
            attempts=attempt,
            reuse=reuse,
            prior_attempts=prior,
        )
        encode_s = time.perf_counter() - t0
    context = CommitContext(
        source_url=task.url,
        source_sha256=contents.sha256,
        attempt=attempt,
        node_id=worker.node_id,
        device=worker.device,
        pid=worker.pid or os.getpid(),
        read_s=read_s,
        encode_s=encode_s,
        model=codec.model_name,
        weights_id=codec.weights.weights_id,
        quality=None if settings.target else settings.quality,
        retry_failed=task.retry_failed,
        run_id=task.run_id,
    )
    commit_shard(layout, task.shard_id, output, context, options)
    seconds = time.perf_counter() - started
    log.debug("%s: %d rows committed in %.2f s", task.shard_id, len(output.rows), seconds)
    return ShardResult(
        task.shard_id, task.url, True, output.stats, worker.node_id, worker.device, attempt, seconds
    )


def _previous_outputs(
    layout: OutputLayout, shard_id: str, options: dict[str, Any]
) -> tuple[dict[tuple[str, str], ReusedSample], dict[str, int]]:
    """For --retry-failed: ok samples to keep (row + bitstream) and tries so far of the others.

    A kept bitstream is re-parsed (CRC checked) first; one that fails is coded again instead.
    """
    rows = [
        ManifestRow(**r)
        for r in read_manifests([layout.manifest(shard_id)], storage_options=options).to_pylist()
    ]
    fs, path = filesystem(layout.shard(shard_id), options)
    tar = fs.cat_file(path)
    reuse: dict[tuple[str, str], ReusedSample] = {}
    prior: dict[str, int] = {}
    for row in rows:
        if row.status == Status.OK and row.s2c_offset is not None and row.s2c_bytes is not None:
            data = tar[row.s2c_offset : row.s2c_offset + row.s2c_bytes]
            try:
                decode_container(data, source=f"{layout.shard(shard_id)}:{row.s2c_member}")
            except BitstreamError as exc:
                log.warning("%s; coding this sample again", exc)
                prior[row.key] = row.attempts or 0
                continue
            reuse[(row.key, row.source_sha256)] = ReusedSample(row, data)
        elif row.key:
            prior[row.key] = row.attempts or 0
    return reuse, prior

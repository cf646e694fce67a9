"""Which input shards a run has to do, from the markers an earlier run left.

Policy: a shard with a marker is done and skipped. With ``retry_failed`` a done shard whose marker
counts samples that were not coded is redone, keeping its ok samples (their rows and bitstreams)
and coding again only the others; the shard's outputs and marker are then replaced as a whole.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from s2c_pipeline.archive.layout import OutputLayout, shard_id_for
from s2c_pipeline.archive.marker import list_marker_ids, read_marker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardTask:
    """One input shard to process; ``retry_failed`` = keep ok samples of the committed output.

    ``run_id`` names the ``s2c compress`` invocation (run.json's ``runs``); its commit records it
    in the marker and in every manifest row.
    """

    shard_id: str
    url: str
    retry_failed: bool = False
    run_id: str | None = None


@dataclass(frozen=True)
class ResumePlan:
    todo: tuple[ShardTask, ...]
    done: tuple[str, ...]
    """Shard ids already committed and left alone."""


def plan_shards(
    urls: Sequence[str],
    layout: OutputLayout,
    storage_options: Mapping[str, Any],
    *,
    retry_failed: bool = False,
    run_id: str | None = None,
) -> ResumePlan:
    marked = list_marker_ids(layout, storage_options)
    todo: list[ShardTask] = []
    done: list[str] = []
    for url in urls:
        shard_id = shard_id_for(url)
        if shard_id not in marked:
            todo.append(ShardTask(shard_id, url, run_id=run_id))
        elif retry_failed and _has_failures(layout, shard_id, storage_options):
            todo.append(ShardTask(shard_id, url, retry_failed=True, run_id=run_id))
        else:
            done.append(shard_id)
    return ResumePlan(tuple(todo), tuple(done))


def _has_failures(layout: OutputLayout, shard_id: str, storage_options: Mapping[str, Any]) -> bool:
    marker = read_marker(layout, shard_id, storage_options)
    return marker is None or marker.failed_samples > 0

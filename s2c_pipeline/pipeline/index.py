"""The output index: sample counts, sizes and hashes per committed output shard.

It follows the wids shard-index layout (``__kind__: wids-shard-index-v1`` with ``url``,
``nsamples``, ``filesize``), so decode jobs know their total up front and wids-style readers can
use it; urls are relative to the prefix. It is rebuilt from the markers at the end of every run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from s2c_pipeline.pipeline.commit import list_marker_ids
from s2c_pipeline.pipeline.layout import OutputLayout
from s2c_pipeline.shards import filesystem, publish

log = logging.getLogger(__name__)


def read_markers(layout: OutputLayout, storage_options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every marker of the prefix by shard id (one batched read; unparsable ones are left out)."""
    ids = sorted(list_marker_ids(layout, storage_options))
    if not ids:
        return {}
    fs, folder = filesystem(layout.markers_dir, dict(storage_options))
    blobs = fs.cat([f"{folder}/{i}.json" for i in ids], on_error="omit")
    markers = {}
    for path, data in blobs.items():
        shard_id = path.rsplit("/", 1)[-1][: -len(".json")]
        try:
            markers[shard_id] = json.loads(data)
        except ValueError as exc:
            log.warning("marker %s is not valid JSON (%s); left out", path, exc)
    return dict(sorted(markers.items()))


def build_index(layout: OutputLayout, markers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    shardlist = [
        {
            "url": m["output_shard"],
            "manifest": m["manifest"],
            "nsamples": m["stats"]["samples"],
            "filesize": m["tar_bytes"],
            "sha256": m["tar_sha256"],
            "source_url": m["source_url"],
        }
        for m in markers.values()
    ]
    return {
        "__kind__": "wids-shard-index-v1",
        "wids_version": 1,
        "name": layout.prefix.rstrip("/").rsplit("/", 1)[-1],
        "nsamples": sum(s["nsamples"] for s in shardlist),
        "shardlist": shardlist,
    }


def write_index(layout: OutputLayout, storage_options: Mapping[str, Any]) -> dict[str, Any]:
    index = build_index(layout, read_markers(layout, storage_options))
    publish(json.dumps(index, indent=1).encode(), layout.index_json, storage_options=dict(storage_options))
    return index

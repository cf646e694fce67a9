"""``index.json``: sample counts, sizes and hashes per committed output shard.

It follows the wids shard-index layout (``__kind__: wids-shard-index-v1`` with ``url``,
``nsamples``, ``filesize``), so decode jobs know their total up front and wids-style readers can
use it; urls are relative to the prefix. It is rebuilt from the markers at the end of every run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from s2c_pipeline.archive.layout import OutputLayout
from s2c_pipeline.archive.marker import Marker, read_markers
from s2c_pipeline.shards import publish


def build_index(layout: OutputLayout, markers: Mapping[str, Marker]) -> dict[str, Any]:
    shardlist = [
        {
            "url": m.output_shard,
            "manifest": m.manifest,
            "nsamples": m.stats.samples,
            "filesize": m.tar_bytes,
            "sha256": m.tar_sha256,
            "source_url": m.source_url,
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

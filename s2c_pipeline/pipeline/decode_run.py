"""Running decode tasks on actors (for ``decompress`` and ``verify --decode``).

Only committed shards (with a marker) are read. The checkpoints stored in the prefix's
``weights/`` folder, plus any the user names, are shipped to the actors as bytes; each bitstream
names the weights it needs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import ray
from tqdm import tqdm

from s2c_pipeline.manifest import read_manifests
from s2c_pipeline.pipeline.actors import DecodeWorker, remote_class
from s2c_pipeline.pipeline.cluster import connect, plan_actors
from s2c_pipeline.pipeline.config import DecodeConfig
from s2c_pipeline.pipeline.decode_job import DecodeResult, DecodeTask
from s2c_pipeline.pipeline.index import read_markers
from s2c_pipeline.pipeline.layout import OutputLayout
from s2c_pipeline.pipeline.pool_records import SchedulerReport
from s2c_pipeline.pipeline.scheduler import ActorPoolScheduler
from s2c_pipeline.shards import filesystem

log = logging.getLogger(__name__)

SHARD_COLUMN = "_shard_id"


def committed_manifest(
    layout: OutputLayout, storage_options: Mapping[str, Any]
) -> tuple[dict[str, dict[str, Any]], pd.DataFrame]:
    """(markers by shard id, all rows of the committed shards with a ``_shard_id`` column).

    Raises FileNotFoundError when nothing is committed under the prefix.
    """
    markers = read_markers(layout, storage_options)
    if not markers:
        raise FileNotFoundError(f"{layout.prefix}: no committed shards (no markers under _done/)")
    # read_manifests returns parts in sorted URL order: order the ids the same way to label rows.
    ids = sorted(markers, key=lambda i: f"{i}.parquet")
    table = read_manifests([layout.manifest(i) for i in ids], storage_options=dict(storage_options))
    frame = table.to_pandas()
    counts = [markers[i]["rows"] for i in ids]
    if sum(counts) != len(frame):
        raise ValueError(
            f"{layout.prefix}: the manifests hold {len(frame)} rows but the markers count {sum(counts)}; "
            "run `s2c verify` to find the shard"
        )
    frame[SHARD_COLUMN] = [i for i, n in zip(ids, counts, strict=True) for _ in range(n)]
    return markers, frame


def prefix_weights(
    layout: OutputLayout, extra: Sequence[str], storage_options: Mapping[str, Any]
) -> list[tuple[str, bytes]]:
    """(file name, bytes) of every checkpoint in the prefix's weights/ folder and of ``extra``."""
    files: list[tuple[str, bytes]] = []
    fs, folder = filesystem(layout.weights_dir, dict(storage_options))
    try:
        paths = sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".pt"))
    except FileNotFoundError:
        paths = []
    files.extend((p.rsplit("/", 1)[-1], fs.cat_file(p)) for p in paths)
    for url in extra:
        extra_fs, path = filesystem(str(url), dict(storage_options))
        files.append((path.rsplit("/", 1)[-1], extra_fs.cat_file(path)))
    return files


def run_decode_tasks(
    tasks: Sequence[DecodeTask], layout: OutputLayout, config: DecodeConfig, *, role: str
) -> tuple[list[DecodeResult], SchedulerReport]:
    options = dict(config.storage_options)
    results: list[DecodeResult] = []
    if not tasks:
        return results, SchedulerReport((), 0, 0, ())
    weights = prefix_weights(layout, config.extra_weights, options)
    owns_ray = connect(config.address)
    try:
        plan = plan_actors(config.actors, config.cpus_per_actor, role=role)
        actor_class = remote_class(DecodeWorker, plan.options)
        weights_ref = ray.put(weights)
        scheduler: ActorPoolScheduler[DecodeTask] = ActorPoolScheduler.for_workers(
            config,
            plan=plan,
            make_actor=lambda: actor_class.remote(weights_ref, config),
            name_of=lambda task: f"output shard {task.tar_url}",
        )
        total = sum(len(t.rows) for t in tasks)
        with tqdm(total=total, unit="image", desc=role, disable=not config.show_progress, leave=False) as bar:

            def on_result(task: DecodeTask, result: DecodeResult) -> None:
                results.append(result)
                bar.update(len(task.rows))

            report = scheduler.run(tasks, on_result)
    finally:
        if owns_ray:
            ray.shutdown()
    return results, report

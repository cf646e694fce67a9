"""Running decode tasks on actors (for ``decompress`` and ``verify --decode``).

Only committed shards (with a marker) are read: the tasks come from ``archive.committed``. The
checkpoints stored in the prefix (``archive.weights``), plus any the user names, are shipped to
the actors as bytes; each bitstream names the weights it needs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import ray
from tqdm import tqdm

from s2c_pipeline.archive.layout import OutputLayout
from s2c_pipeline.archive.weights import stored_weights
from s2c_pipeline.pipeline.config import DecodeConfig
from s2c_pipeline.pipeline.decompress.decode_task import DecodeResult, DecodeTask
from s2c_pipeline.pipeline.execution.actors import DecodeWorker, remote_class
from s2c_pipeline.pipeline.execution.cluster import connect, plan_actors
from s2c_pipeline.pipeline.execution.pool_records import SchedulerReport
from s2c_pipeline.pipeline.execution.scheduler import ActorPoolScheduler

log = logging.getLogger(__name__)


def run_decode_tasks(
    tasks: Sequence[DecodeTask], layout: OutputLayout, config: DecodeConfig, *, role: str
) -> tuple[list[DecodeResult], SchedulerReport]:
    options = dict(config.storage_options)
    results: list[DecodeResult] = []
    if not tasks:
        return results, SchedulerReport((), 0, 0, ())
    weights = stored_weights(layout, config.extra_weights, options)
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

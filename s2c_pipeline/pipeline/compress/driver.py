"""``compress``: input shards -> .s2c shards, manifests and markers under an output prefix.

The driver lists inputs, checks run.json, drops committed shards, and hands the rest to the
scheduler; actors do all reading, coding and writing. Ray is only needed for a real run: a dry run
and an all-done resume never start it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import ray

from s2c_pipeline.archive.index import write_index
from s2c_pipeline.archive.layout import OutputLayout
from s2c_pipeline.archive.run_record import check_or_write_run_record, identity, new_run_id
from s2c_pipeline.archive.shard_stats import ShardStats
from s2c_pipeline.archive.weights import store_weights
from s2c_pipeline.pipeline.compress.progress import CompressProgress
from s2c_pipeline.pipeline.compress.results import RunSummary, ShardResult
from s2c_pipeline.pipeline.compress.resume import ShardTask, plan_shards
from s2c_pipeline.pipeline.compress.weights_spec import CodecSpec, resolve_codec, resolve_quality
from s2c_pipeline.pipeline.config import RunConfig
from s2c_pipeline.pipeline.execution.actors import CompressSettings, CompressWorker, remote_class
from s2c_pipeline.pipeline.execution.cluster import connect, plan_actors
from s2c_pipeline.pipeline.execution.pool_records import SchedulerReport
from s2c_pipeline.pipeline.execution.scheduler import ActorPoolScheduler
from s2c_pipeline.shards import expand_inputs

log = logging.getLogger(__name__)


def compress(
    inputs: Sequence[str], output_prefix: str, config: RunConfig, *, codec: CodecSpec | None = None
) -> RunSummary:
    """Compress every input shard not yet committed under ``output_prefix``.

    ``codec`` is ``resolve_codec(config.model, config.weights)`` where the caller has it already
    (the CLI resolves it first, to report a bad --weights as a usage error), so the weights are
    read and hashed once.

    Raises:
        FileNotFoundError: an input matches nothing.
        WeightsNotFound, KeyError, ValueError: bad --model / --weights / --quality.
        ResumeRefused: the prefix was written under another model, weights or quality.
        SchedulerError: no actor could start (the message says why).
    Failed shards do not raise: they are listed in ``RunSummary.failed``.
    """
    started = time.monotonic()
    options = dict(config.storage_options)
    layout = OutputLayout.of(output_prefix)
    urls = expand_inputs(inputs, storage_options=options)
    spec = codec or resolve_codec(config.model, config.weights)
    quality = resolve_quality(config.quality, spec)
    wanted = identity(spec.model, spec.weights_sha256, quality, config.target)
    run_id = new_run_id()
    resumed = check_or_write_run_record(
        layout, wanted, config, options, dry_run=config.dry_run, run_id=run_id
    )
    if not config.dry_run:
        store_weights(layout, spec, options)
    plan = plan_shards(urls, layout, options, retry_failed=config.retry_failed, run_id=run_id)
    log.info(
        "run %s: %d input shard(s): %d to do, %d already committed%s; model %s@%s %s",
        run_id,
        len(urls),
        len(plan.todo),
        len(plan.done),
        " (resuming)" if resumed else "",
        spec.model,
        spec.weights_id,
        f"target {config.target.kind} {config.target.value:g}" if config.target else f"quality {quality:g}",
    )
    if config.dry_run:
        for task in plan.todo:
            log.info(
                "would %s %s -> %s",
                "retry failed samples of" if task.retry_failed else "compress",
                task.url,
                layout.shard(task.shard_id),
            )
        return _summary(layout, urls, plan.done, plan.todo, None, ShardStats(), started, dry_run=True)
    report = None
    stats = ShardStats()
    if plan.todo:
        owns_ray = connect(config.address)
        try:
            report, stats = _run(plan.todo, layout, config, spec, quality)
        finally:
            if owns_ray:
                ray.shutdown()
    write_index(layout, options)
    return _summary(layout, urls, plan.done, plan.todo, report, stats, started)


def _run(tasks, layout, config, spec, quality) -> tuple[SchedulerReport, ShardStats]:
    actor_plan = plan_actors(config.actors, config.cpus_per_actor, role="compress")
    actor_class = remote_class(CompressWorker, actor_plan.options)
    spec_ref, settings_ref = ray.put(spec), ray.put(CompressSettings(layout, quality, config))
    scheduler: ActorPoolScheduler[ShardTask] = ActorPoolScheduler.for_workers(
        config,
        plan=actor_plan,
        make_actor=lambda: actor_class.remote(spec_ref, settings_ref),
        name_of=lambda task: f"shard {task.url}",
    )
    progress = CompressProgress(
        len(tasks), enabled=config.show_progress, log_interval_s=config.log_interval_s
    )

    def on_result(task: ShardTask, result: ShardResult) -> None:
        progress.add(result)
        log.debug("%s: committed on node %s (try %d)", task.shard_id, result.node_id[:8], result.attempt)

    try:
        report = scheduler.run(tasks, on_result, progress.tick)
    finally:
        progress.close()
    log.info("%s", progress.line())
    return report, progress.stats


def _summary(layout, urls, done, todo, report, stats, started, *, dry_run: bool = False) -> RunSummary:
    failed = report.failures if report else ()
    return RunSummary(
        output_prefix=layout.prefix,
        shards_total=len(urls),
        shards_done=0 if dry_run else len(todo) - len(failed),
        shards_skipped=len(done),
        failed=failed,
        stats=stats,
        wall_s=time.monotonic() - started,
        actor_deaths=report.actor_deaths if report else 0,
        retries=report.retries if report else 0,
        nodes=report.nodes if report else (),
        actor_start_s=report.startup_s if report else 0.0,
        dry_run=dry_run,
        todo=tuple(t.shard_id for t in todo),
    )

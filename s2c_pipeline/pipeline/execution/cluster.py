"""Connecting to Ray and sizing the actor pool from what the cluster has.

One actor per GPU when the cluster has GPUs; otherwise CPU actors of ``cpus_per_actor`` cores
each, announced with a notice so a GPU-less cluster is never a silent wait.
"""

from __future__ import annotations

import logging
import os
import sys

import ray

from s2c_pipeline.pipeline.execution.pool_records import ActorPlan

log = logging.getLogger(__name__)


_RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


class _DropTokenAuthNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")


def connect(address: str | None) -> bool:
    """Use the Ray already initialised in this process, else join ``address`` or start a local one.

    Returns True when this call initialised Ray (the caller then shuts it down). ``address=None``
    also honours ``RAY_ADDRESS`` from the environment, as ``ray.init`` does.
    """
    if ray.is_initialized():
        return False
    local = address is None and not os.environ.get("RAY_ADDRESS")
    _quiet_ray_logs()
    context = ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
    if local:
        url = context.dashboard_url
        log.debug("started a local Ray runtime; dashboard: %s", f"http://{url}" if url else "not running")
    return True


def _quiet_ray_logs() -> None:
    """Keep Ray's noise out of our logs; the environment can still override the colours.

    Actors' log lines still reach the driver's stderr (``log_to_driver``), but off a terminal
    without the ANSI colours of their ``(CompressWorker pid=...)`` prefixes. A new local runtime
    gets token authentication, as Ray decides, without Ray's warning on every run that it did.
    """
    if not sys.stderr.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # read by the driver as it prints each line
    notices = logging.getLogger(_RAY_AUTH_LOGGER)
    if not any(isinstance(f, _DropTokenAuthNotice) for f in notices.filters):
        notices.addFilter(_DropTokenAuthNotice())


def plan_actors(actors: int | None, cpus_per_actor: int, *, role: str) -> ActorPlan:
    """Actor count and resources for ``role`` (compress/decode) from the cluster's resources."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 0))
    if gpus > 0:
        count = actors or gpus
        return ActorPlan(
            count=count,
            options={"num_gpus": 1, "num_cpus": cpus_per_actor},
            notice=f"{role}: {count} GPU actor(s) ({gpus} GPU(s) in the cluster), {cpus_per_actor} CPU each",
        )
    if cpus < cpus_per_actor:
        raise ValueError(
            f"the Ray cluster has {cpus} CPU(s) and no GPU, fewer than --cpus-per-actor {cpus_per_actor}"
        )
    count = actors or max(1, cpus // cpus_per_actor)
    return ActorPlan(
        count=count,
        options={"num_gpus": 0, "num_cpus": cpus_per_actor},
        notice=f"no GPU in the cluster: using {count} CPU actor(s) of {cpus_per_actor} CPU(s) each for {role}",
    )

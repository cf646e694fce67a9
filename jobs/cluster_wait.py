"""Ask the autoscaler for the resources a job needs, and wait until the cluster has them.

Why: ``s2c compress`` sizes its actor pool from the resources present when it starts (one actor per
GPU; CPU actors when it sees no GPU). On a cluster that scales GPU nodes from zero (``ray up`` with
``min_workers: 0``, a KubeRay group with ``minReplicas: 0``) it would start on CPU, or fail on a
head with no CPUs. ``request_resources`` makes the autoscaler add the nodes first; the request is
withdrawn when the job ends so idle nodes can go.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("s2c.job")


class ResourcesUnavailable(RuntimeError):
    """The cluster did not reach the required resources in time (the message says what it has)."""


def bundles_for(required: Mapping[str, float]) -> list[dict[str, float]]:
    """One bundle per unit, so ``{GPU: 2}`` fits two one-GPU nodes rather than one two-GPU node."""
    return [{name: 1.0} for name, count in required.items() for _ in range(math.ceil(count))]


def missing(required: Mapping[str, float], available: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """``{name: (have, need)}`` for every resource still short."""
    return {
        name: (available.get(name, 0.0), need)
        for name, need in required.items()
        if available.get(name, 0.0) < need
    }


def wait_for_resources(
    required: Mapping[str, float],
    timeout_s: float,
    *,
    cluster_resources: Callable[[], Mapping[str, float]],
    poll_s: float = 5.0,
    log_every_s: float = 60.0,
) -> None:
    """Poll ``cluster_resources`` until ``required`` is there; raise ResourcesUnavailable on timeout."""
    start = last_log = time.monotonic()
    while short := missing(required, cluster_resources()):
        now = time.monotonic()
        waited = now - start
        summary = ", ".join(f"{have:g} of {need:g} {name}" for name, (have, need) in short.items())
        if waited >= timeout_s:
            raise ResourcesUnavailable(
                f"the cluster has {summary} after {waited:.0f} s; check `ray status` for pending nodes, "
                "the node type's max_workers/maxReplicas and the cloud quota"
            )
        if now - last_log >= log_every_s:
            last_log = now
            log.info("waiting for resources: %s (%.0f s)", summary, waited)
        time.sleep(poll_s)
    log.info(
        "cluster resources ready after %.0f s: %s",
        time.monotonic() - start,
        ", ".join(f"{name} {need:g}" for name, need in required.items()),
    )


def request(required: Mapping[str, float]) -> None:
    """Set (or, with ``{}``, withdraw) this cluster's standing autoscaler request."""
    from ray.autoscaler.sdk import request_resources

    request_resources(bundles=bundles_for(required))

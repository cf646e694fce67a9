"""What the actor pool is given and what it hands back: a plan, and the failures and counts of a run.

Kept apart from ``scheduler`` so that the records built from them (``compress.results``) and the code
that sizes the pool (``cluster``) do not depend on the scheduler's Ray machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskFailure:
    """A task that used up its tries: the error of each try, oldest first.

    ``retryable`` is False when the last error said another try would meet the same (so a re-run
    will not help until the input is fixed)."""

    name: str
    errors: tuple[str, ...]
    retryable: bool = True


@dataclass(frozen=True)
class SchedulerReport:
    failures: tuple[TaskFailure, ...]
    actor_deaths: int
    retries: int
    nodes: tuple[str, ...]
    """Node ids where actors ran."""
    startup_s: float = 0.0
    """From the start of ``run`` until the last of the first actors was ready (model loaded)."""


@dataclass(frozen=True)
class ActorPlan:
    """How many actors to start and with which resources; ``notice`` is logged once."""

    count: int
    options: dict[str, Any]
    notice: str

"""The driver-side shard scheduler: a fixed pool of actors, a queue, and the failure policies.

Policies, by what went wrong:

* ``actor_died`` (RayActorError: killed, OOM, node lost): the actor is replaced by a fresh one and
  the shard goes back to the queue; the try counts towards ``max_attempts``.
* ``task_error`` (an exception raised by our code in the actor, e.g. a shard that cannot be read
  after the reader's own retries): the shard is re-queued until ``max_attempts`` tries, then
  reported as failed. The actor keeps running. An exception that says another try would meet the
  same bytes (``retryable = False``: a shard that is not a tar, or is not there) fails at once.
* ``start_failed`` (an actor whose constructor raises, e.g. missing weights): retried like a death,
  but if no actor ever starts the run stops with the constructor's error instead of looping.
* ``start_timeout`` (an actor that stays pending: no resources anywhere): logged every 30 s with the
  cluster's free resources, and the run stops after ``start_timeout_s`` if no actor is running.
  Never a silent wait.

Up to ``in_flight`` tasks are queued per actor (the second is read while the first is encoded);
near the end of the queue only one, so that the last shards do not wait behind a busy actor.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError

from s2c_pipeline.pipeline.config import ExecutionConfig
from s2c_pipeline.pipeline.execution.pool_records import ActorPlan, SchedulerReport, TaskFailure

log = logging.getLogger(__name__)

T = TypeVar("T")

_WAIT_S = 1.0
_PENDING_LOG_EVERY_S = 30.0


class SchedulerError(RuntimeError):
    """The run cannot go on at all (no actor starts); the message says why and what to do."""


@dataclass
class _Slot:
    handle: Any
    ready_ref: Any
    created: float
    ready: bool = False
    dead: bool = False
    node_id: str = ""
    in_flight: set = field(default_factory=set)
    last_pending_log: float = 0.0


@dataclass
class _Job(Generic[T]):
    task: T
    errors: list[str] = field(default_factory=list)


def error_text(exc: BaseException) -> str:
    """One line for a failed try: the user's exception rather than Ray's wrapper and traceback."""
    if isinstance(exc, RayTaskError):
        cause = getattr(exc, "cause", None)
        if cause is not None:
            return f"{type(cause).__name__}: {cause}".splitlines()[0]
    if isinstance(exc, RayActorError):
        return f"actor died ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def is_retryable(exc: BaseException) -> bool:
    """False when the task's own exception has ``retryable = False`` (e.g. ``ShardReadError`` for a
    file that is not a tar); any other failure may go away on another try."""
    cause = getattr(exc, "cause", None) if isinstance(exc, RayTaskError) else exc
    return getattr(cause, "retryable", True) is not False


class ActorPoolScheduler(Generic[T]):
    """Runs every task once on a pool of actors, re-queuing by the policies above.

    ``make_actor()`` returns a new actor handle that has a ``ready()`` method; ``submit(actor,
    task, attempt)`` returns an ObjectRef; ``on_result(task, value)`` runs on the driver for each
    finished task; ``on_tick()`` about once a second (progress lines).
    """

    def __init__(
        self,
        *,
        plan: ActorPlan,
        make_actor: Callable[[], Any],
        submit: Callable[[Any, T, int], Any],
        name_of: Callable[[T], str],
        max_attempts: int,
        in_flight: int = 2,
        start_timeout_s: float = 600.0,
    ) -> None:
        self.plan = plan
        self._make_actor = make_actor
        self._submit = submit
        self._name_of = name_of
        self._max_attempts = max_attempts
        self._in_flight = in_flight
        self._start_timeout_s = start_timeout_s
        self._slots: list[_Slot] = []
        self._refs: dict[Any, tuple[_Slot, _Job[T]]] = {}
        self._ready_refs: dict[Any, _Slot] = {}
        self._deaths = 0
        self._retries = 0
        self._start_failures: list[str] = []
        self._ever_ready = False
        self._nodes: set[str] = set()
        self._started = 0.0
        self._startup_s = 0.0
        self._initial_pending = 0

    @classmethod
    def for_workers(
        cls,
        config: ExecutionConfig,
        *,
        plan: ActorPlan,
        make_actor: Callable[[], Any],
        name_of: Callable[[T], str],
    ) -> ActorPoolScheduler[T]:
        """The pool of our worker actors (``actors.py``): a task goes to ``process(task, attempt)``;
        tries, queue depth and start timeout are ``config``'s."""
        return cls(
            plan=plan,
            make_actor=make_actor,
            submit=lambda actor, task, attempt: actor.process.remote(task, attempt),
            name_of=name_of,
            max_attempts=config.max_attempts,
            in_flight=config.in_flight_per_actor,
            start_timeout_s=config.actor_start_timeout_s,
        )

    def run(
        self,
        tasks: Sequence[T],
        on_result: Callable[[T, Any], None],
        on_tick: Callable[[], None] = lambda: None,
    ) -> SchedulerReport:
        queue: deque[_Job[T]] = deque(_Job(t) for t in tasks)
        failures: list[TaskFailure] = []
        if not queue:
            return SchedulerReport((), 0, 0, ())
        log.info("%s", self.plan.notice)
        self._started = time.monotonic()
        self._initial_pending = min(self.plan.count, len(queue))
        for _ in range(self._initial_pending):
            self._start_actor()
        try:
            while queue or self._refs:
                self._assign(queue)
                waitable = [*self._refs, *self._ready_refs]
                done, _ = ray.wait(waitable, num_returns=1, timeout=_WAIT_S) if waitable else ([], [])
                for ref in done:
                    if ref in self._ready_refs:
                        self._on_ready(ref)
                    else:
                        self._on_done(ref, queue, failures, on_result)
                self._check_pending()
                on_tick()
        finally:
            for slot in self._slots:
                ray.kill(slot.handle, no_restart=True)
            self._slots.clear()
        return SchedulerReport(
            tuple(failures), self._deaths, self._retries, tuple(sorted(self._nodes)), self._startup_s
        )

    def _start_actor(self) -> None:
        handle = self._make_actor()
        slot = _Slot(handle=handle, ready_ref=handle.ready.remote(), created=time.monotonic())
        self._slots.append(slot)
        self._ready_refs[slot.ready_ref] = slot

    def _replace(self, slot: _Slot) -> None:
        if slot.dead:
            return
        slot.dead = True
        self._slots.remove(slot)
        self._ready_refs.pop(slot.ready_ref, None)
        ray.kill(slot.handle, no_restart=True)
        self._start_actor()

    def _assign(self, queue: deque[_Job[T]]) -> None:
        ready = [s for s in self._slots if s.ready and not s.dead]
        if not ready:
            return
        depth = self._in_flight if len(queue) > len(ready) else 1
        for level in range(1, depth + 1):
            for slot in ready:
                if queue and len(slot.in_flight) < level:
                    job = queue.popleft()
                    ref = self._submit(slot.handle, job.task, len(job.errors) + 1)
                    slot.in_flight.add(ref)
                    self._refs[ref] = (slot, job)

    def _on_ready(self, ref: Any) -> None:
        slot = self._ready_refs.pop(ref)
        try:
            info = ray.get(ref)
        except RayError as exc:
            text = error_text(exc)
            self._start_failures.append(text)
            log.warning("an actor failed to start (%s); starting another", text)
            if not self._ever_ready and len(self._start_failures) >= self._max_attempts:
                raise SchedulerError(
                    f"no actor could start after {len(self._start_failures)} tries; last error: {text}"
                ) from None
            if len(self._start_failures) < self._max_attempts * self.plan.count:
                self._replace(slot)
                return
            slot.dead = True  # starts keep failing: go on with the actors that work
            self._slots.remove(slot)
            if not any(s.ready for s in self._slots):
                raise SchedulerError(f"every actor failed; last start error: {text}") from None
            return
        slot.ready = True
        self._ever_ready = True
        if self._initial_pending:
            self._initial_pending -= 1
            self._startup_s = time.monotonic() - self._started
        slot.node_id = str(info.get("node_id", "")) if isinstance(info, dict) else ""
        self._nodes.add(slot.node_id)
        log.debug("actor ready: %s", info)

    def _on_done(
        self,
        ref: Any,
        queue: deque[_Job[T]],
        failures: list[TaskFailure],
        on_result: Callable[[T, Any], None],
    ) -> None:
        slot, job = self._refs.pop(ref)
        slot.in_flight.discard(ref)
        name = self._name_of(job.task)
        try:
            value = ray.get(ref)
        except RayActorError as exc:
            self._deaths += int(not slot.dead)
            log.warning(
                "%s: the actor running it died (%s); re-queuing on a fresh actor", name, error_text(exc)
            )
            self._replace(slot)
            self._retry_or_fail(job, error_text(exc), queue, failures)
            return
        except (RayTaskError, RayError) as exc:
            if not is_retryable(exc):
                log.error(
                    "%s: failed, not retried (another try would meet the same): %s", name, error_text(exc)
                )
                failures.append(TaskFailure(name, (*job.errors, error_text(exc)), retryable=False))
                return
            log.warning("%s: try %d failed: %s", name, len(job.errors) + 1, error_text(exc))
            self._retry_or_fail(job, error_text(exc), queue, failures)
            return
        on_result(job.task, value)

    def _retry_or_fail(
        self, job: _Job[T], error: str, queue: deque[_Job[T]], failures: list[TaskFailure]
    ) -> None:
        job.errors.append(error)
        name = self._name_of(job.task)
        if len(job.errors) >= self._max_attempts:
            log.error("%s: failed %d times, giving up; last error: %s", name, len(job.errors), error)
            failures.append(TaskFailure(name, tuple(job.errors)))
        else:
            self._retries += 1
            queue.append(job)

    def _check_pending(self) -> None:
        now = time.monotonic()
        for slot in list(self._slots):
            if slot.ready or slot.dead:
                continue
            waited = now - slot.created
            if waited >= _PENDING_LOG_EVERY_S and now - slot.last_pending_log >= _PENDING_LOG_EVERY_S:
                slot.last_pending_log = now
                log.warning(
                    "an actor (%s) has waited %.0f s for resources; free in the cluster: %s",
                    self.plan.options,
                    waited,
                    _free_resources(),
                )
            if waited >= self._start_timeout_s:
                if any(s.ready for s in self._slots):
                    log.warning("giving up on a pending actor after %.0f s; going on with fewer", waited)
                    self._slots.remove(slot)
                    self._ready_refs.pop(slot.ready_ref, None)
                    ray.kill(slot.handle, no_restart=True)
                else:
                    raise SchedulerError(
                        f"no actor could be placed within {self._start_timeout_s:.0f} s (each needs "
                        f"{self.plan.options}; free: {_free_resources()}); add nodes or lower "
                        "--cpus-per-actor / --actors"
                    )


def _free_resources() -> dict[str, float]:
    try:
        free = ray.available_resources()
    except (RayError, GetTimeoutError) as exc:
        return {"unknown": 0.0, type(exc).__name__: 0.0}
    return {k: v for k, v in free.items() if k in ("CPU", "GPU", "memory")}

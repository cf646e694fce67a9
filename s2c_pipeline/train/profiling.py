"""Where a training step's time goes, measured inside a run (``profile_steps``).

A lent GPU gives minutes, not hours: the first lease guessed at what held its steps back and the
second found the GPU a quarter busy with nvidia-smi. With ``profile_steps: N`` a run profiles N
steps after 10 unprofiled ones (cuDNN autotuning, the first batches) and writes the table of
operator times to ``profile.txt`` beside its checkpoints. The loop labels its phases (``crops``:
waiting for or making the batch; ``forward``, ``backward``, ``optimizer``), so the table says
whether the step waits on crops, kernels or Python.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, schedule

log = logging.getLogger(__name__)

SKIPPED_STEPS = 10
PHASES = ("crops", "forward", "backward", "optimizer")  # the loop's record_function labels


def phase_table(averages: Iterable, steps: int, on_gpu: bool) -> list[str]:
    """One row per loop phase: host ms a step, and on a GPU the ms its kernels span a step.

    On a GPU each ``record_function`` label comes back twice, once as the host range and once as
    its span on the GPU stream (host time 0); a row per event would list each phase twice, one
    of them 0.0. Taking the larger of each time over a label's events gives one row with both.
    """
    host = dict.fromkeys(PHASES, 0.0)
    gpu = dict.fromkeys(PHASES, 0.0)
    for event in averages:
        if event.key in host:
            host[event.key] = max(host[event.key], event.cpu_time_total / 1000 / steps)
            gpu[event.key] = max(gpu[event.key], event.device_time_total / 1000 / steps)
    header = "phase       host ms a step" + ("   GPU ms a step (kernels run behind the host)" if on_gpu else "")
    rows = [f"{name:<11} {host[name]:>14.1f}" + (f" {gpu[name]:>15.1f}" if on_gpu else "") for name in PHASES]
    return [header, *rows]


def step_profiler(steps: int, device: torch.device, out_dir: Path) -> profile | None:
    """A started profiler to ``.step()`` after every training step, or None when ``steps`` is 0."""
    if steps <= 0:
        return None
    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    sort_by = "cuda_time_total" if on_gpu else "cpu_time_total"

    def write(prof: profile) -> None:
        path = out_dir / "profile.txt"
        averages = prof.key_averages()
        lines = [f"# {steps} training steps after {SKIPPED_STEPS}, on {device}", "", *phase_table(averages, steps, on_gpu)]
        lines += ["", f"operators, sorted by {sort_by}:", averages.table(sort_by=sort_by, row_limit=40), ""]
        path.write_text("\n".join(lines))
        log.info("profile of %d steps written to %s", steps, path)

    prof = profile(
        activities=activities,
        schedule=schedule(wait=SKIPPED_STEPS, warmup=1, active=steps, repeat=1),
        on_trace_ready=write,
    )
    prof.start()
    return prof

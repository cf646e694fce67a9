"""Compute list prices (CPU core-hour, GPU-hour), dated and sourced like the storage prices, and
the compute options of a payback (``payback``); no heavy imports, so the command line checks them first.

The prices are the defaults of ``--cpu-hour-price`` and ``--gpu-hour-price``. Both are on-demand list
prices in one US region read from third-party copies of the providers' tables, not from the
providers' pages themselves; spot, reserved and smaller GPU clouds cost much less, so a planner
should pass their own price. The report prints which price it used and where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

GPU_BENCHMARK_KIND = "s2c-gpu-coding"
DEFAULT_BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
"""The checkout's committed benchmark results (absent in an installed wheel: then no GPU figure)."""


@dataclass(frozen=True)
class ComputePrice:
    usd_per_hour: float
    unit: str
    """What one hour buys: one CPU core (vCPU) or one GPU."""
    basis: str
    """How the figure follows from the listed instance price."""
    source: str
    as_of: str


CPU_HOUR = ComputePrice(
    usd_per_hour=0.0408,
    unit="vCPU-hour",
    basis="AWS EC2 m7g.large on-demand, Linux, us-east-1: $0.0816 per hour for 2 vCPUs",
    source="https://www.factualminds.com/blog/amazon-ec2-on-demand-pricing-instance-families-2026/",
    as_of="2026-06",
)
GPU_HOUR = ComputePrice(
    usd_per_hour=12.29,
    unit="GPU-hour (H100)",
    basis="AWS EC2 p5.48xlarge on-demand: $98.32 per hour for 8 H100 GPUs (another third-party page "
          "reports a cut to $80.62 in January 2026; smaller GPU clouds list an H100 at $2.49-2.85 per hour)",
    source="https://computespec.pages.dev/learn/pricing/cost-per-gpu-hour; "
           "https://digiterialabs.com/ai/insights/cloud-gpu-pricing-q1-2026",
    as_of="2026-Q1",
)


def given_price(value: float, unit: str) -> ComputePrice:
    """A price from the command line, recorded as such."""
    return ComputePrice(value, unit, "given on the command line", "--cpu-hour-price / --gpu-hour-price", "-")


@dataclass(frozen=True)
class ComputeOptions:
    cpu: ComputePrice = CPU_HOUR
    gpu: ComputePrice = GPU_HOUR
    gpu_images_per_s: float | None = None
    """Our codec's encode + decode-verify throughput on one GPU, for images like the sample's."""
    benchmarks: Path | None = field(default=DEFAULT_BENCHMARKS)
    reads_per_month: float = 0.0
    """Images decoded per month once stored (0: an archive nobody reads)."""

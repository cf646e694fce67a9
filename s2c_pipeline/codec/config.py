"""Named, frozen model configurations: every architectural unknown of the paper is a field here."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# The paper's (and CompressAI's) rate points; loss = lambda * 255^2 * MSE + bpp.
PAPER_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483)


def between_levels(rows: Sequence[Any], quality: float) -> Any:
    """Row ``quality`` (1-based, possibly fractional) of per-level ``rows``: linear between the two
    neighbouring levels. Applied to logarithms (of gains, of lambdas), it is the geometric
    interpolation every fractional quality uses."""
    lower = min(math.floor(quality), len(rows) - 1)
    t = quality - lower
    return (1.0 - t) * rows[lower - 1] + t * rows[lower]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one S2CFormer variant.

    ``widths``/``depths``/``spatial`` describe the three block stages of the analysis transform
    (the synthesis transform mirrors them). ``lambdas`` are the rate points of the variable-rate
    model: quality level ``q`` (1-based) is trained at ``lambdas[q - 1]``.
    """

    name: str
    widths: tuple[int, int, int] = (128, 192, 256)
    depths: tuple[int, int, int] = (3, 3, 3)
    spatial: tuple[str, str, str] = ("sepconv", "sepconv", "sepconv")
    ffn: str = "mlp"
    ffn_ratio: float = 4.0
    kernel_size: int = 5
    window: int = 8
    latent_channels: int = 320
    hyper_channels: int = 192
    hyper_depth: int = 1
    hyper_ffn_ratio: float = 2.0
    context_widths: tuple[int, int] = (224, 128)
    lambdas: tuple[float, ...] = PAPER_LAMBDAS
    groups: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.groups:
            m = self.latent_channels
            object.__setattr__(self, "groups", (16, 16, 32, 64, m - 128))
        if sum(self.groups) != self.latent_channels or min(self.groups) <= 0:
            raise ValueError(
                f"{self.name}: channel groups {self.groups} must be positive and sum to "
                f"latent_channels={self.latent_channels}"
            )

    @property
    def num_qualities(self) -> int:
        return len(self.lambdas)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown model config fields: {', '.join(sorted(unknown))}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

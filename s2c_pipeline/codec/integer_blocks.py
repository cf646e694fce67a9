"""Fixed-point S2C blocks (separable conv, LayerNorm, MLP and gated FFNs) for the hyper synthesis of
the paper-size configs (``hyper_depth`` > 0), in the conventions of ``codec.integer``.

Beyond the integer convolutions, a block needs three nonlinear steps. Each is either exact on
integers or a fixed sequence of single IEEE-754 operations (+, -, *, /, sqrt), each correctly
rounded by the standard and applied element by element, so the same on every conforming CPU and GPU:

- LeakyReLU(0.01) becomes ``x`` or ``floor(41 * x / 4096)`` (slope 0.0100098): exact.
- GELU is a table of ``round(gelu(i / 4096) * 4096)`` for ``|i| <= 2**15`` (|x| <= 8), with ``x``
  above and 0 below (the error there is under 1e-14 in real units). The table is computed once on
  the CPU; ``_gelu_table`` refuses to build it if any entry lies within 1e-6 of a rounding tie, so
  any erf accurate to 1e-10 gives the same table.
- LayerNorm over C channels: ``mean = floor(sum / C)`` and ``var = sum(floor(d / 16)**2) / C``
  (sums of integers below 2**47, exact in any order), ``std = sqrt(var + eps')``, then
  ``floor(d / std * g + 1/2) + beta``, each a single correctly rounded operation.

Residual additions add integers and clamp. Window attention (softmax) has no counterpart here; a
model with it in h_s keeps format 1.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn

from s2c_pipeline.codec.blocks import GatedFFN, LayerNorm2d, MlpFFN, S2CBlock, SeparableConv
from s2c_pipeline.codec.integer import (
    ACT_FRAC_BITS,
    ACT_LIMIT,
    ONE,
    IntegerConv2d,
    IntegerNet,
    UnsupportedLayer,
)

LEAKY_NUMERATOR = 41  # LeakyReLU(0.01) ~ 41 / 4096
GELU_RANGE = 2**15  # the table covers |x| <= 8 in real units
VARIANCE_SHIFT = 4  # deviations are divided by 16 before squaring: sums stay below 2**47


def convert(module: nn.Module):
    """The fixed-point step for one non-Sequential module, or UnsupportedLayer."""
    if isinstance(module, S2CBlock):
        return IntegerS2CBlock(module)
    if isinstance(module, nn.LeakyReLU):
        if abs(module.negative_slope - 0.01) > 1e-9:
            raise UnsupportedLayer(f"LeakyReLU slope {module.negative_slope} (only 0.01 is integerized)")
        return IntegerLeakyReLU()
    if isinstance(module, nn.GELU):
        if module.approximate != "none":
            raise UnsupportedLayer("only the exact (erf) GELU is integerized")
        return IntegerGELU()
    if isinstance(module, LayerNorm2d):
        return IntegerLayerNorm(module)
    raise UnsupportedLayer(
        f"{type(module).__name__} has no exact fixed-point counterpart (supported: Conv2d, ReLU, "
        "PixelShuffle, LeakyReLU(0.01), GELU, LayerNorm2d, S2C blocks with separable convs); this model "
        "codes its streams with the float64 path (format 1)"
    )


class IntegerLeakyReLU:
    def __call__(self, x: Tensor) -> Tensor:
        return torch.where(x >= 0, x, torch.floor(x * (LEAKY_NUMERATOR / ONE)))

    def to(self, device: torch.device) -> IntegerLeakyReLU:
        return self


@functools.lru_cache(maxsize=1)
def _gelu_table() -> Tensor:
    values = []
    for i in range(-GELU_RANGE, GELU_RANGE + 1):
        x = i / ONE
        scaled = 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0))) * ONE
        if abs(scaled - math.floor(scaled) - 0.5) < 1e-6:
            raise RuntimeError(f"GELU table entry {i} is too close to a rounding tie to be portable")
        values.append(math.floor(scaled + 0.5))
    return torch.tensor(values, dtype=torch.float64)


class IntegerGELU:
    def __init__(self, table: Tensor | None = None) -> None:
        self.table = _gelu_table() if table is None else table

    def __call__(self, x: Tensor) -> Tensor:
        index = (x.clamp(-GELU_RANGE, GELU_RANGE) + GELU_RANGE).long()
        inside = self.table[index]
        return torch.where(x > GELU_RANGE, x, torch.where(x < -GELU_RANGE, torch.zeros_like(x), inside))

    def to(self, device: torch.device) -> IntegerGELU:
        return IntegerGELU(self.table.to(device))


class IntegerLayerNorm:
    def __init__(self, norm: LayerNorm2d, device: torch.device | str = "cpu") -> None:
        weight = norm.weight.detach().to("cpu", torch.float64)
        # d / std is normalised deviation * 2**VARIANCE_SHIFT; g brings it to 2**-12 units with gamma
        self.gain = (weight * 2.0 ** (ACT_FRAC_BITS - VARIANCE_SHIFT)).reshape(1, -1, 1, 1).to(device)
        self.beta = torch.round(norm.bias.detach().to("cpu", torch.float64) * ONE).reshape(1, -1, 1, 1)
        self.beta = self.beta.to(device)
        # eps in the units of var: (2**-(12 - VARIANCE_SHIFT))**2
        self.eps = norm.eps * 2.0 ** (2 * (ACT_FRAC_BITS - VARIANCE_SHIFT))

    def __call__(self, x: Tensor) -> Tensor:
        channels = x.shape[1]
        mean = torch.floor(x.sum(dim=1, keepdim=True) / channels)
        d = x - mean
        small = torch.floor(d * 2.0**-VARIANCE_SHIFT)
        std = torch.sqrt((small * small).sum(dim=1, keepdim=True) / channels + self.eps)
        out = torch.floor((d / std) * self.gain + 0.5) + self.beta
        return out.clamp_(-ACT_LIMIT, ACT_LIMIT)

    def to(self, device: torch.device) -> IntegerLayerNorm:
        moved = object.__new__(IntegerLayerNorm)
        moved.gain, moved.beta, moved.eps = self.gain.to(device), self.beta.to(device), self.eps
        return moved


class _IntegerGatedFFN:
    def __init__(self, ffn: GatedFFN) -> None:
        self.project_in = IntegerConv2d.from_conv(ffn.project_in)
        self.project_out = IntegerConv2d.from_conv(ffn.project_out)
        self.gelu = IntegerGELU()

    def __call__(self, x: Tensor) -> Tensor:
        gate, value = self.project_in(x).chunk(2, dim=1)
        # a product of two 2**-12 integers is at 2**-24 and below 2**44: exact, then back to 2**-12
        product = torch.floor(self.gelu(gate) * value * (1.0 / ONE) + 0.5)
        return self.project_out(product.clamp_(-ACT_LIMIT, ACT_LIMIT))

    def to(self, device: torch.device) -> _IntegerGatedFFN:
        moved = object.__new__(_IntegerGatedFFN)
        moved.project_in, moved.project_out = self.project_in.to(device), self.project_out.to(device)
        moved.gelu = self.gelu.to(device)
        return moved

    @property
    def convs(self) -> list[IntegerConv2d]:
        return [self.project_in, self.project_out]


class IntegerS2CBlock:
    """``x + spatial(x)`` then ``x + ffn(norm(x))`` for separable-conv (or identity) blocks."""

    def __init__(self, block: S2CBlock) -> None:
        if block.spatial is not None and not isinstance(block.spatial, SeparableConv):
            raise UnsupportedLayer(
                f"{type(block.spatial).__name__} blocks have no exact fixed-point counterpart (softmax); "
                "this model codes its streams with the float64 path (format 1)"
            )
        self.spatial = IntegerNet(block.spatial.body) if block.spatial is not None else None
        self.norm = IntegerLayerNorm(block.norm)
        if isinstance(block.ffn, MlpFFN):
            self.ffn = IntegerNet(block.ffn.body)
        elif isinstance(block.ffn, GatedFFN):
            self.ffn = _IntegerGatedFFN(block.ffn)
        else:
            raise UnsupportedLayer(f"{type(block.ffn).__name__} has no fixed-point counterpart")

    def __call__(self, x: Tensor) -> Tensor:
        if self.spatial is not None:
            x = (x + self.spatial(x)).clamp_(-ACT_LIMIT, ACT_LIMIT)
        return (x + self.ffn(self.norm(x))).clamp_(-ACT_LIMIT, ACT_LIMIT)

    def to(self, device: torch.device) -> IntegerS2CBlock:
        moved = object.__new__(IntegerS2CBlock)
        moved.spatial = self.spatial.to(device) if self.spatial is not None else None
        moved.norm, moved.ffn = self.norm.to(device), self.ffn.to(device)
        return moved

    @property
    def convs(self) -> list[IntegerConv2d]:
        return [*(self.spatial.convs if self.spatial is not None else []), *self.ffn.convs]

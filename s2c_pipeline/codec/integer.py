"""Fixed-point copies of the probability-path networks, exact by construction on any device.

Every activation is an integer ``a`` standing for ``a * 2**-ACT_FRAC_BITS``, clamped to
``|a| <= ACT_LIMIT``. Every convolution's weights are integers ``w`` standing for ``w * 2**-s_o``,
with one power-of-two exponent ``s_o`` per output channel chosen so that ``|w| <= 2**15``; biases
are integers at the accumulator's scale ``2**-(ACT_FRAC_BITS + s_o)``. A convolution's output is
then ``acc = sum(w * a) + b``, a sum of integer products, and is brought back to the activation
scale with ``floor(acc * 2**-s_o + 1/2)`` and the clamp (the 1/2 is folded into the bias).

Why that is exact everywhere: the tensors hold integers in float64, whose 53-bit significand
represents every integer below ``2**53``. Each product, and each partial sum of any subset of the
products, is bounded in magnitude by ``bound = ACT_LIMIT * max_o sum_i |w[o, i]| + max_o |b[o]|``
(``IntegerConv2d.bound``; the worst-case sum of every layer of the bundled weights is in
``docs/codec.md``). With ``bound < EXACT_LIMIT = 2**50``, no addition ever rounds, so the sum is the
same integer in any order the convolution algorithm picks: any thread count, memory layout, batch
size or BLAS kernel. On CUDA the convolutions bypass cuDNN, whose algorithm choice includes ones
that are not sums of products (Winograd, FFT), for PyTorch's own im2col and GEMM; as a second
guard, their result is rounded to the nearest integer before the shift. Scaling by a
power of two, adding 1/2, flooring, clamping and ReLU are exact on such integers. Nothing here is
rounded in a way that depends on the hardware.

float32 is faster on CPUs but holds integers exactly only below ``2**24``; with the bundled weights
(per-channel L1 norms of 10 to 65 against largest weights of 0.1 to 1) that would leave about nine
bits for the activations, too coarse for the latents, so the arithmetic is float64.

The integer weights are a pure function of the checkpoint's float16 weights (multiplications by
powers of two and rounding, done on the CPU), so they are folded at load time, identically on every
machine, and the checkpoint and its weights id stay as they are. Changing this derivation changes
what a stream means: it needs a new bitstream format version.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from compressai.layers import MaskedConv2d
from torch import Tensor, nn

ACT_FRAC_BITS = 12
"""Activations, latents and means are multiples of 2**-12."""
ACT_LIMIT = 2**22
"""Activations are clamped to [-2**22, 2**22], i.e. +-1024 in real units."""
WEIGHT_BITS = 15
"""Integer weights satisfy |w| <= 2**15 (16-bit signed, with the rounding of the largest one)."""
EXACT_LIMIT = 2**50
"""Every accumulation stays below this: float64 integers are exact to 2**53, with margin."""
ONE = float(2**ACT_FRAC_BITS)
IM2COL_BYTES = 24 << 20
"""A CPU convolution's im2col matrix per row band stays under this (measured best near L3's size)."""


class UnsupportedLayer(ValueError):
    """A probability-path module this fixed-point path has no exact counterpart for."""


@dataclass(frozen=True)
class IntegerConv2d:
    """A Conv2d with integer weights and per-output-channel power-of-two scales."""

    weight: Tensor  # (O, I/groups, kh, kw) float64 holding integers
    bias: Tensor  # (O,) float64 integers at the accumulator's scale
    inverse_scale: Tensor  # (O, 1, 1) float64: 2**-s_o
    stride: int
    padding: int
    groups: int
    bound: int  # the largest |partial sum| any input can produce

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> IntegerConv2d:
        if conv.dilation != (1, 1) or conv.padding_mode != "zeros" or len(set(conv.padding)) != 1:
            raise UnsupportedLayer(
                f"{conv}: only zero-padded, undilated, square-padded convs are integerized"
            )
        weight = conv.weight.detach().to("cpu", torch.float64)
        if isinstance(conv, MaskedConv2d):
            weight = weight * conv.mask.detach().to("cpu", torch.float64)
        bias = (
            conv.bias.detach().to("cpu", torch.float64)
            if conv.bias is not None
            else torch.zeros(weight.shape[0], dtype=torch.float64)
        )
        if not (torch.isfinite(weight).all() and torch.isfinite(bias).all()):
            raise UnsupportedLayer(f"{conv}: weights are not finite")
        shifts = []
        for w_o, b_o in zip(weight.abs().flatten(1).amax(dim=1).tolist(), bias.abs().tolist(), strict=True):
            # m = f * 2**e with 0.5 <= f < 1 (frexp): the largest weight becomes at most 2**15, and a
            # bias beside tiny weights is kept under 2**47 at the accumulator's scale.
            shift = WEIGHT_BITS - (math.frexp(w_o)[1] if w_o > 0 else 0)
            if b_o > 0:
                shift = min(shift, 47 - ACT_FRAC_BITS - math.frexp(b_o)[1])
            if shift < 1:
                raise UnsupportedLayer(f"{conv}: a bias of {b_o:g} is too large for the fixed-point path")
            shifts.append(shift)
        shift = torch.tensor(shifts, dtype=torch.float64)
        w_int = torch.round(weight * torch.exp2(shift)[:, None, None, None])
        # The bias also carries the 1/2 of the rounding shift: floor((acc + 2**(s-1)) * 2**-s).
        b_int = torch.round(bias * torch.exp2(shift + ACT_FRAC_BITS)) + torch.exp2(shift - 1)
        bound = int(ACT_LIMIT * w_int.abs().flatten(1).sum(1).max().item() + b_int.abs().max().item())
        if bound >= EXACT_LIMIT:
            raise UnsupportedLayer(f"{conv}: worst-case sum {bound} is not below 2**50")
        return cls(
            weight=w_int,
            bias=b_int,
            inverse_scale=torch.exp2(-shift)[:, None, None],
            stride=conv.stride[0],
            padding=conv.padding[0],
            groups=conv.groups,
            bound=bound,
        )

    def to(self, device: torch.device) -> IntegerConv2d:
        return IntegerConv2d(
            self.weight.to(device),
            self.bias.to(device),
            self.inverse_scale.to(device),
            self.stride,
            self.padding,
            self.groups,
            self.bound,
        )

    def __call__(self, x: Tensor) -> Tensor:
        if x.device.type == "cpu":  # CPU float64 convolutions are plain sums of products
            acc = self._sum_in_row_bands(x)
        else:  # a guard against algorithms that are not
            acc = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups).round_()
        return acc.mul_(self.inverse_scale).floor_().clamp_(-ACT_LIMIT, ACT_LIMIT)

    def _sum_in_row_bands(self, x: Tensor) -> Tensor:
        """The convolution on the CPU, a band of output rows at a time when that keeps its im2col
        matrix (input channels x k*k x band positions) under ``IM2COL_BYTES``: the whole-image
        matrix of a 5x5 context conv at 2048x1080 is hundreds of MB, and bands that stay in cache
        are faster (``benchmarks/decode_breakdown.py``). Each output is still one sum of the same
        products, so the result is the same integer (the module docstring's argument)."""
        n, c, h, w = x.shape
        k = self.weight.shape[-1]
        per_row = n * c * k * k * (w + 2 * self.padding) * x.element_size()
        rows = max(1, IM2COL_BYTES // per_row)
        if k == 1 or self.stride != 1 or self.groups != 1 or 2 * self.padding != k - 1 or rows >= h:
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups)
        p = self.padding
        padded = F.pad(x, (p, p, p, p))
        out = x.new_empty((n, self.weight.shape[0], h, w))
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            out[:, :, r0:r1] = F.conv2d(padded[:, :, r0 : r1 + 2 * p], self.weight, self.bias)
        return out


class _Relu:
    def __call__(self, x: Tensor) -> Tensor:
        return x.clamp_min(0)

    def to(self, device: torch.device) -> _Relu:
        return self


@dataclass(frozen=True)
class _PixelShuffle:
    factor: int

    def __call__(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(x, self.factor)

    def to(self, device: torch.device) -> _PixelShuffle:
        return self


class IntegerNet:
    """The fixed-point twin of a probability-path network: an ``nn.Sequential`` (nested allowed) of
    ``Conv2d``, ``ReLU``, ``PixelShuffle`` and the S2C blocks of ``codec.integer_blocks``."""

    def __init__(self, module: nn.Module, device: torch.device | str = "cpu") -> None:
        self.steps: list = []
        self._convert(module)
        self.to(device)

    def _convert(self, module: nn.Module) -> None:
        from s2c_pipeline.codec import integer_blocks  # they build IntegerNets themselves

        if isinstance(module, nn.Sequential):
            for child in module:
                self._convert(child)
        elif isinstance(module, nn.Conv2d):
            self.steps.append(IntegerConv2d.from_conv(module))
        elif isinstance(module, nn.ReLU):
            self.steps.append(_Relu())
        elif isinstance(module, nn.PixelShuffle):
            self.steps.append(_PixelShuffle(module.upscale_factor))
        elif isinstance(module, nn.Identity):
            pass
        else:
            self.steps.append(integer_blocks.convert(module))

    def to(self, device: torch.device | str) -> IntegerNet:
        self.steps = [step.to(torch.device(device)) for step in self.steps]
        return self

    @property
    def convs(self) -> list[IntegerConv2d]:
        """Every integer convolution inside, in order (for the bound table)."""
        found: list[IntegerConv2d] = []
        for step in self.steps:
            if isinstance(step, IntegerConv2d):
                found.append(step)
            elif hasattr(step, "convs"):
                found.extend(step.convs)
        return found

    def __call__(self, x: Tensor) -> Tensor:
        """x: float64 integers at scale 2**-ACT_FRAC_BITS, |x| <= ACT_LIMIT; same for the result."""
        guard = torch.backends.cudnn.flags(enabled=False) if x.device.type == "cuda" else nullcontext()
        with guard:
            return self._run(x)

    def _run(self, x: Tensor) -> Tensor:
        for step in self.steps:
            x = step(x)
        return x

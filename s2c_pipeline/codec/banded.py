"""The transforms on the CPU in float32, a band of rows at a time: format 2's g_s there, and g_a.

Why bands: run module by module, each S2C block writes its intermediates at full size (at the
paper-size widths a 2048x1080 image's first stage widens 128 channels to 512 over 1024x544
positions, over 1 GB a tensor) and reads them back from memory. Per-position work (LayerNorm, the
FFN, the residual add), the separable conv (whose depthwise kernel needs only ``k // 2`` rows of
margin) and window attention (whose windows read only their own rows, so a band is a whole number
of window rows) can instead run over a band of a few thousand positions that stays in cache.

Which kernels, and why the pixels do not depend on the thread count: 1x1 convolutions, including
attention's projections, are BLAS GEMMs (``torch.addmm``) of the weights and the band's channels
x positions matrix, whose reduction runs over the input channels inside one kernel call however
many threads share the positions; kxk and depthwise convolutions are oneDNN's direct convolutions
on NCHW tensors; attention inside a window is one ``scaled_dot_product_attention`` call per window
and head. Each gave identical values with 1, 2, 3 and 4 threads, where oneDNN's 1x1 kernels did
not (``tests/test_banded.py``, ``benchmarks/determinism.py``). Band edges depend only on
the image size, so an encoder's verify decode and a later decode on the same CPU build run the
same kernels on the same shapes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from s2c_pipeline.codec.blocks import (
    GatedFFN,
    LayerNorm2d,
    MlpFFN,
    S2CBlock,
    SeparableConv,
    WindowAttention,
)

BAND_POSITIONS = 8192
"""Positions (rows x width) per band: a 512-channel float32 intermediate of a band is 16 MB."""


class _Pointwise:
    """A 1x1 convolution as one GEMM over a (channels, positions) matrix."""

    def __init__(self, conv: nn.Conv2d) -> None:
        self.weight = conv.weight.detach().reshape(conv.out_channels, conv.in_channels).contiguous()
        self.bias = None if conv.bias is None else conv.bias.detach().reshape(-1, 1).contiguous()

    def __call__(self, x: Tensor) -> Tensor:
        if self.bias is None:
            return torch.mm(self.weight, x)
        return torch.addmm(self.bias, self.weight, x)


def _layer_norm(x: Tensor, norm: LayerNorm2d) -> Tensor:
    """LayerNorm2d's arithmetic on a (channels, positions) matrix."""
    mean = x.mean(dim=0, keepdim=True)
    d = x - mean
    var = (d * d).mean(dim=0, keepdim=True)
    return (d / torch.sqrt(var + norm.eps)) * norm.weight.detach()[:, None] + norm.bias.detach()[:, None]


class _Ffn:
    def __init__(self, ffn: nn.Module) -> None:
        if isinstance(ffn, MlpFFN):
            conv_in, act, conv_out = ffn.body
            if not isinstance(act, nn.GELU) or act.approximate != "none":
                raise TypeError(f"unexpected MLP activation {act}")
            self.gated = False
            self.project_in, self.project_out = _Pointwise(conv_in), _Pointwise(conv_out)
        elif isinstance(ffn, GatedFFN):
            self.gated = True
            self.project_in, self.project_out = _Pointwise(ffn.project_in), _Pointwise(ffn.project_out)
        else:
            raise TypeError(f"no banded form for {type(ffn).__name__}")

    def __call__(self, x: Tensor) -> Tensor:
        hidden = self.project_in(x)
        if self.gated:
            gate, value = hidden.chunk(2, dim=0)
            return self.project_out(F.gelu(gate).mul_(value))
        return self.project_out(F.gelu(hidden))


class _SeparableConv:
    def __init__(self, spatial: SeparableConv) -> None:
        pw_in, act, depthwise, pw_out = spatial.body
        self.pw_in, self.pw_out = _Pointwise(pw_in), _Pointwise(pw_out)
        self.slope = act.negative_slope
        self.dw_weight = depthwise.weight.detach()
        self.dw_bias = None if depthwise.bias is None else depthwise.bias.detach()
        self.margin = depthwise.kernel_size[0] // 2
        self.groups = depthwise.groups

    def add_to(self, x: Tensor, rows: int) -> Tensor:
        """x + body(x) as a new tensor; each band reads ``margin`` rows of x above and below."""
        _, c, h, w = x.shape
        out = torch.empty_like(x)
        p = self.margin
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            lo, hi = max(0, r0 - p), min(h, r1 + p)
            t = self.pw_in(x[0, :, lo:hi].reshape(c, -1))
            t = F.leaky_relu_(t, self.slope).reshape(1, c, hi - lo, w)
            t = F.pad(t, (0, 0, p - (r0 - lo), p - (hi - r1)))  # the image's own zero rows
            t = F.conv2d(t, self.dw_weight, self.dw_bias, 1, (0, p), 1, self.groups)
            band = self.pw_out(t.reshape(c, -1)).reshape(c, r1 - r0, w)
            torch.add(x[0, :, r0:r1], band, out=out[0, :, r0:r1])
        return out


class _WindowAttention:
    """WindowAttention over bands of whole windows: a band's windows read only its own rows, so the
    band is updated in place. Like the module, q, k and v are zero-padded to whole windows."""

    def __init__(self, attention: WindowAttention) -> None:
        self.norm = attention.norm
        self.qkv, self.proj = _Pointwise(attention.qkv), _Pointwise(attention.proj)
        self.window, self.heads = attention.window, attention.heads

    def add_to(self, x: Tensor, rows: int) -> Tensor:
        _, c, h, w = x.shape
        win, heads = self.window, self.heads
        rows = win * max(1, rows // win)
        wp = w + (-w) % win
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            band = x[0, :, r0:r1].reshape(c, -1)  # a view: updated in place
            qkv = self.qkv(_layer_norm(band, self.norm)).reshape(3 * c, r1 - r0, w)
            hp = (r1 - r0) + (-(r1 - r0)) % win
            if hp != r1 - r0 or wp != w:
                qkv = F.pad(qkv, (0, wp - w, 0, hp - (r1 - r0)))
            # (3C, Hp, Wp) -> (3, windows, heads, win*win, head_dim), as the module orders them
            qkv = qkv.view(3, heads, c // heads, hp // win, win, wp // win, win)
            qkv = qkv.permute(0, 3, 5, 1, 4, 6, 2).reshape(3, -1, heads, win * win, c // heads)
            out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
            out = out.view(hp // win, wp // win, heads, win, win, c // heads)
            out = out.permute(2, 5, 0, 3, 1, 4).reshape(c, hp, wp)[:, : r1 - r0, :w]
            band.add_(self.proj(out.reshape(c, -1)))
        return x


class _Block:
    def __init__(self, block: S2CBlock) -> None:
        self.attention = None
        self.separable = None
        if isinstance(block.spatial, SeparableConv):
            self.separable = _SeparableConv(block.spatial)
        elif isinstance(block.spatial, WindowAttention):
            self.attention = _WindowAttention(block.spatial)
        elif block.spatial is not None:
            raise TypeError(f"no banded form for {type(block.spatial).__name__}")
        self.norm = block.norm
        self.ffn = _Ffn(block.ffn)

    def __call__(self, x: Tensor) -> Tensor:
        _, c, h, w = x.shape
        rows = max(1, BAND_POSITIONS // w)
        if self.separable is not None:
            x = self.separable.add_to(x, rows)
        elif self.attention is not None:
            x = self.attention.add_to(x, rows)
        for r0 in range(0, h, rows):
            band = x[0, :, r0 : min(h, r0 + rows)].reshape(c, -1)  # a view: updated in place
            band.add_(self.ffn(_layer_norm(band, self.norm)))
        return x


class BandedTransform:
    """Callable twin of a float32 CPU transform (``transforms.synthesis_transform`` or
    ``analysis_transform``: S2C blocks between other modules), one image at a time."""

    def __init__(self, transform: nn.Sequential) -> None:
        self.steps = [_Block(m) if isinstance(m, S2CBlock) else m for m in transform]

    @torch.no_grad()
    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[0] != 1 or x.dtype != torch.float32 or x.device.type != "cpu":
            raise ValueError(f"expected one float32 CPU tensor (1, C, h, w), got {tuple(x.shape)} {x.dtype}")
        x = x.clone(memory_format=torch.contiguous_format)  # blocks update their input in place
        for step in self.steps:
            x = step(x).contiguous()
        return x

"""The S2CFormer block: ``x + spatial(x)`` then ``x + ffn(norm(x))``.

The paper's claim is that channel aggregation (the FFN) does most of the work, so the spatial
operator is a config choice: ``identity``, ``sepconv`` or ``winattn``. Block internals follow the
first author's later open code (CMIC, GLIC); see design.md section 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SPATIAL_OPS = ("identity", "sepconv", "winattn")
FFN_TYPES = ("mlp", "gated")


class LayerNorm2d(nn.Module):
    """Channel-wise LayerNorm for NCHW tensors (normalises over C at every pixel)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class SeparableConv(nn.Module):
    """1x1 -> LeakyReLU -> depthwise kxk -> 1x1, with its own residual (GLIC's DepthConv).

    Returns only the residual branch; the enclosing block adds it to its input, so the operator
    carries an inner skip as in the reference code.
    """

    def __init__(self, dim: int, kernel_size: int = 5) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, dim, 1),
            nn.LeakyReLU(0.01),
            nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim),
            nn.Conv2d(dim, dim, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class WindowAttention(nn.Module):
    """Pre-norm multi-head self-attention inside non-overlapping windows (no shift).

    Inputs of any size are zero-padded to a multiple of the window and cropped back, so the model
    accepts every image whose padded size is a multiple of the stride.
    """

    def __init__(self, dim: int, window: int = 8, head_dim: int = 32) -> None:
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"winattn needs a width divisible by {head_dim}, got {dim}")
        self.window = window
        self.heads = dim // head_dim
        self.norm = LayerNorm2d(dim)
        self.qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        win = self.window
        pad_h, pad_w = (-h) % win, (-w) % win
        qkv = self.qkv(self.norm(x))
        if pad_h or pad_w:
            qkv = F.pad(qkv, (0, pad_w, 0, pad_h))
        hp, wp = h + pad_h, w + pad_w
        # (B, 3*C, Hp, Wp) -> (3, B*nWin, heads, win*win, head_dim)
        qkv = qkv.view(b, 3, self.heads, c // self.heads, hp // win, win, wp // win, win)
        qkv = qkv.permute(1, 0, 4, 6, 2, 5, 7, 3).reshape(3, -1, self.heads, win * win, c // self.heads)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        out = out.view(b, hp // win, wp // win, self.heads, win, win, c // self.heads)
        out = out.permute(0, 3, 6, 1, 4, 2, 5).reshape(b, c, hp, wp)[:, :, :h, :w]
        return self.proj(out)


class MlpFFN(nn.Module):
    """1x1 -> GELU -> 1x1 channel aggregation."""

    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        hidden = max(1, int(dim * ratio))
        self.body = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.GELU(), nn.Conv2d(hidden, dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class GatedFFN(nn.Module):
    """GEGLU with 1x1 convs and no bias, as in GLIC/CMIC's GatedFFN."""

    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        hidden = max(1, int(dim * ratio))
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=False)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.project_in(x).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


def make_spatial(kind: str, dim: int, *, kernel_size: int, window: int) -> nn.Module | None:
    if kind == "identity":
        return None
    if kind == "sepconv":
        return SeparableConv(dim, kernel_size)
    if kind == "winattn":
        return WindowAttention(dim, window)
    raise ValueError(f"unknown spatial operator {kind!r}; choose one of {', '.join(SPATIAL_OPS)}")


def make_ffn(kind: str, dim: int, ratio: float) -> nn.Module:
    if kind == "mlp":
        return MlpFFN(dim, ratio)
    if kind == "gated":
        return GatedFFN(dim, ratio)
    raise ValueError(f"unknown FFN type {kind!r}; choose one of {', '.join(FFN_TYPES)}")


class S2CBlock(nn.Module):
    """``x = x + spatial(x)``; ``x = x + ffn(norm(x))``. Shape-preserving (B, C, H, W)."""

    def __init__(
        self,
        dim: int,
        *,
        spatial: str = "sepconv",
        ffn: str = "mlp",
        ffn_ratio: float = 4.0,
        kernel_size: int = 5,
        window: int = 8,
    ) -> None:
        super().__init__()
        self.spatial = make_spatial(spatial, dim, kernel_size=kernel_size, window=window)
        self.norm = LayerNorm2d(dim)
        self.ffn = make_ffn(ffn, dim, ffn_ratio)

    def forward(self, x: Tensor) -> Tensor:
        if self.spatial is not None:
            x = x + self.spatial(x)
        return x + self.ffn(self.norm(x))

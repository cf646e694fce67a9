"""ELIC-style SCCTX entropy model assembled from CompressAI's latent codecs.

Uneven channel groups (``config.groups``) are coded one after another; inside each group a
checkerboard splits anchors from non-anchors. Everything that turns decoded symbols into CDF
indexes lives here, which is why the coding path (see ``model.py``) runs it in float64 and snaps
the Gaussian means to a fixed grid: both sides then rebuild identical ``y_hat`` values and indexes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from compressai.entropy_models import EntropyBottleneck
from compressai.latent_codecs import (
    ChannelGroupsLatentCodec,
    CheckerboardLatentCodec,
    GaussianConditionalLatentCodec,
    HyperLatentCodec,
    HyperpriorLatentCodec,
)
from compressai.layers import CheckerboardMaskedConv2d, sequential_channel_ramp
from compressai.models.utils import conv
from torch import Tensor, nn

from s2c_pipeline.codec.config import ModelConfig
from s2c_pipeline.codec.rans import decode_tensor
from s2c_pipeline.codec.transforms import hyper_analysis, hyper_synthesis

# Means are snapped to multiples of 2**-6 when coding. Values on this grid are exact in float32 and
# float64, so a decoded y_hat is the same number on every device; the rate cost is negligible.
MEAN_GRID = 2.0**-6


class GridGaussianConditionalLatentCodec(GaussianConditionalLatentCodec):
    """Gaussian conditional whose coding path uses grid-snapped means."""

    def _coding_params(self, ctx_params: Tensor) -> tuple[Tensor, Tensor]:
        scales, means = self._chunk(self.entropy_parameters(ctx_params))
        return scales, torch.round(means / MEAN_GRID) * MEAN_GRID

    def compress(self, y: Tensor, ctx_params: Tensor) -> dict[str, Any]:
        scales, means = self._coding_params(ctx_params)
        indexes = self.gaussian_conditional.build_indexes(scales)
        strings = self.gaussian_conditional.compress(y, indexes, means)
        symbols = self.gaussian_conditional.quantize(y, "symbols", means)
        y_hat = symbols.to(means.dtype) + means
        return {"strings": [strings], "shape": y.shape[2:4], "y_hat": y_hat}

    def decompress(
        self, strings: list[list[bytes]], shape: tuple[int, int], ctx_params: Tensor, **kwargs: Any
    ):
        (y_strings,) = strings
        scales, means = self._coding_params(ctx_params)
        indexes = self.gaussian_conditional.build_indexes(scales)
        y_hat = decode_tensor(self.gaussian_conditional, y_strings, indexes, means)
        return {"y_hat": y_hat}


def likelihood_bits(likelihoods: dict[str, Tensor]) -> Tensor:
    """(B,) bits the entropy model's likelihoods cost each image of a batch (float32)."""
    nats = sum(-torch.log(lik.float()).sum(dim=tuple(range(1, lik.dim()))) for lik in likelihoods.values())
    return nats / math.log(2)


def _channel_context(cfg: ModelConfig, k: int) -> nn.Module:
    hidden1, hidden2 = cfg.context_widths
    return nn.Sequential(
        conv(sum(cfg.groups[:k]), hidden1, kernel_size=5, stride=1),
        nn.ReLU(inplace=True),
        conv(hidden1, hidden2, kernel_size=5, stride=1),
        nn.ReLU(inplace=True),
        conv(hidden2, cfg.groups[k] * 2, kernel_size=5, stride=1),
    )


def _param_aggregation(cfg: ModelConfig, k: int) -> nn.Module:
    g, n = cfg.groups[k], cfg.hyper_channels
    return sequential_channel_ramp(
        g * 2 + (k > 0) * g * 2 + n * 2,
        g * 2,
        min_ch=n * 2,
        num_layers=3,
        interp="linear",
        make_layer=nn.Conv2d,
        make_act=lambda: nn.ReLU(inplace=True),
        kernel_size=1,
        stride=1,
        padding=0,
    )


def build_latent_codec(cfg: ModelConfig) -> HyperpriorLatentCodec:
    groups = list(cfg.groups)
    scctx = {
        f"y{k}": CheckerboardLatentCodec(
            latent_codec={"y": GridGaussianConditionalLatentCodec(quantizer="ste")},
            context_prediction=CheckerboardMaskedConv2d(g, g * 2, kernel_size=5, stride=1, padding=2),
            entropy_parameters=_param_aggregation(cfg, k),
        )
        for k, g in enumerate(groups)
    }
    return HyperpriorLatentCodec(
        latent_codec={
            "y": ChannelGroupsLatentCodec(
                groups=groups,
                channel_context={f"y{k}": _channel_context(cfg, k) for k in range(1, len(groups))},
                latent_codec=scctx,
            ),
            "hyper": HyperLatentCodec(
                entropy_bottleneck=EntropyBottleneck(cfg.hyper_channels),
                h_a=hyper_analysis(cfg),
                h_s=hyper_synthesis(cfg),
                quantizer="ste",
            ),
        }
    )

"""Rate-distortion loss for the variable-rate model: per-sample lambda * 255^2 * MSE + bpp."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from s2c_pipeline.codec.entropy import likelihood_bits


@dataclass(frozen=True)
class RDLoss:
    loss: Tensor  # scalar, mean over the batch
    bpp: Tensor  # (B,)
    mse: Tensor  # (B,)

    @property
    def psnr(self) -> Tensor:
        return -10 * torch.log10(self.mse.clamp_min(1e-10))


def rate_distortion(x: Tensor, out: dict, lambdas: Tensor) -> RDLoss:
    """``lambdas``: (B,) float, the rate point of each sample."""
    _b, _, h, w = x.shape
    bpp = likelihood_bits(out["likelihoods"]) / (h * w)
    mse = (out["x_hat"].float() - x).pow(2).mean(dim=(1, 2, 3))
    loss = (lambdas * 255**2 * mse + bpp).mean()
    return RDLoss(loss, bpp.detach(), mse.detach())

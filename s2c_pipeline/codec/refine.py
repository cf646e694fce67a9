"""Encoder-side latent refinement: spend encode time to lower a stream's rate-distortion cost.

The analysis transform g_a gives a latent in one pass, but not the latent that this decoder and
entropy model would score best. Refinement starts from g_a's latent and takes a few Adam steps on the
image's own rate-distortion cost, ``lambda * 255^2 * MSE + bpp``, at the quality's lambda. Rounding
is hard in the forward pass (the rate is that of the symbols the coder will write, the
reconstruction is the decoder's) and passed straight through in the backward pass. The lowest-cost
iterate is kept, and g_a's own latent counts as iterate 0, so refinement never raises the cost it
measures (the coder's float64 path, with its snapped means, can still differ from it by a little).

Only the encoder changes: the stream is an ordinary stream of the same weights, and any decoder
reads it. The price is time: each step runs the synthesis transform and the entropy model forward
and backward, so 30 steps make a CPU encode about 60 times slower (docs/codec.md).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from compressai.entropy_models import EntropyModel
from torch import Tensor, nn

from s2c_pipeline.codec.config import between_levels
from s2c_pipeline.codec.entropy import likelihood_bits

# From benchmarks/refine_tuning.py on three training photos, never the evaluation photos
# (benchmarks/results/refine_tuning.json): its fit with the stage-8 weights, 0.0618 * (lambda /
# top) ** 1.10, rounded. (Stage 5's weights gave 0.127 and 1.47, held at 0.1 and 1.5; with stage 8
# a top step of 0.1 gained nothing on two of the three photos at level 8.)
DEFAULT_REFINE_LR = 0.06
DEFAULT_LR_EXPONENT = 1.1


@dataclass(frozen=True)
class RefineSettings:
    """``steps`` Adam steps (0: no refinement), decayed to zero along a cosine.

    ``lr`` is the step size, in units of the pre-gain latent, at the model's top quality; a quality
    trained at ``lambda`` steps ``(lambda / top lambda) ** lr_exponent`` times as far. Low
    qualities leave most symbols at zero, where straight-through gradients mislead and large steps
    only cost.
    """

    steps: int = 0
    lr: float = DEFAULT_REFINE_LR
    lr_exponent: float = DEFAULT_LR_EXPONENT
    on_step: Callable[[], object] | None = field(default=None, compare=False, repr=False)
    """Called after each step (``s2c encode`` advances its progress bar); not part of the settings."""

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"refine steps must be 0 or more, got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"refine lr must be positive, got {self.lr}")


def quality_lambda(lambdas: Sequence[float], quality: float) -> float:
    """The rate point of a possibly fractional quality: geometric between the neighbouring trained
    lambdas, as the gains are (``S2CFormer.gains``)."""
    return math.exp(between_levels([math.log(lam) for lam in lambdas], quality))


@dataclass(frozen=True)
class RefineOutcome:
    y: Tensor  # (B, M, h, w) pre-gain latents to code, detached
    initial_cost: tuple[float, ...]  # per image, g_a's latent
    final_cost: tuple[float, ...]  # per image, the kept latent
    best_step: tuple[int, ...]  # per image; 0 means g_a's latent was kept


def refine_latents(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    qualities: Sequence[float],
    image_sizes: Sequence[tuple[int, int]],
    settings: RefineSettings,
) -> RefineOutcome:
    """Refine ``y = g_a(x)`` for each image of the padded batch ``x`` (B, 3, H, W).

    ``image_sizes`` are the (height, width) of each image before padding: the padding is free to
    reconstruct badly, so only the image itself counts as distortion.
    """
    batch = x.shape[0]
    if not len(qualities) == len(image_sizes) == batch:
        raise ValueError(f"need one quality and one size per image, got a batch of {batch}")
    mask = _image_mask(x, image_sizes)
    pixels = mask.sum(dim=(1, 2, 3)) / 3
    lambdas = torch.tensor(
        [quality_lambda(model.config.lambdas, q) for q in qualities], dtype=torch.float32, device=x.device
    )
    step_scale = ((lambdas / max(model.config.lambdas)) ** settings.lr_exponent)[:, None, None, None]
    gains = [model.gains(q) for q in qualities]  # float64 on the CPU, as coding uses them
    gain, inverse = (
        torch.stack([g[k] for g in gains]).to(x.device, torch.float32)[:, :, None, None] for k in (0, 1)
    )
    latent = y.detach().float().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([latent], lr=settings.lr)  # Adam's step is about lr per element
    best = latent.detach().clone()
    best_cost = torch.full((batch,), math.inf, device=x.device)
    best_step = torch.zeros(batch, dtype=torch.long, device=x.device)
    initial = None
    with torch.enable_grad(), _straight_through_rounding(model.latent_codec):
        for step in range(settings.steps + 1):
            cost = _rd_cost(model, x, latent, gain, inverse, lambdas, mask, pixels)
            detached = cost.detach()
            if initial is None:
                initial = detached.clone()
            better = detached < best_cost
            best[better] = latent.detach()[better]
            best_cost = torch.where(better, detached, best_cost)
            best_step[better] = step
            if step == settings.steps:
                break
            for group in optimiser.param_groups:
                group["lr"] = settings.lr * 0.5 * (1 + math.cos(math.pi * step / settings.steps))
            (grad,) = torch.autograd.grad(cost.sum(), [latent])
            latent.grad = grad
            before = latent.detach().clone()
            optimiser.step()
            with torch.no_grad():  # scale each image's step by its lambda
                latent.copy_(before + (latent - before) * step_scale)
            if settings.on_step is not None:
                settings.on_step()
    return RefineOutcome(
        best,
        tuple(initial.tolist()),
        tuple(best_cost.tolist()),
        tuple(int(s) for s in best_step.tolist()),
    )


def _rd_cost(model, x, latent, gain, inverse, lambdas, mask, pixels) -> Tensor:
    out = model.latent_codec(latent * gain)
    x_hat = model.g_s(out["y_hat"] * inverse)
    bpp = likelihood_bits(out["likelihoods"]) / pixels
    mse = ((x_hat.clamp(0, 1) - x).pow(2) * mask).sum(dim=(1, 2, 3)) / (3 * pixels)
    return lambdas * 255**2 * mse + bpp


def _image_mask(x: Tensor, image_sizes: Sequence[tuple[int, int]]) -> Tensor:
    mask = torch.zeros_like(x)
    for i, (height, width) in enumerate(image_sizes):
        mask[i, :, :height, :width] = 1.0
    return mask


@contextlib.contextmanager
def _straight_through_rounding(module: nn.Module) -> Iterator[None]:
    """In eval mode the entropy models round ("dequantize"); give that rounding an identity
    gradient, on these instances only, for the duration."""
    patched = [m for m in module.modules() if isinstance(m, EntropyModel)]
    for entropy_model in patched:
        entropy_model.quantize = _straight_through(entropy_model.quantize)
    try:
        yield
    finally:
        for entropy_model in patched:
            del entropy_model.quantize


def _straight_through(quantize):
    def quantize_with_identity_gradient(inputs: Tensor, mode: str, means: Tensor | None = None) -> Tensor:
        outputs = quantize(inputs, mode, means)
        if mode != "dequantize":
            return outputs
        return inputs + (outputs - inputs).detach()

    return quantize_with_identity_gradient

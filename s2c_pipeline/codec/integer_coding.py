"""SCCTX entropy coding (format 2) through the fixed-point networks of ``codec.integer``.

The structure is that of ``entropy.build_latent_codec`` (hyperprior, channel groups, a two-pass
checkerboard inside each group, two strings per group then the z string), but everything that
decides a CDF index or a mean runs on integers:

- ``z_hat = symbol + median``, with the median rounded to the 2**-12 grid;
- hyper synthesis, channel context, checkerboard context and parameter aggregation are
  ``IntegerNet``s on the model's device;
- a scale picks its CDF by comparing integers: index = how many of the scale table's thresholds
  (``floor(t * 2**12)``, all but the last) lie strictly below it;
- means stay on the 2**-12 grid, ``y_hat = symbol + mean`` is exact, and the context networks see
  ``y_hat`` clamped to the activation range.

Only the encoder's side (h_a, the rounding of y to symbols, CompressAI's rANS encoder) uses floats,
and it only decides what is coded. The rANS decoder (``codec.rans``) runs on the CPU.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.latent_codecs import HyperpriorLatentCodec
from torch import Tensor

from s2c_pipeline.codec.integer import ACT_LIMIT, ONE, IntegerNet
from s2c_pipeline.codec.rans import decode_symbols

# (group k, pass i, CDF indexes, means in fixed point) -> symbols, on the model's device
SymbolStep = Callable[[int, int, Tensor, Tensor], Tensor]


def unembed(y: Tensor) -> Tensor:
    """(B, C, H, W) -> (2, B, C, H, W/2): anchors (even parity, as CompressAI's default), then the rest."""
    out = y.new_zeros((2, *y.shape[:3], y.shape[3] // 2))
    out[0, ..., 0::2, :] = y[..., 0::2, 0::2]
    out[0, ..., 1::2, :] = y[..., 1::2, 1::2]
    out[1, ..., 0::2, :] = y[..., 0::2, 1::2]
    out[1, ..., 1::2, :] = y[..., 1::2, 0::2]
    return out


def embed(y_: Tensor) -> Tensor:
    """The inverse of ``unembed``."""
    y = y_.new_zeros((*y_.shape[1:4], y_.shape[4] * 2))
    y[..., 0::2, 0::2] = y_[0, ..., 0::2, :]
    y[..., 1::2, 1::2] = y_[0, ..., 1::2, :]
    y[..., 0::2, 1::2] = y_[1, ..., 0::2, :]
    y[..., 1::2, 0::2] = y_[1, ..., 1::2, :]
    return y


class IntegerEntropyCoder:
    """The fixed-point probability path of one model, on ``device``; built from the model's float64
    coding copy (``S2CFormer._coding_model``), whose h_a and entropy tables it shares."""

    def __init__(self, coder: HyperpriorLatentCodec, groups: tuple[int, ...], device: torch.device) -> None:
        hyper = coder.latent_codec["hyper"]
        ys = coder.latent_codec["y"]
        self.coder = coder
        self.device = device
        self.groups = tuple(groups)
        self.bounds = list(itertools.accumulate(self.groups, initial=0))
        self.entropy_bottleneck: EntropyBottleneck = hyper.entropy_bottleneck
        self.h_s = IntegerNet(hyper.h_s, device)
        self.channel_context = [None] + [
            IntegerNet(ys.channel_context[f"y{k}"], device) for k in range(1, len(groups))
        ]
        self.context_prediction = [
            IntegerNet(ys.latent_codec[f"y{k}"].context_prediction, device) for k in range(len(groups))
        ]
        self.entropy_parameters = [
            IntegerNet(ys.latent_codec[f"y{k}"].entropy_parameters, device) for k in range(len(groups))
        ]
        self.conditionals: list[GaussianConditional] = [
            ys.latent_codec[f"y{k}"].latent_codec["y"].gaussian_conditional for k in range(len(groups))
        ]
        medians = self.entropy_bottleneck._get_medians().detach().to("cpu", torch.float64)
        self.z_median = torch.round(medians * ONE).reshape(1, -1, 1, 1).to(device)
        self.trace: list[tuple[Tensor, Tensor]] | None = None
        """When a list, every pass appends its (CDF indexes, means) (``benchmarks/determinism.py``)."""
        self.thresholds = [
            torch.floor(gc.scale_table[:-1].to("cpu", torch.float64) * ONE).contiguous().to(device)
            for gc in self.conditionals
        ]

    def nets(self) -> dict[str, IntegerNet]:
        named = {"h_s": self.h_s}
        for k in range(len(self.groups)):
            if self.channel_context[k] is not None:
                named[f"channel_context.y{k}"] = self.channel_context[k]
            named[f"context_prediction.y{k}"] = self.context_prediction[k]
            named[f"entropy_parameters.y{k}"] = self.entropy_parameters[k]
        return named

    # ---- the shared loop --------------------------------------------------------------------
    def _groups(self, z_symbols: Tensor, step: SymbolStep) -> Tensor:
        """y_hat (1, M, h, w) in fixed point (float64 integers, unclamped) from z's symbols."""
        z_hat = z_symbols.to(self.device, torch.float64) * ONE + self.z_median
        side = self.h_s(z_hat)
        _, _, h, w = side.shape
        y_hat = side.new_zeros((1, self.bounds[-1], h, w))
        for k, g in enumerate(self.groups):
            params = side
            if k > 0:
                previous = y_hat[:, : self.bounds[k]].clamp(-ACT_LIMIT, ACT_LIMIT)
                params = torch.cat([self.channel_context[k](previous), side], dim=1)
            params_ = unembed(params)
            halves = side.new_zeros((2, 1, g, h, w // 2))
            for i in (0, 1):
                if i == 0:
                    ctx = side.new_zeros((1, 2 * g, h, w // 2))
                else:
                    anchors = embed(halves.clamp(-ACT_LIMIT, ACT_LIMIT))
                    ctx = unembed(self.context_prediction[k](anchors))[1]
                scales, means = self.entropy_parameters[k](torch.cat([ctx, params_[i]], dim=1)).chunk(2, 1)
                indexes = torch.searchsorted(self.thresholds[k], scales.contiguous(), right=False)
                if self.trace is not None:
                    self.trace.append((indexes.to("cpu"), means.to("cpu")))
                symbols = step(k, i, indexes, means)
                halves[i] = symbols.to(self.device, torch.float64) * ONE + means
            y_hat[:, self.bounds[k] : self.bounds[k + 1]] = embed(halves)
        return y_hat

    # ---- encoder ----------------------------------------------------------------------------
    @torch.no_grad()
    def compress(self, y: Tensor) -> tuple[list[bytes], Tensor]:
        """y: (1, M, h, w) gained latent, float64 on the CPU. Returns the strings (two per group,
        then z's) and y_hat in fixed point on the model's device."""
        eb = self.entropy_bottleneck
        z = self.coder.latent_codec["hyper"].h_a(y)
        z_string = eb.compress(z)[0]
        z_symbols = eb.quantize(z, "symbols", eb._get_medians().detach())
        strings: list[bytes] = []
        y_ = [unembed(y[:, self.bounds[k] : self.bounds[k + 1]]) for k in range(len(self.groups))]

        def encode(k: int, i: int, indexes: Tensor, means: Tensor) -> Tensor:
            gc, target = self.conditionals[k], y_[k][i]
            real_means = means.to("cpu") / ONE
            indexes = indexes.to("cpu", torch.int32)
            strings.append(gc.compress(target, indexes, real_means)[0])
            return gc.quantize(target, "symbols", real_means)

        y_hat = self._groups(z_symbols, encode)
        return [*strings, z_string], y_hat

    # ---- decoder ----------------------------------------------------------------------------
    @torch.no_grad()
    def decompress(self, strings: list[bytes], h: int, w: int) -> Tensor:
        """y_hat (1, M, h, w) in fixed point on the model's device, from a format-2 stream's strings.
        Raises ``rans.LatentStringError`` for a string that cannot have been written for this shape."""
        *y_strings, z_string = strings
        eb = self.entropy_bottleneck
        n = self.z_median.shape[1]
        z_indexes = np.repeat(np.arange(n, dtype=np.int64), (h // 4) * (w // 4))
        z_symbols = decode_symbols(z_string, z_indexes, *_tables(eb))
        z_symbols = torch.from_numpy(z_symbols).reshape(1, n, h // 4, w // 4)

        def decode(k: int, i: int, indexes: Tensor, means: Tensor) -> Tensor:
            flat = indexes.to("cpu").numpy().reshape(-1)
            symbols = decode_symbols(y_strings[2 * k + i], flat, *_tables(self.conditionals[k]))
            return torch.from_numpy(symbols).reshape(indexes.shape)

        return self._groups(z_symbols, decode)


def _tables(model: EntropyBottleneck | GaussianConditional) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return model._quantized_cdf.numpy(), model._cdf_length.numpy(), model._offset.numpy()

"""The S2CFormer image codec: transforms + SCCTX entropy model + variable-rate gain vectors.

One network covers every quality level. Quality ``q`` (1-based, fractional values allowed) scales
the latent by a learned per-channel gain before quantisation and by its inverse after, as in
"asymmetric gained" variable-rate models; fractional qualities interpolate the gains
geometrically between the two neighbouring trained levels.

Determinism: training and ``forward`` run on any device in float32. Coding has two paths, named
by ``LatentCode.path`` (the container's format version picks it, ``docs/bitstream.md``):

- ``integer`` (format 2, the default): the probability path (hyper synthesis, channel and spatial
  contexts, parameter aggregation, scale -> CDF index) runs in exact fixed point on the model's
  device (``codec.integer``, ``codec.integer_coding``), so every CDF index and mean is the same
  integer on any CPU or GPU; g_s runs in float32 on the model's device.
- ``float64`` (format 1): the probability path on the CPU in float64 with grid-snapped means, and
  g_s in float64; kept so that every format-1 stream decodes to the pixels it always did.

Both share a private copy of the entropy model whose rANS decoder is bounded (``codec.rans``); g_s
runs in tiles on large images.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from compressai.entropy_models import EntropyBottleneck, EntropyModel, GaussianConditional
from compressai.models.utils import update_registered_buffers
from torch import Tensor, nn

from s2c_pipeline.codec.banded import BandedTransform
from s2c_pipeline.codec.config import ModelConfig, between_levels
from s2c_pipeline.codec.entropy import build_latent_codec
from s2c_pipeline.codec.integer import ONE, UnsupportedLayer
from s2c_pipeline.codec.integer_coding import IntegerEntropyCoder
from s2c_pipeline.codec.rans import BoundedRansCoder
from s2c_pipeline.codec.refine import RefineSettings, refine_latents
from s2c_pipeline.codec.transforms import analysis_transform, synthesis_transform

STRIDE = 64  # y is H/16, z is H/64: inputs are padded to a multiple of this
# g_s runs over tiles of at most this many latent rows and columns (1024 pixels), each with a
# margin of its receptive field, so decoding memory stays bounded for images of any size.
SYNTHESIS_TILE = 64
# The banded CPU synthesis (format 2) keeps only a band's intermediates beside a stage's input and
# output, so its tiles can be larger: 2048 pixels square, and a 2048x1080 photo runs in one pass
# instead of recomputing the margins of four tiles.
BANDED_SYNTHESIS_TILE = 128

FLOAT64_PATH, INTEGER_PATH = "float64", "integer"
CODING_PATHS = (FLOAT64_PATH, INTEGER_PATH)


def check_coding_path(path: str) -> str:
    if path not in CODING_PATHS:
        raise ValueError(f"unknown coding path {path!r}; expected one of {CODING_PATHS}")
    return path


log = logging.getLogger(__name__)


@contextlib.contextmanager
def float64_default() -> Iterator[None]:
    """CompressAI's latent codecs allocate buffers with the default dtype; make it float64."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@dataclass(frozen=True)
class LatentCode:
    """The entropy-coded form of one padded image: strings in the model's fixed order."""

    strings: tuple[bytes, ...]
    padded_height: int
    padded_width: int
    # The encoder's own y_hat (float64; CPU for the float64 path, the model's device for the
    # integer path), kept for checks; never serialised.
    y_hat: Tensor | None = field(default=None, compare=False, repr=False)
    path: str = FLOAT64_PATH
    """Which coding path wrote the strings (and must read them): FLOAT64_PATH or INTEGER_PATH."""

    def __post_init__(self) -> None:
        check_coding_path(self.path)


class S2CFormer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.g_a = analysis_transform(config)
        self.g_s = synthesis_transform(config)
        self.latent_codec = build_latent_codec(config)
        q, m = config.num_qualities, config.latent_channels
        # Log-gains; initialised so that higher quality levels quantise more finely.
        init = torch.linspace(math.log(0.5), math.log(2.0), q)[:, None].expand(q, m).clone()
        self.log_gain = nn.Parameter(init)
        self.log_inverse_gain = nn.Parameter(-init.clone())
        # Derived float64 copies for coding; a plain dict so nn.Module does not register them as
        # submodules (they must stay out of state_dict, parameters() and .to()).
        self._caches: dict[str, nn.Module | UnsupportedLayer] = {}

    # ---- training -------------------------------------------------------------------------
    def forward(self, x: Tensor, quality_index: Tensor) -> dict[str, object]:
        """x: (B, 3, H, W) in [0, 1], H and W multiples of 64; quality_index: (B,) long, 0-based."""
        y = self.g_a(x)
        gain = self.log_gain[quality_index].exp()[:, :, None, None]
        inverse = self.log_inverse_gain[quality_index].exp()[:, :, None, None]
        # Likelihoods in bfloat16 (8-bit mantissa) would make the rate term noise: under autocast,
        # the entropy model still runs in float32.
        with torch.autocast(x.device.type, enabled=False):
            out = self.latent_codec(y.float() * gain)
        x_hat = self.g_s(out["y_hat"] * inverse)
        return {"x_hat": x_hat, "likelihoods": out["likelihoods"]}

    def _apply(self, fn, recurse=True):  # .to(), .cuda(), .double(): the cached copies are stale
        self._caches.clear()
        return super()._apply(fn, recurse)

    def aux_loss(self) -> Tensor:
        return sum(m.loss() for m in self.modules() if isinstance(m, EntropyBottleneck))

    def update(self, force: bool = True) -> None:
        """Rebuild the integer CDF tables; required after training and before coding."""
        for module in self.modules():
            if isinstance(module, GaussianConditional):
                module.update_scale_table(_scale_table(), force=force)
            if isinstance(module, EntropyBottleneck):
                module.update(force=force)
        self._caches.clear()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        # CDF buffers change size with update(); resize ours to the checkpoint's first.
        for name, module in self.named_modules():
            if isinstance(module, EntropyBottleneck):
                update_registered_buffers(
                    module, name, ["_quantized_cdf", "_offset", "_cdf_length"], state_dict
                )
            if isinstance(module, GaussianConditional):
                update_registered_buffers(
                    module, name, ["_quantized_cdf", "_offset", "_cdf_length", "scale_table"], state_dict
                )
        self._caches.clear()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ---- gains ----------------------------------------------------------------------------
    def check_quality(self, quality: float) -> None:
        top = self.config.num_qualities
        if not 1.0 <= quality <= top:
            raise ValueError(f"quality {quality:g} is outside 1..{top} for model {self.config.name}")

    def gains(self, quality: float) -> tuple[Tensor, Tensor]:
        """(gain, inverse_gain), each (M,) float64 on CPU, for a possibly fractional quality."""
        self.check_quality(quality)
        gain, inverse = (
            between_levels(table.detach().to("cpu", torch.float64), quality).exp()
            for table in (self.log_gain, self.log_inverse_gain)
        )
        return gain, inverse

    # ---- coding ---------------------------------------------------------------------------
    def _coding_model(self) -> nn.Module:
        if "coder" not in self._caches:
            if self.latent_codec.latent_codec["hyper"].entropy_bottleneck._offset.numel() == 0:
                raise RuntimeError("entropy tables are missing: call model.update() after training")
            coder = copy.deepcopy(self.latent_codec).to("cpu", torch.float64).eval()
            for module in coder.modules():
                if isinstance(module, EntropyModel):
                    module.entropy_coder = BoundedRansCoder()
            self._caches["coder"] = coder
        return self._caches["coder"]

    def integer_coder(self) -> IntegerEntropyCoder:
        """The fixed-point probability path on the model's device (UnsupportedLayer if this
        architecture has a layer without an exact counterpart; ``supports_integer_path``)."""
        if "integer" not in self._caches:
            try:
                with float64_default():
                    self._caches["integer"] = IntegerEntropyCoder(
                        self._coding_model(), self.config.groups, self._device()
                    )
            except UnsupportedLayer as exc:
                # Cached like the coder (cleared with the weights): default_path() runs on every
                # encode and must not rebuild the whole coder each time only to fail again.
                self._caches["integer"] = exc
        cached = self._caches["integer"]
        if isinstance(cached, UnsupportedLayer):
            raise cached
        return cached

    @property
    def supports_integer_path(self) -> bool:
        try:
            self.integer_coder()
        except UnsupportedLayer:
            return False
        return True

    def default_path(self) -> str:
        """The path new streams are coded with: integer where the architecture allows it."""
        return INTEGER_PATH if self.supports_integer_path else FLOAT64_PATH

    def _device(self) -> torch.device:
        return next(self.g_s.parameters()).device

    @torch.no_grad()
    def compress_latents(self, x: Tensor, quality: float, path: str | None = None) -> LatentCode:
        """x: (1, 3, H, W) in [0, 1] with H, W multiples of STRIDE, on the model's device."""
        return self.compress_latents_batch(x, [quality], path=path)[0]

    @torch.no_grad()
    def compress_latents_batch(
        self,
        x: Tensor,
        qualities: Sequence[float],
        *,
        refine: RefineSettings | None = None,
        image_sizes: Sequence[tuple[int, int]] | None = None,
        path: str | None = None,
    ) -> list[LatentCode]:
        """x: (B, 3, H, W), one quality per image. g_a runs once over the batch (the GPU's gain);
        entropy coding stays per image, so each code is what a B=1 call would give up to the
        rounding of g_a itself. With ``refine`` steps, g_a's latents are refined
        (``codec.refine``) against the images' unpadded ``image_sizes`` (default: all of x).
        ``path`` is the coding path (default ``default_path()``)."""
        _check_padded(x, len(qualities))
        path = check_coding_path(path or self.default_path())  # before g_a's work, not after it
        gains = [self.gains(q)[0] for q in qualities]
        ys = self._analysis(x)
        if refine is not None and refine.steps > 0:
            if self.training:
                raise RuntimeError("latent refinement needs the model in eval mode (model.eval())")
            sizes = image_sizes if image_sizes is not None else [tuple(x.shape[2:])] * len(qualities)
            try:
                ys = refine_latents(self, x, ys, qualities, sizes, refine).y
            except (MemoryError, RuntimeError) as exc:
                # Refinement keeps g_s's activations for its backward pass, several times what
                # coding needs; an image too large for that is still coded, just unrefined.
                if not isinstance(exc, MemoryError | torch.OutOfMemoryError) and "memory" not in str(exc):
                    raise
                log.warning(
                    "latent refinement of a %dx%d batch of %d ran out of memory; coding it unrefined (%s)",
                    x.shape[3],
                    x.shape[2],
                    x.shape[0],
                    str(exc).splitlines()[0],
                )
        ys = ys.to("cpu", torch.float64)
        codes = []
        with float64_default():
            for y, gain in zip(ys, gains, strict=True):
                y = y[None] * gain[None, :, None, None]
                if path == INTEGER_PATH:
                    strings, y_fixed = self.integer_coder().compress(y)
                    codes.append(LatentCode(tuple(strings), x.shape[2], x.shape[3], y_fixed / ONE, path))
                    continue
                out = self._coding_model().compress(y)
                codes.append(LatentCode(_flatten(out["strings"]), x.shape[2], x.shape[3], out["y_hat"]))
        return codes

    def _analysis(self, x: Tensor) -> Tensor:
        """g_a for coding. On the CPU in float32 it runs banded (``codec.banded``), one image at a
        time: at the paper-size widths a third of the module's time. g_a only decides what is coded
        (the stream fixes the latents), so its rounding may differ from the module's. Built per call
        from the live weights: nothing to go stale while a model trains."""
        if x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled():
            banded = BandedTransform(self.g_a)
            return torch.cat([banded(image[None]) for image in x])
        return self.g_a(x)

    @torch.no_grad()
    def decompress_latents(self, code: LatentCode, quality: float) -> Tensor:
        """Returns x_hat (1, 3, H, W) on the model's device, clamped to [0, 1]."""
        return self.decompress_latents_batch([code], [quality])

    @torch.no_grad()
    def decompress_latents_batch(
        self,
        codes: Sequence[LatentCode],
        qualities: Sequence[float],
        *,
        digests: list[str] | None = None,
        synthesis_dtype: torch.dtype | None = None,
    ) -> Tensor:
        """Codes of one padded size -> x_hat (B, 3, H, W); entropy decoding per image, then one g_s
        pass per coding path over the batch (float32 for integer-path codes, float64 for the rest,
        or ``synthesis_dtype`` for all). ``digests``, if given, receives each code's
        ``latents_sha256``."""
        if len(codes) != len(qualities) or not codes:
            raise ValueError(
                f"need one quality per code, got {len(codes)} codes and {len(qualities)} qualities"
            )
        sizes = {(c.padded_height, c.padded_width) for c in codes}
        if len(sizes) != 1:
            raise ValueError(f"a batch must share one padded size, got {sorted(sizes)}")
        device = self._device()
        x_hat: list[Tensor | None] = [None] * len(codes)
        decoded: dict[int, Tensor] = {}
        for path in CODING_PATHS:
            members = [i for i, c in enumerate(codes) if c.path == path]
            if not members:
                continue
            dtype = synthesis_dtype or (torch.float32 if path == INTEGER_PATH else torch.float64)
            decoded.update((i, self.decode_y(codes[i])) for i in members)
            y_hats = [
                decoded[i].to(device, dtype) * self.gains(qualities[i])[1].to(device, dtype)[:, None, None]
                for i in members
            ]
            out = self.synthesize(torch.cat(y_hats), dtype=dtype)
            for j, i in enumerate(members):
                x_hat[i] = out[j : j + 1]
        if digests is not None:
            digests.extend(latents_sha256(decoded[i]) for i in range(len(codes)))
        return torch.cat(x_hat)  # type: ignore[arg-type]

    @torch.no_grad()
    def synthesize(
        self, y_hat: Tensor, tile: int | None = None, dtype: torch.dtype = torch.float64
    ) -> Tensor:
        """x_hat (B, 3, 16h, 16w) float32 in [0, 1] from y_hat (B, M, h, w), through g_s in ``dtype``
        (float64: format 1's decoder; float32: format 2's) over tiles of ``tile`` latents square
        (default ``SYNTHESIS_TILE``; ``BANDED_SYNTHESIS_TILE`` for float32 on the CPU). Each tile
        is computed with a margin of g_s's receptive field (``synthesis_margin``) and cropped, so
        the result is that of one pass over the whole image (up to float32 rounding), at a memory
        cost bounded by the tile. On CUDA, float32 runs without TF32."""
        synthesis = self._decoding_synthesis(dtype)
        device = next(synthesis.parameters()).device
        y_hat = y_hat.to(device, dtype).contiguous()  # one layout whatever the caller's (it moved pixels)
        with _full_float32(device, dtype):
            if device.type == "cpu" and dtype == torch.float32:
                # banded (codec.banded); float32 GEMMs of another shape round differently,
                # so each image of a batch is synthesized alone and gets the pixels of a lone decode
                banded, tile = self._banded_synthesis(), tile or BANDED_SYNTHESIS_TILE
                return torch.cat([self._synthesize_tiles(banded, y[None], device, tile) for y in y_hat])
            return self._synthesize_tiles(synthesis, y_hat, device, tile or SYNTHESIS_TILE)

    def _synthesize_tiles(self, synthesis: nn.Module, y_hat: Tensor, device: torch.device, tile: int):
        b, _, h, w = y_hat.shape
        if h <= tile and w <= tile:
            return synthesis(y_hat).clamp_(0, 1).float()
        margin = synthesis_margin(self.config)
        if tile % 4:
            raise ValueError(f"tile must be a multiple of 4 latents (window alignment), got {tile}")
        x_hat = torch.empty(b, 3, h * 16, w * 16, device=device)
        for top in range(0, h, tile):
            for left in range(0, w, tile):
                t0, l0 = max(0, top - margin), max(0, left - margin)
                part = y_hat[:, :, t0 : min(h, top + tile + margin), l0 : min(w, left + tile + margin)]
                out = synthesis(part)
                rows, cols = min(tile, h - top) * 16, min(tile, w - left) * 16
                r0, c0 = (top - t0) * 16, (left - l0) * 16
                x_hat[:, :, top * 16 : top * 16 + rows, left * 16 : left * 16 + cols] = (
                    out[:, :, r0 : r0 + rows, c0 : c0 + cols].clamp_(0, 1).float()
                )
        return x_hat

    def _decoding_synthesis(self, dtype: torch.dtype = torch.float64) -> nn.Module:
        """An eval copy of g_s in ``dtype``. float64 is format 1's: float32 convolutions round
        differently with the thread count (and the device), which moved a decoded pixel by one
        level in our tests, and format-1 streams must keep decoding to the pixels they always did.
        Format 2 uses float32 and promises pixels within one level (``docs/codec.md``)."""
        key = f"synthesis-{dtype}"
        if key not in self._caches:
            synthesis = copy.deepcopy(self.g_s).to(dtype).eval()
            for parameter in synthesis.parameters():
                parameter.data = parameter.data.contiguous()
            self._caches[key] = synthesis
        return self._caches[key]

    def _banded_synthesis(self) -> BandedTransform:
        """Format 2's g_s on the CPU: the float32 copy run a band of rows at a time."""
        if "synthesis-banded" not in self._caches:
            self._caches["synthesis-banded"] = BandedTransform(self._decoding_synthesis(torch.float32))
        return self._caches["synthesis-banded"]

    def check_string_count(self, count: int) -> None:
        expected = len(self.config.groups) * 2 + 1
        if count != expected:
            raise ValueError(f"expected {expected} latent strings for {self.config.name}, got {count}")

    @torch.no_grad()
    def decode_y(self, code: LatentCode) -> Tensor:
        """Entropy-decode the gained latent y_hat (1, M, H/16, W/16), float64: on the CPU for the
        float64 path, on the model's device for the integer path."""
        self.check_string_count(len(code.strings))
        h, w = code.padded_height // 16, code.padded_width // 16
        if code.path == INTEGER_PATH:
            return self.integer_coder().decompress(list(code.strings), h, w) / ONE
        shape = {"y": [(g, h, w) for g in self.config.groups], "hyper": (h // 4, w // 4)}
        strings = [[s] for s in code.strings]
        with float64_default():
            return self._coding_model().decompress(strings, shape)["y_hat"]


@contextlib.contextmanager
def _full_float32(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """g_s's arithmetic the same way everywhere. On CUDA: TF32 off for convolutions and matmuls, so
    float32 means float32 on every GPU. On the CPU, oneDNN on for float32, whose kxk and depthwise
    convolutions the banded synthesis uses (``codec.banded`` says why they and its 1x1
    GEMMs give the same values with any thread count), and off for format 1's float64 g_s, which
    has always run PyTorch's own convolutions."""
    if device.type == "cpu":
        enabled = torch.backends.mkldnn.enabled  # (flags() would also set oneDNN's TF32, with a warning)
        torch.backends.mkldnn.enabled = dtype == torch.float32
        try:
            yield
        finally:
            torch.backends.mkldnn.enabled = enabled
        return
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul


def latents_sha256(y_hat: Tensor) -> str:
    """SHA-256 of a decoded latent (1, M, h, w): its shape, then its values in units of 2**-12 as
    little-endian int64. Both paths' latents are multiples of 2**-12 (format 1's means lie on a
    2**-6 grid), so the digest names the exact latents whatever device decoded them."""
    fixed = (y_hat.detach().to("cpu", torch.float64) * ONE).round().to(torch.int64)
    if not torch.equal(fixed.double(), y_hat.detach().to("cpu", torch.float64) * ONE):
        raise ValueError("latents that are not multiples of 2**-12 have no latents digest")
    digest = hashlib.sha256(np.asarray(fixed.shape, dtype="<i8").tobytes())
    digest.update(fixed.numpy().astype("<i8").tobytes())
    return digest.hexdigest()


def synthesis_margin(config: ModelConfig) -> int:
    """Latent rows (a multiple of 4) that cover g_s's receptive field on each side of a tile.

    In latent units: a 3x3 conv at scale s (1, 2, 4, 8 times the latent resolution) reaches 1/s,
    a separable block kernel//2 / s, a window-attention block a whole window / s. Multiples of 4
    keep every tile's origin on the attention windows' grid (a window of 8 at scale 2 is 4 latents).
    """
    reach = 0.0
    for stage, scale in zip((2, 1, 0), (2, 4, 8), strict=True):
        reach += 1 / (scale // 2)  # the subpel conv that enters this scale
        spatial = config.spatial[stage]
        per_block = {"identity": 0, "sepconv": config.kernel_size // 2, "winattn": config.window}[spatial]
        reach += config.depths[stage] * per_block / scale
    reach += 1 / 8  # the last subpel conv
    return 4 * math.ceil(reach / 4)


def _scale_table(min_scale: float = 0.11, max_scale: float = 256.0, levels: int = 64) -> Tensor:
    return torch.exp(torch.linspace(math.log(min_scale), math.log(max_scale), levels))


def _flatten(strings: list[list[bytes]]) -> tuple[bytes, ...]:
    flat = []
    for per_image in strings:
        if len(per_image) != 1:
            raise ValueError("the coding path handles one image at a time")
        flat.append(bytes(per_image[0]))
    return tuple(flat)


def _check_padded(x: Tensor, batch: int) -> None:
    if x.dim() != 4 or x.shape[0] != batch or x.shape[1] != 3:
        raise ValueError(f"expected a ({batch}, 3, H, W) tensor, got {tuple(x.shape)}")
    if x.shape[2] % STRIDE or x.shape[3] % STRIDE:
        raise ValueError(f"H and W must be multiples of {STRIDE}, got {x.shape[2]}x{x.shape[3]}")

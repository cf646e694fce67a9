"""Per-image quality selection: the lowest quality that reaches a PSNR, or the highest within a bpp.

Both PSNR and rate grow with quality, so a bisection over a grid of quality values needs about
log2(grid size) encodes (six for the default grid of eighths over 1..8). Each probe is a real
encode and decode, so the chosen file is exactly the one measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from s2c_pipeline.codec.image_codec import DecodedImage, EncodeTiming, ImageCodec
from s2c_pipeline.codec.refine import RefineSettings
from s2c_pipeline.imaging import PreparedImage, psnr

GRID_STEP = 1 / 8


@dataclass(frozen=True)
class TargetResult:
    data: bytes
    decoded: DecodedImage
    quality: float
    psnr: float
    bpp: float
    reached: bool  # False: even the best (for PSNR) or smallest (for bpp) quality misses the target
    probes: int
    timing: EncodeTiming  # of the chosen probe


@dataclass(frozen=True)
class RateTarget:
    """A per-image target instead of a fixed quality: ``kind`` is "psnr" (dB) or "bpp"."""

    kind: str
    value: float

    def __post_init__(self) -> None:
        if self.kind not in ("psnr", "bpp") or not self.value > 0:
            raise ValueError(f"a target is psnr or bpp with a positive value, got {self.kind}={self.value}")

    def encode(self, codec: ImageCodec, image: PreparedImage, refine: RefineSettings | None = None) -> TargetResult:
        if self.kind == "psnr":
            return encode_to_target(codec, image, target_psnr=self.value, refine=refine)
        return encode_to_target(codec, image, target_bpp=self.value, refine=refine)


def encode_to_target(
    codec: ImageCodec,
    image: PreparedImage,
    *,
    target_psnr: float | None = None,
    target_bpp: float | None = None,
    refine: RefineSettings | None = None,
) -> TargetResult:
    """Every probe is refined with ``refine`` when given, so the chosen file is still the one
    measured (and a search costs its probes times the refinement)."""
    if (target_psnr is None) == (target_bpp is None):
        raise ValueError("give exactly one of target_psnr and target_bpp")
    grid = [1 + i * GRID_STEP for i in range(int((codec.num_qualities - 1) / GRID_STEP) + 1)]
    pixels = image.width * image.height
    cache: dict[int, TargetResult] = {}

    def probe(i: int) -> TargetResult:
        if i not in cache:
            data, decoded, timing = codec.encode_timed(image, grid[i], refine)
            p, bpp = psnr(image.rgb, decoded.rgb), len(data) * 8 / pixels
            ok = p >= target_psnr if target_psnr is not None else bpp <= target_bpp
            cache[i] = TargetResult(data, decoded, grid[i], p, bpp, ok, 0, timing)
        return cache[i]

    if target_psnr is not None:
        # lowest index whose PSNR reaches the target
        lo, hi = 0, len(grid) - 1
        if not probe(hi).reached:
            return _with_probes(probe(hi), cache, reached=False)
        while lo < hi:
            mid = (lo + hi) // 2
            if probe(mid).reached:
                hi = mid
            else:
                lo = mid + 1
        return _with_probes(probe(lo), cache, reached=True)
    # highest index whose rate stays within the target
    lo, hi = 0, len(grid) - 1
    if not probe(lo).reached:
        return _with_probes(probe(lo), cache, reached=False)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if probe(mid).reached:
            lo = mid
        else:
            hi = mid - 1
    return _with_probes(probe(lo), cache, reached=True)


def _with_probes(result: TargetResult, cache: dict, *, reached: bool) -> TargetResult:
    return TargetResult(
        result.data,
        result.decoded,
        result.quality,
        result.psnr,
        result.bpp,
        reached,
        len(cache),
        result.timing,
    )

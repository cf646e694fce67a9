"""The alpha plane as the container stores it: zlib over H*W bytes, row-major, 8-bit."""

from __future__ import annotations

import zlib

import numpy as np


def pack_alpha(alpha: np.ndarray) -> bytes:
    """Compress an (H, W) uint8 alpha plane; lossless, so transparency survives a lossy RGB codec."""
    if alpha.dtype != np.uint8 or alpha.ndim != 2:
        raise ValueError(f"alpha must be (H, W) uint8, got {alpha.shape} {alpha.dtype}")
    return zlib.compress(np.ascontiguousarray(alpha).tobytes())


def unpack_alpha(packed: bytes, height: int, width: int) -> np.ndarray:
    """Inflate an alpha plane, refusing one whose size does not match the image (or a zlib bomb)."""
    expected = height * width
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(packed, expected + 1)
    except zlib.error as exc:
        raise ValueError(f"alpha plane is not valid zlib data ({exc})") from exc
    if len(raw) > expected:
        raise ValueError(
            f"alpha plane inflates to more than {expected} bytes, the size of a {width}x{height} image"
        )
    if len(raw) < expected or not inflater.eof:
        raise ValueError(
            f"alpha plane inflates to {len(raw)} bytes{'' if inflater.eof else ' (zlib stream truncated)'}, "
            f"expected {expected} for a {width}x{height} image"
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width)

"""Find near-duplicate photos across two sets, to keep training and evaluation disjoint.

Each photo is reduced to a 16x16 grey thumbnail normalised to zero mean and unit variance; two photos
are near-duplicates when the thumbnails correlate above ``THRESHOLD``. That catches re-encodes,
resizes, colour shifts and small viewpoint changes (the scikit-image motorcycle stereo pair scores
0.86) while unrelated photos stay below about 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image

THUMBNAIL_SIDE = 16
THRESHOLD = 0.8


def thumbnail(img: Image.Image) -> np.ndarray:
    """A normalised ``THUMBNAIL_SIDE`` square grey thumbnail, float64, as a flat vector."""
    grey = img.convert("L").resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BOX)
    x = np.asarray(grey, dtype=np.float64).ravel()
    return (x - x.mean()) / (x.std() + 1e-6)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two thumbnails from ``thumbnail``: 1 for the same picture."""
    return float(np.dot(a, b) / a.size)


def near_duplicates(
    left: Mapping[str, np.ndarray], right: Mapping[str, np.ndarray]
) -> list[tuple[str, str, float]]:
    """Pairs ``(left name, right name, similarity)`` of thumbnails that correlate above THRESHOLD."""
    return [
        (a, b, s)
        for a, ta in left.items()
        for b, tb in right.items()
        if (s := similarity(ta, tb)) > THRESHOLD
    ]

"""Find near-duplicate photos across two sets, to keep training and evaluation disjoint.

Each photo is reduced to a 16x16 grey thumbnail normalised to zero mean and unit variance; two photos
are near-duplicates when the thumbnails correlate above ``THRESHOLD``. That catches re-encodes,
resizes, colour shifts and small viewpoint changes (the scikit-image motorcycle stereo pair scores
0.86) while unrelated photos stay below about 0.5.

That coarse test also pairs unrelated photos of one layout: Stellarium's galaxy textures (a bright
blob in the middle of black sky) correlate up to 0.89. So within the training pool, where a false
match would only throw good photos away, a pair must also match in detail: the high-pass part of a
64x64 thumbnail (the thumbnail minus its Gaussian blur), which correlates above 0.99 for a resized
q40 JPEG copy and below 0.25 for different photos, the galaxies included (``is_copy``). Against the
evaluation set the coarse test alone decides, so it errs on the side of leaving a photo out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageFilter

THUMBNAIL_SIDE = 16
THRESHOLD = 0.8
DETAIL_SIDE = 64
DETAIL_THRESHOLD = 0.5


def thumbnail(img: Image.Image) -> np.ndarray:
    """A normalised ``THUMBNAIL_SIDE`` square grey thumbnail, float64, as a flat vector."""
    grey = img.convert("L").resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.BOX)
    return _normalised(np.asarray(grey, dtype=np.float64).ravel())


def _normalised(x: np.ndarray) -> np.ndarray:
    """Zero mean and unit variance, so that ``similarity`` is a correlation."""
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


def detail_thumbnail(img: Image.Image) -> np.ndarray:
    """The normalised high-pass part of a ``DETAIL_SIDE`` square grey thumbnail, as a flat vector."""
    grey = img.convert("L").resize((DETAIL_SIDE, DETAIL_SIDE), Image.Resampling.BOX)
    blurred = grey.filter(ImageFilter.GaussianBlur(2))
    return _normalised(np.asarray(grey, dtype=np.float64).ravel() - np.asarray(blurred, dtype=np.float64).ravel())


def is_copy(coarse: tuple[np.ndarray, np.ndarray], detail: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether two photos are copies of one picture: similar ``thumbnail``s and ``detail_thumbnail``s."""
    return similarity(*coarse) > THRESHOLD and similarity(*detail) > DETAIL_THRESHOLD

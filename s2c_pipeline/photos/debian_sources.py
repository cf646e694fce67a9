"""Which real photographs the Debian packages hold, where, and under which licence.

Inventory from ``/work/shared/research/training-photos.md``, checked against bookworm (snapshot
2025-05-20). Licences come from each package's ``debian/copyright`` or, where stated more precisely,
from the metadata next to the image (Plasma ``metadata.json``, Palapeli ``.desktop``, LXQt
``wallpapers/License``). Weak images stay listed with a ``skip`` reason so the exclusion is visible.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DebianPhoto:
    """One photo inside a Debian package.

    Attributes:
        name: output stem, unique within its package.
        path: file path inside the package's file system tree (as ``dpkg -x`` lays it out).
        licence: licence of this image as the package states it.
        credit: author or copyright holder, for attribution.
        skip: why the photo is left out of training, or None when it is used.
        split: ``"train"`` or ``"validation"`` (held out to choose checkpoints, steps, weights).
    """

    name: str
    path: str
    licence: str
    credit: str = ""
    skip: str | None = None
    split: str = "train"


@dataclass(frozen=True)
class DebianPackage:
    """A Debian binary package holding photos listed one by one (``scan`` handles whole folders)."""

    name: str
    version: str
    photos: tuple[DebianPhoto, ...]


def _lomiri16(stem: str, licence: str, credit: str, skip: str | None = None) -> DebianPhoto:
    return DebianPhoto(stem.split("_by_")[0], f"usr/share/backgrounds/{stem}.jpg", licence, credit, skip)


def _plasma(name: str, credit: str, skip: str | None = None) -> DebianPhoto:
    path = f"usr/share/wallpapers/{name}/contents/images/2560x1600.jpg"
    return DebianPhoto(name, path, "LGPL-3 (metadata.json; debian/copyright: GPL-2+)", credit, skip)


def _mate(name: str, credit: str) -> DebianPhoto:
    return DebianPhoto(name, f"usr/share/backgrounds/mate/nature/{name}.jpg", "GPL-2+", credit)


def _lxqt(file: str) -> DebianPhoto:
    licence = "CC-BY-SA-3.0 (wallpapers/License; debian/copyright: LGPL-2.1+)"
    credit = "LXQt Project Team" if file == "Valendas.png" else "stefonarch (LXQt Project Team)"
    if file == "Butterfly-Kenneth-Wimer.jpg":
        credit = "Kenneth Wimer (LXQt Project Team)"
    return DebianPhoto(file.rsplit(".", 1)[0], f"usr/share/lxqt/wallpapers/{file}", licence, credit)


def _enlightenment(name: str, skip: str | None = None) -> DebianPhoto:
    path = f"usr/share/enlightenment/data/backgrounds/{name}.edj"
    return DebianPhoto(name, path, "BSD-2-clause", "Carsten Haitzler and contributors", skip)


def _palapeli(name: str, licence: str) -> DebianPhoto:
    path = f"usr/share/palapeli/collection/{name}.jpg"
    return DebianPhoto(
        name, path, f"{licence} (the puzzle's .desktop file)", "KDE Palapeli puzzle collection"
    )


def _elementary(name: str) -> DebianPhoto:
    path = f"usr/share/elementary/images/{name}.jpg"
    return DebianPhoto(name, path, "BSD-2-clause", "Enlightenment Developers")


def _hugin(name: str, skip: str | None = None) -> DebianPhoto:
    path = f"usr/share/hugin/xrc/data/help_en_EN/{name}.jpg"
    licence = "GPL-2+ (debian/copyright of hugin)"
    return DebianPhoto(name, path, licence, "Hugin developers", skip, split="validation")


# OpenCV's sample photos: held out whole as validation (street scenes, objects, text). Each row:
# name, file under examples/, reason to skip (None = used).
_OPENCV = (
    ("scenetext01", "text/scenetext01.jpg", None),
    ("scenetext02", "text/scenetext02.jpg", None),
    ("scenetext03", "text/scenetext03.jpg", None),
    ("scenetext04", "text/scenetext04.jpg", None),
    ("scenetext05", "text/scenetext05.jpg", None),
    ("leuvenA", "data/leuvenA.jpg", None),
    ("leuvenB", "data/leuvenB.jpg", "the same street as leuvenA, another exposure"),
    ("aloeL", "data/aloeL.jpg", None),
    ("aloeR", "data/aloeR.jpg", "the right view of the aloeL stereo pair"),
    ("ela_original", "data/ela_original.jpg", None),
    ("ela_modified", "data/ela_modified.jpg", "ela_original with an edit"),
    ("graf1", "data/graf1.png", None),
    ("graf3", "data/graf3.png", "graf1's wall seen from another angle"),
    ("building", "data/building.jpg", None),
    ("orange", "data/orange.jpg", None),
    ("apple", "data/apple.jpg", None),
    ("chicky_512", "data/chicky_512.png", None),
    ("sudoku", "data/sudoku.png", None),
    ("baboon", "data/baboon.jpg", "USC-SIPI test image of unclear origin and licence"),
    ("starry_night", "data/starry_night.jpg", "a painting"),
    ("pca_test1", "data/pca_test1.jpg", "black shapes on paper, no photographic content"),
)


def _opencv(name: str, file: str, skip: str | None) -> DebianPhoto:
    path = f"usr/share/doc/opencv-doc/examples/{file}"
    licence = "Apache-2.0 (debian/copyright of opencv; samples/data names no per-image licence)"
    return DebianPhoto(name, path, licence, "OpenCV samples", skip, split="validation")


_DARK = "very dark"
PACKAGES: tuple[DebianPackage, ...] = (
    DebianPackage(
        "lomiri-wallpapers-16.04",
        "20.04.0-2",
        (
            _lomiri16("Bridge_by_Sander_Klootwijk", "CC-BY-SA-4.0", "Sander Klootwijk"),
            _lomiri16("Dragonfly_by_Bolly", "CC-BY-SA-4.0", "Bolly"),
            _lomiri16("Picture_0B_by_freespace", "CC-BY-4.0", "Trevor 'Freespace'"),
            _lomiri16("Picture_1A_by_freespace", "CC-BY-4.0", "Trevor 'Freespace'"),
            _lomiri16("Wine_by_Jakkub_Mede", "CC-BY-4.0", "Jakub Mede"),
            _lomiri16("aitzgorri_by_Aitzol_Berasategi", "CC-BY-4.0", "Aitzol Berasategi"),
            _lomiri16("analogpattern_by_Peter_Nerlich", "CC-BY-SA-4.0", "Peter Nerlich", "abstract texture"),
            _lomiri16("free_by_Peter_Nerlich", "CC-BY-SA-4.0", "Peter Nerlich"),
            _lomiri16("friends_by_Aitzol_Berasategi", "CC-BY-4.0", "Aitzol Berasategi"),
            _lomiri16("greentock_by_Peter_Nerlich", "CC-BY-SA-4.0", "Peter Nerlich"),
            _lomiri16("life_by_Aitzol_Berasategi", "CC-BY-4.0", "Aitzol Berasategi"),
            _lomiri16("picosdeeuropa_by_Aitzol_Berasategi", "CC-BY-4.0", "Aitzol Berasategi"),
            _lomiri16("seeding_by_Clements_Engelhardt", "CC0-1.0", "Clemens Engelhardt"),
            _lomiri16("sunset_by_Aitzol_Berasategi", "CC-BY-4.0", "Aitzol Berasategi"),
        ),
    ),
    DebianPackage(
        "lomiri-wallpapers-20.04",
        "20.04.0-2",
        (
            DebianPhoto(
                "Kleiber",
                "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",
                "CC-BY-SA-3.0",
                "Lukas Baubkus",
            ),
        ),
    ),
    DebianPackage(
        "mate-backgrounds",
        "1.26.0-1",
        (
            _mate("Aqua", "Charles Barbin"),
            _mate("Blinds", "Lennart Poettering"),
            _mate("Dune", "Marco Cogoni"),
            _mate("FreshFlower", "Jens Ansorg"),
            _mate("Garden", "Charles Barbin"),
            _mate("GreenMeadow", "Timothy Schellhase"),
            _mate("LadyBird", "Charles Barbin"),
            _mate("RainDrops", "blackcombwhistler07"),
            _mate("Storm", "Sergey Nazarov"),
            _mate("TwoWings", "Charles Barbin"),
            _mate("Wood", "Jean-François Fortin Tam"),
            _mate("YellowFlower", "Charles Barbin"),
        ),
    ),
    DebianPackage(
        "plasma-workspace-wallpapers",
        "4:5.27.5-2",
        (
            _plasma("BytheWater", "Maciej Wiklo"),
            _plasma("ColdRipple", "Risto Saukonpää"),
            _plasma("ColorfulCups", "Dmitri Popov", "colour-inverted"),
            _plasma("DarkestHour", "Risto Saukonpää"),
            _plasma("EveningGlow", "Ian Hex"),
            _plasma("FallenLeaf", "Martin Klapetek"),
            _plasma("Grey", "Sigi Sagi", "greyscale"),
            _plasma("Kite", "Risto Saukonpää", "mostly sky"),
            _plasma("OneStandsOut", "Risto Saukonpää"),
            _plasma("Path", "Risto Saukonpää"),
            _plasma("summer_1am", "Risto Saukonpää"),
        ),
    ),
    DebianPackage(
        "lxqt-themes",
        "1.2.0-1",
        tuple(
            _lxqt(f)
            for f in (
                "Butterfly-Kenneth-Wimer.jpg",
                "Valendas.png",
                "after-the-rain.jpg",
                "appleflower.png",
                "beam.png",
                "butterfly.png",
                "cloud.png",
                "drop.png",
                "flowers.png",
                "fog.jpg",
                "this-is-not-windows.jpg",
            )
        ),
    ),
    DebianPackage(
        "digikam-data",
        "4:7.9.0-1",
        (
            DebianPhoto(
                "body-background",
                "usr/share/digikam/about/images/body-background.jpg",
                "GPL-2+ (debian/copyright)",
                "digiKam team",
            ),
        ),
    ),
    DebianPackage(
        "libjxl-testdata",
        "0.0~git20230110.d6168ff-1",
        (
            DebianPhoto(
                "flower",
                "usr/share/libjxl-testdata/jxl/flower/flower.png",
                "BSD-3-clause (debian/copyright: BSD-3-clause-Google)",
                "the JPEG XL Project Authors",
            ),
        ),
    ),
    DebianPackage(
        "palapeli-data",
        "4:22.12.3-1",
        (
            DebianPhoto(
                "panther-chameleon-female",
                "usr/share/palapeli/collection/panther-chameleon-female.jpg",
                "GFDL (.desktop; Wikimedia Commons FurciferPardalisFemale.JPG)",
                "B. Navez and others",
            ),
            DebianPhoto(
                "european-honey-bee",
                "usr/share/palapeli/collection/european-honey-bee.jpg",
                "public domain (.desktop; Wikimedia Commons)",
                "John Severns",
            ),
            _palapeli("cincinnati-bridge", "public domain"),
            _palapeli("castle-maintenon", "GFDL"),
            _palapeli("citrus-fruits", "public domain"),
        ),
    ),
    DebianPackage(
        "libelementary-data",
        "1.26.3-1",
        (
            DebianPhoto(
                "insanely_huge_test_image",
                "usr/share/elementary/images/insanely_huge_test_image.jpg",
                "BSD-2-clause",
                "Enlightenment Developers",
            ),
            *(
                _elementary(name)
                for name in (
                    "mystrale_2",
                    "twofish",
                    "plant_01",
                    "rock_01",
                    "rock_02",
                    "wood_01",
                    "panel_01",
                    "sky_01",
                    "sky_02",
                    "sky_03",
                    "sky_04",
                )
            ),
        ),
    ),
    DebianPackage(
        "enlightenment-data",
        "0.25.4-2",
        tuple(
            _enlightenment(name, skip)
            for name, skip in (
                ("Bamboo", None),
                ("Foggy-Trees", _DARK),
                ("God-Rays", None),
                ("Green-Maple", None),
                ("Lichen-Branches", None),
                ("Mountain", None),
                ("Peaks", _DARK),
                ("Red-Maple", None),
                ("Sea-of-Lanterns", None),
                ("Snow-Trees", None),
                ("Spruce-Needles", None),
                ("Sunset-Clouds", None),
                ("White-Flower", None),
                ("Yellow-Flower", None),
            )
        ),
    ),
    DebianPackage(
        "opencv-doc",
        "4.6.0+dfsg-12",
        tuple(_opencv(*row) for row in _OPENCV),
    ),
    DebianPackage(
        "hugin-data",
        "2022.0.0+dfsg-2",
        (
            _hugin("Medinet_habu_horizontal_fisheye"),
            _hugin("CA_tCA00"),
            _hugin("Medinet_habu_horizontal_stereographic", "the fisheye photo, reprojected"),
        ),
    ),
    DebianPackage(
        "sddm-theme-maldives",
        "0.19.0-5",
        (
            DebianPhoto(
                "background",
                "usr/share/sddm/themes/maldives/background.jpg",
                "CC-BY-3.0 (debian/copyright of sddm)",
                "Nevit Dilmen (Wikimedia Commons)",
                split="validation",
            ),
        ),
    ),
)

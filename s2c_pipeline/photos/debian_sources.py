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
    """

    name: str
    path: str
    licence: str
    credit: str = ""
    skip: str | None = None


@dataclass(frozen=True)
class DebianPackage:
    """A Debian binary package holding photos; ``large`` ones are fetched only on request."""

    name: str
    version: str
    photos: tuple[DebianPhoto, ...]
    large: bool = False


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
        large=True,
    ),
)

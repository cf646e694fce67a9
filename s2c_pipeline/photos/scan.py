"""Photo collections that are taken whole: every image in a package folder or a Qt resource bundle.

``debian_sources`` lists photos one by one; where a package holds dozens (GCompris' activities,
Stellarium's nebula textures), listing them would only copy the package's file list, so a
``Collection`` names the folder or bundle, a glob, the licence, and rules that drop what is not a
photo for training (too small, mostly black sky). ``fetch`` prepares what ``candidates`` yields and
records each skip with its reason in ``sources.json``.
"""

from __future__ import annotations

import fnmatch
import functools
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from s2c_pipeline.photos.rcc import rcc_files

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
DARK_LEVEL = 32  # 8-bit grey below which a pixel counts as black sky


@dataclass(frozen=True)
class Collection:
    """Photos taken whole from one place in a Debian package.

    Attributes:
        package, version: the Debian binary package and the version the inventory was checked on.
        key: short name of the sub-collection, the start of every output name (``"erase"``).
        pattern: glob of the files inside the unpacked package (``usr/share/.../*.png``), or of
            the one ``.rcc`` bundle when ``inner`` is set.
        inner: glob of resource paths inside the bundle (``*.webp``); None for plain files.
        licence, credit: as the package states them; ``credits`` may give a credit per file stem.
        split: ``"train"`` or ``"validation"``: a sub-collection is held out whole.
        skip: file stem -> reason, for images that are not photographs or are not wanted.
        max_dark_fraction: skip a photo when more of its pixels than this are below DARK_LEVEL.
        credits_file: a Stellarium ``textures.json`` beside the files, read for per-image credits.
        copyright_file: a machine-readable ``debian/copyright`` (DEP-5) whose ``Files:`` stanzas
            give a licence and credit per image; ``copyright_root`` is the prefix of a member path
            that the stanzas' paths leave out (``gcompris/``).
    """

    package: str
    version: str
    key: str
    pattern: str
    licence: str
    credit: str
    inner: str | None = None
    split: str = "train"
    skip: Mapping[str, str] = field(default_factory=dict)
    max_dark_fraction: float = 1.0
    credits_file: str | None = None
    copyright_file: str | None = None
    copyright_root: str = ""


@dataclass(frozen=True)
class Candidate:
    """One image a collection offers: its output name, where it is, and how to open it."""

    name: str
    path: str  # inside the package; ``bundle.rcc:resource/path`` for a bundle member
    licence: str
    credit: str
    split: str
    file: Path
    member: str | None = None
    max_dark_fraction: float = 1.0
    skip: str | None = None

    def open(self) -> Image.Image:
        if self.member is None:
            return Image.open(self.file)
        return Image.open(io.BytesIO(_bundle(self.file)[self.member]))


@functools.lru_cache(maxsize=4)
def _bundle(path: Path) -> dict[str, bytes]:
    return rcc_files(path)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _names(paths: list[str]) -> dict[str, str]:
    """Output stems: the file stem, or ``folder_stem`` where two files share a stem."""
    stems = [PurePosixPath(p).stem for p in paths]
    clash = {s for s in stems if stems.count(s) > 1}
    return {
        p: _safe(f"{PurePosixPath(p).parent.name}_{s}" if s in clash else s)
        for p, s in zip(paths, stems, strict=True)
    }


def stellarium_credits(path: Path) -> dict[str, str]:
    """File stem -> the short image credit in a Stellarium ``textures.json``.

    The file is not strict JSON (trailing commas), so each tile object is read on its own.
    """
    text = path.read_text(encoding="utf-8")
    credits: dict[str, str] = {}
    for block in re.finditer(r"\{[^{}]*\{[^{}]*\}[^{}]*\}|\{[^{}]*\}", text):
        body = block.group(0)
        url = re.search(r'"imageUrl"\s*:\s*"([^"]+)"', body)
        short = re.search(r'"[sS]hort"\s*:\s*"([^"]*)"', body)
        if url and short:
            credits[PurePosixPath(url.group(1)).stem] = short.group(1)
    return credits


@dataclass(frozen=True)
class CopyrightStanza:
    """One ``Files:`` paragraph of a DEP-5 ``debian/copyright``."""

    patterns: tuple[str, ...]
    copyright: str
    licence: str
    comment: str


def dep5_stanzas(text: str) -> list[CopyrightStanza]:
    """The ``Files:`` paragraphs of a DEP-5 copyright file, in file order (the last match wins)."""
    stanzas = []
    for block in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, list[str]] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key].append(line.strip())
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip()] = [value.strip()]
        if "Files" in fields:
            stanzas.append(
                CopyrightStanza(
                    tuple(" ".join(fields["Files"]).split()),
                    " ".join(v for v in fields.get("Copyright", []) if v and v != "."),
                    (fields.get("License") or [""])[0],
                    " ".join(fields.get("Comment", [])),
                )
            )
    return stanzas


def dep5_lookup(stanzas: list[CopyrightStanza], path: str) -> CopyrightStanza | None:
    """The stanza that covers ``path`` (the last that matches, as DEP-5 says). The extension is not
    compared where a pattern names one file: packages rename ``x.jpg`` to ``x.webp`` when they
    build resource bundles but keep the copyright file's names."""
    found = None
    stem = PurePosixPath(path).with_suffix("").as_posix()
    for stanza in stanzas:
        for pattern in stanza.patterns:
            concrete = not any(c in pattern for c in "*?[")
            if fnmatch.fnmatchcase(path, pattern) or (
                concrete and PurePosixPath(pattern).with_suffix("").as_posix() == stem
            ):
                found = stanza
    return found


def candidates(collection: Collection, root: Path) -> list[Candidate]:
    """The images of ``collection`` in the package unpacked at ``root``, sorted by name.

    Raises:
        FileNotFoundError: when the pattern matches nothing (the package layout changed).
    """
    files = sorted(p for p in root.glob(collection.pattern) if p.is_file())
    if not files:
        raise FileNotFoundError(
            f"{collection.package}: nothing matches {collection.pattern}; update photos/scan.py"
        )
    credits: dict[str, str] = {}
    if collection.credits_file:
        credits = stellarium_credits(root / collection.credits_file)
    stanzas: list[CopyrightStanza] = []
    if collection.copyright_file:
        stanzas = dep5_stanzas((root / collection.copyright_file).read_text(encoding="utf-8"))
    found: list[tuple[str, Path, str | None]] = []  # (package path, file, member)
    for file in files:
        rel = file.relative_to(root).as_posix()
        if collection.inner is None:
            if file.suffix.lower() in IMAGE_SUFFIXES:
                found.append((rel, file, None))
            continue
        for member in sorted(_bundle(file)):
            if fnmatch.fnmatch(member, collection.inner):
                found.append((f"{rel}:{member}", file, member))
    names = _names([member or rel for rel, _, member in found])
    out = []
    for rel, file, member in found:
        stem = names[member or rel]
        source_stem = PurePosixPath(member or rel).stem
        credit = credits.get(source_stem, "")
        credit = f"{credit} ({collection.credit})" if credit else collection.credit
        licence = collection.licence
        if stanzas:
            stanza = dep5_lookup(stanzas, (member or rel).removeprefix(collection.copyright_root))
            if stanza is not None and stanza.patterns == ("*",):  # only the package-wide default
                licence = f"{stanza.licence} (debian/copyright, Files: *)"
            elif stanza is not None:
                licence = f"{stanza.licence} (debian/copyright)"
                credit = "; ".join(x for x in (stanza.copyright, stanza.comment) if x)
        out.append(
            Candidate(
                name=f"{collection.key}-{stem}",
                path=rel,
                licence=licence,
                credit=credit,
                split=collection.split,
                file=file,
                member=member,
                max_dark_fraction=collection.max_dark_fraction,
                skip=collection.skip.get(source_stem),
            )
        )
    return sorted(out, key=lambda c: c.name)


def dark_fraction(img: Image.Image) -> float:
    """The share of pixels whose grey value is below DARK_LEVEL (1.0 for a black frame)."""
    grey = np.asarray(img.convert("L"))
    return float((grey < DARK_LEVEL).mean())


_GCOMPRIS = "GPL-3+ (debian/copyright of gcompris-qt)"
_GCOMPRIS_CREDIT = "GCompris authors (KDE)"
_STELLARIUM = (
    "free to use and redistribute with credit (debian/copyright of stellarium, section 4: "
    "nebula images; package GPL-2+)"
)


def _gcompris(key: str, split: str = "train") -> Collection:
    return Collection(
        "gcompris-qt-data",
        "3.1-2",
        key,
        f"usr/share/gcompris-qt/rcc/{key}.rcc",
        _GCOMPRIS,
        _GCOMPRIS_CREDIT,
        inner="*.webp",
        split=split,
        copyright_file="usr/share/doc/gcompris-qt-data/copyright",
        copyright_root="gcompris/",
    )


# GCompris bundles its activities' images in .rcc files; these six hold photographs (lang.rcc's
# 116 images are drawings, solar_system's are planet renders on black). Three small activities are
# held out whole for validation.
COLLECTIONS: tuple[Collection, ...] = (
    _gcompris("explore_monuments"),
    _gcompris("erase"),
    _gcompris("explore_world_animals"),
    _gcompris("explore_farm_animals", "validation"),
    _gcompris("explore_world_music", "validation"),
    _gcompris("clickgame", "validation"),
    # Stellarium's nebula and galaxy textures: telescope photographs, most of them a small object on
    # black sky. Only those that are at most 80 % black are kept (77 of the 333 of at least 512 px).
    Collection(
        "stellarium-data",
        "0.22.2-1",
        "nebula",
        "usr/share/stellarium/nebulae/default/*.png",
        _STELLARIUM,
        "Stellarium",
        max_dark_fraction=0.8,
        credits_file="usr/share/stellarium/nebulae/default/textures.json",
    ),
)

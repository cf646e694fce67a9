"""Fetch and prepare the training photos: ``python -m s2c_pipeline.photos.fetch``.

Downloads the Debian packages listed in ``debian_sources`` (``apt-get download``, ``dpkg -x``, no
install), adds the pip-shipped training photos, prepares each one (``prepare``) and writes
``OUT/train/<package>--<name>.png`` plus ``OUT/sources.json`` with the provenance of every file.
It refuses to finish if any training photo is a near-duplicate of an evaluation photo.
Everything is cached under ``--cache``, so a second run downloads nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Source:
    """One photo to prepare: where it comes from and how to open it."""

    name: str
    package: str
    version: str
    path: str
    licence: str
    credit: str
    file: Path

    def open(self) -> Image.Image:
        if self.file.suffix == ".edj":
            return Image.open(io.BytesIO(largest_jpeg(self.file)))
        return Image.open(self.file)


def _debian_sources(packages: list[DebianPackage], cache: Path) -> list[_Source]:
    fetcher = PackageFetcher(cache)
    sources = []
    for package in tqdm(packages, desc="packages", unit="pkg", disable=None):
        unpacked = fetcher.fetch(package.name)
        if unpacked.version != package.version:
            log.warning(
                "%s is version %s, the inventory was checked on %s; paths may differ",
                package.name,
                unpacked.version,
                package.version,
            )
        for photo in package.photos:
            if photo.skip:
                log.info("skipping %s/%s: %s", package.name, photo.name, photo.skip)
                continue
            file = unpacked.root / photo.path
            if not file.is_file():
                raise FileNotFoundError(
                    f"{package.name} {unpacked.version} has no {photo.path}; update debian_sources.py"
                )
            sources.append(
                _Source(
                    photo.name, package.name, unpacked.version, photo.path, photo.licence, photo.credit, file
                )
            )
    return sources


def _package_sources() -> list[_Source]:
    return [
        _Source(
            p.name, p.package, p.version, str(p.path.relative_to(p.path.parents[2])), p.licence, "", p.path
        )
        for p in package_training_photos()
    ]


def _check_disjoint(thumbnails: dict[str, np.ndarray]) -> None:
    evaluation = {p.name: similarity.thumbnail(p.load()) for p in evaluation_photos()}
    clashes = similarity.near_duplicates(thumbnails, evaluation)
    if clashes:
        listed = ", ".join(f"{a} ~ {b} ({s:.2f})" for a, b, s in clashes)
        raise RuntimeError(f"training photos near-duplicate evaluation photos: {listed}; drop them")


def fetch(cache: Path, out: Path, *, with_large: bool = False) -> list[dict[str, object]]:
    """Build ``out/train/*.png`` and ``out/sources.json``; returns the sources.json records."""
    packages = [p for p in PACKAGES if with_large or not p.large]
    sources = _debian_sources(packages, cache) + _package_sources()
    train = out / "train"
    train.mkdir(parents=True, exist_ok=True)
    (out / "sources.json").unlink(missing_ok=True)  # written again only once every check has passed
    records: list[dict[str, object]] = []
    thumbnails: dict[str, np.ndarray] = {}
    for source in tqdm(sources, desc="photos", unit="photo", disable=None):
        with source.open() as img:
            prepared = prepare(img)
        target = train / f"{source.package}--{source.name}.png"
        prepared.image.save(target, optimize=False, compress_level=6)
        thumbnails[target.stem] = similarity.thumbnail(prepared.image)
        records.append(
            {
                "file": f"train/{target.name}",
                "package": source.package,
                "version": source.version,
                "path": source.path,
                "licence": source.licence,
                "credit": source.credit,
                "source_format": prepared.source_format,
                "blockiness": prepared.blockiness,
                "original_size": list(prepared.original_size),
                "output_size": list(prepared.image.size),
                "downscale": prepared.downscale,
            }
        )
    for stale in sorted(set(train.glob("*.png")) - {out / r["file"] for r in records}):
        log.info("removing %s, not produced by this run", stale)
        stale.unlink()
    _check_disjoint(thumbnails)
    (out / "sources.json").write_text(json.dumps({"photos": records}, indent=1, ensure_ascii=False) + "\n")
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2c_pipeline.photos.fetch", description=__doc__)
    parser.add_argument(
        "--cache", type=Path, default=Path("data-cache"), help="downloads (default: data-cache)"
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: CACHE/photos)")
    parser.add_argument(
        "--with-enlightenment",
        action="store_true",
        help="also fetch enlightenment-data (401 MB download, 12 more 3840x2160 photos)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = args.out or args.cache / "photos"
    records = fetch(args.cache, out, with_large=args.with_enlightenment)
    pixels = sum(w * h for w, h in (r["output_size"] for r in records))
    log.info("%d training photos, %.1f megapixels, in %s", len(records), pixels / 1e6, out / "train")
    return 0


if __name__ == "__main__":
    sys.exit(main())

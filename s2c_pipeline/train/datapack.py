"""The training-data pack: the training photos as one small tar that can travel to a GPU machine.

A GPU machine here cannot fetch anything and takes at most 64 MB along, so the photos prepared by
``python -m s2c_pipeline.photos.fetch`` (382 MB of training PNGs) are shrunk to at most
``max_side`` and stored as WebP q95 (about 42 dB PSNR, chroma at half resolution) in an
uncompressed tar, with ``index.json`` as the first member. Reading needs only numpy and Pillow (no
torch), so the same reader serves CPU tests and GPU training. Sizes are in docs/photos.md.

Build:  python -m s2c_pipeline.train.datapack --photos data-cache/photos/train --out data-cache/train-pack.tar
Several packs of at most 60 MB each (the training set no longer fits one):
        python -m s2c_pipeline.train.datapack --photos data-cache/photos/train --packs data-cache/train-pack
        -> data-cache/train-pack-1.tar, -2.tar, ...; read them all with DataPack("data-cache/train-pack-*.tar")
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import hashlib
import io
import json
import logging
import sys
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

log = logging.getLogger(__name__)

FORMAT = "s2c-datapack/1"
MAX_PACK_BYTES = 60_000_000  # the GPU machine carries 64 MB; leave room for code and checkpoints


@dataclass(frozen=True)
class PackEntry:
    """One image in a pack: its tar member, pixel size and provenance (a ``sources.json`` record)."""

    name: str
    member: str
    width: int
    height: int
    source: Mapping[str, object]


def _encode(img: Image.Image, quality: int) -> bytes:
    """Lossy WebP: lossless WebP of these photos measured 4x bigger (8.4 vs 2.0 bits per pixel)."""
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=quality, method=6)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def build_datapack(
    photos: list[Path],
    out: Path,
    *,
    max_side: int = 4096,
    quality: int = 95,
    sources: Mapping[str, Mapping[str, object]] | None = None,
    max_bytes: int = MAX_PACK_BYTES,
) -> Path:
    """Write the pack of ``photos`` to ``out`` (replacing it) and return ``out``.

    Args:
        photos: image files; each is converted to RGB and shrunk (Lanczos) so its longer side is at
            most ``max_side`` pixels.
        out: the tar file to write.
        quality: WebP quality, 95 or more keeps the pack's own artefacts below the photos' noise.
        sources: provenance per photo file name (``sources.json`` records), copied into the index.
        max_bytes: refuse to leave a pack bigger than this.

    Raises:
        ValueError: when the pack would exceed ``max_bytes`` (lower ``max_side`` or ``quality``).
    """
    entries, blobs = _encode_all(photos, max_side, quality, sources)
    return _write(out, entries, blobs, max_side, quality, max_bytes)


def _encode_all(
    photos: list[Path], max_side: int, quality: int, sources: Mapping[str, Mapping[str, object]] | None
) -> tuple[list[dict[str, object]], list[tuple[str, bytes]]]:
    if not photos:
        raise ValueError("no photos to pack; run `python -m s2c_pipeline.photos.fetch` first")
    names = [Path(p).stem for p in photos]
    if len(set(names)) != len(names):
        raise ValueError("photo file names must be unique within a pack")
    entries, blobs = [], []
    for path in tqdm(photos, desc="packing", unit="photo", disable=None):
        with Image.open(path) as src:
            img = src.convert("RGB")
        img.info.clear()  # no ICC profile (the photos are sRGB), so a pack's bytes depend on pixels only
        if max(img.size) > max_side:
            img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        data = _encode(img, quality)
        member = f"images/{Path(path).stem}.webp"
        source = dict((sources or {}).get(Path(path).name, {}))
        entries.append(
            {
                "name": Path(path).stem,
                "member": member,
                "width": img.width,
                "height": img.height,
                "bytes": len(data),
                "source": source,
            }
        )
        blobs.append((member, data))
    return entries, blobs


def _write(
    out: Path,
    entries: list[dict[str, object]],
    blobs: list[tuple[str, bytes]],
    max_side: int,
    quality: int,
    max_bytes: int,
) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        index = {"format": FORMAT, "max_side": max_side, "quality": quality, "images": entries}
        _add(tar, "index.json", json.dumps(index, indent=1, ensure_ascii=False).encode())
        for member, data in blobs:
            _add(tar, member, data)
    size = tmp.stat().st_size
    if size > max_bytes:
        tmp.unlink()
        raise ValueError(
            f"pack would be {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit; "
            "lower --max-side or --quality"
        )
    tmp.replace(out)
    pixels = sum(e["width"] * e["height"] for e in entries)  # type: ignore[operator]
    log.info("%s: %d images, %.1f MP, %.1f MB", out, len(entries), pixels / 1e6, size / 1e6)
    return out


def _tar_bytes(entries: list[dict[str, object]], blobs: list[tuple[str, bytes]]) -> int:
    """An upper bound of the tar's size: a header block (and a PAX block) per member, padded data,
    the index, and tar's closing record."""
    data = sum(512 * 3 + -(-len(b) // 512) * 512 for _, b in blobs)
    index = len(json.dumps({"images": entries}, indent=1, ensure_ascii=False).encode()) + 4096
    return data + index + tarfile.RECORDSIZE * 2


def build_datapacks(
    photos: list[Path],
    prefix: Path,
    *,
    max_side: int = 4096,
    quality: int = 95,
    sources: Mapping[str, Mapping[str, object]] | None = None,
    max_bytes: int = MAX_PACK_BYTES,
) -> list[Path]:
    """Write ``photos`` as ``PREFIX-1.tar``, ``PREFIX-2.tar``, ... each at most ``max_bytes``.

    Photos go in the order given, a new pack starting whenever the next photo would not fit, so
    the same photos and settings give byte-identical packs. Numbered packs beyond the last one
    written (left by an earlier, larger run) are deleted, so ``PREFIX-*.tar`` is the whole set.
    """
    entries, blobs = _encode_all(photos, max_side, quality, sources)
    groups: list[list[int]] = [[]]
    for i in range(len(entries)):
        trial = groups[-1] + [i]
        if groups[-1] and _tar_bytes([entries[j] for j in trial], [blobs[j] for j in trial]) > max_bytes:
            groups.append([i])
        else:
            groups[-1] = trial
    prefix = Path(prefix)
    written = []
    for n, group in enumerate(groups, start=1):
        out = prefix.with_name(f"{prefix.name}-{n}.tar")
        written.append(
            _write(out, [entries[j] for j in group], [blobs[j] for j in group], max_side, quality, max_bytes)
        )
    for stale in pack_files(prefix.with_name(f"{prefix.name}-*.tar")):
        if stale not in written:
            log.info("removing %s, not part of this set of packs", stale)
            stale.unlink()
    return written


def pack_files(spec: Path | str | Sequence[Path | str]) -> list[Path]:
    """The pack files ``spec`` names: one path, a glob pattern (``train-pack-*.tar``), or a list.

    Numbered packs sort by number (``-2`` before ``-10``). Raises FileNotFoundError when a
    pattern matches nothing.
    """
    if isinstance(spec, (str, Path)):
        text = str(spec)
        if not glob.has_magic(text):
            return [Path(text)]
        found = [Path(p) for p in glob.glob(text)]

        def number(p: Path) -> tuple[str, int, str]:
            head, _, tail = p.stem.rpartition("-")
            return (head, int(tail), p.name) if tail.isdigit() else (p.stem, -1, p.name)

        return sorted(found, key=number)
    return [Path(p) for p in spec]


def _read_pack(path: Path) -> tuple[list[PackEntry], list[bytes]]:
    with tarfile.open(path, "r:") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    if "index.json" not in files:
        raise ValueError(f"{path} is not a data pack: it has no index.json member")
    index = json.loads(files["index.json"])
    if index.get("format") != FORMAT:
        raise ValueError(f"{path}: pack format {index.get('format')!r}, this reader reads {FORMAT}")
    entries = [
        PackEntry(e["name"], e["member"], e["width"], e["height"], e["source"]) for e in index["images"]
    ]
    missing = [e.member for e in entries if e.member not in files]
    if missing:
        raise ValueError(f"{path}: index lists members the tar lacks: {missing[:5]}")
    return entries, [files[e.member] for e in entries]


class DataPack:
    """Reads one or several packs into memory (their compressed bytes) and decodes each image on first use.

    ``path`` is a pack, a glob pattern (``data-cache/train-pack-*.tar``) or a list of packs; their
    images form one sequence, in pack order. Decoded images stay cached at 3 bytes per pixel (560 MB
    for 188 MP), so that ``random_crops`` costs only slicing once every image has been seen.
    """

    def __init__(self, path: Path | str | Sequence[Path | str]) -> None:
        self.paths = pack_files(path)
        if not self.paths:
            raise FileNotFoundError(
                f"no pack matches {path}; build the packs with `python -m s2c_pipeline.train.datapack` "
                "(docs/photos.md)"
            )
        self.path = self.paths[0]
        self.entries: list[PackEntry] = []
        self._data: list[bytes] = []
        for p in self.paths:
            entries, data = _read_pack(p)
            self.entries += entries
            self._data += data
        names = [e.name for e in self.entries]
        if len(set(names)) != len(names):
            raise ValueError(f"the packs {[str(p) for p in self.paths]} hold an image name twice")
        self._decoded: list[np.ndarray | None] = [None] * len(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as uint8 HxWx3 (read-only; copy before changing it)."""
        cached = self._decoded[i]
        if cached is None:
            with Image.open(io.BytesIO(self._data[i])) as img:
                cached = np.asarray(img.convert("RGB"))
            cached.setflags(write=False)
            self._decoded[i] = cached
        return cached

    def random_crops(self, rng: np.random.Generator, batch: int, size: int) -> np.ndarray:
        """``batch`` random ``size`` x ``size`` crops, float32 (B, 3, size, size) in [0, 1].

        Images are drawn in proportion to their area, so every pixel is equally likely; images
        smaller than ``size`` are never drawn. Each crop is flipped left-right and top-bottom with
        probability 1/2 each.
        """
        area = np.array([e.width * e.height if min(e.width, e.height) >= size else 0 for e in self.entries])
        if not area.any():
            raise ValueError(f"no image in {[str(p) for p in self.paths]} is at least {size}x{size}")
        picks = rng.choice(len(self.entries), size=batch, p=area / area.sum())
        out = np.empty((batch, size, size, 3), dtype=np.uint8)
        for b, i in enumerate(picks):
            img = self.image(int(i))
            y = int(rng.integers(0, img.shape[0] - size + 1))
            x = int(rng.integers(0, img.shape[1] - size + 1))
            crop = img[y : y + size, x : x + size]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            if rng.random() < 0.5:
                crop = crop[::-1]
            out[b] = crop
        return out.transpose(0, 3, 1, 2).astype(np.float32) / 255.0


def _load_sources(path: Path | None) -> dict[str, Mapping[str, object]]:
    if path is None or not path.is_file():
        log.warning("no sources.json found; the pack index will carry no provenance")
        return {}
    return {Path(r["file"]).name: r for r in json.loads(path.read_text())["photos"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2c_pipeline.train.datapack", description=__doc__)
    parser.add_argument("--photos", type=Path, required=True, help="folder of training photos (PNG)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="one pack to write (.tar); fails if over 60 MB")
    target.add_argument(
        "--packs", type=Path, help="write PACKS-1.tar, PACKS-2.tar, ... each at most 60 MB (a prefix)"
    )
    parser.add_argument(
        "--max-mb",
        type=float,
        default=MAX_PACK_BYTES / 1e6,
        help="with --packs: the most MB a pack may hold (default 60; 30 lets a GPU call carry one "
        "beside the 30 MB working tree, docs/weights.md)",
    )
    parser.add_argument("--max-side", type=int, default=4096, help="longest side in pixels (default 4096)")
    parser.add_argument("--quality", type=int, default=95, help="WebP quality (default 95)")
    parser.add_argument(
        "--sources",
        type=Path,
        default=None,
        help="provenance (default: the sources.json that fetch wrote beside --photos)",
    )
    parser.add_argument(
        "--include",
        action="append",
        default=None,
        metavar="GLOB",
        help="pack only photos whose file name matches one of these globs (repeatable; default: all)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    photos = sorted(
        p
        for p in args.photos.iterdir()
        if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"}
        and (args.include is None or any(fnmatch.fnmatch(p.name, g) for g in args.include))
    )
    sources = _load_sources(args.sources or args.photos.parent / "sources.json")
    if args.out:
        build_datapack(photos, args.out, max_side=args.max_side, quality=args.quality, sources=sources)
        return 0
    if not 0 < args.max_mb <= MAX_PACK_BYTES / 1e6:
        parser.error(f"--max-mb must be above 0 and at most {MAX_PACK_BYTES / 1e6:g}")
    max_bytes = int(args.max_mb * 1e6)
    for pack in build_datapacks(
        photos, args.packs, max_side=args.max_side, quality=args.quality, sources=sources, max_bytes=max_bytes
    ):
        print(f"{hashlib.sha256(pack.read_bytes()).hexdigest()}  {pack}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

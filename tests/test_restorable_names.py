"""Whatever ``compress`` marks ok, ``decompress`` restores under that name; what it cannot restore as
files it marks ``bad_name`` and keeps verbatim; one bad bitstream or an input-shard problem fails no
shard.

Real tars (one written by ``tar`` itself), the real commit path (``run_shard_task``) and the real
decode path (the driver's ``plan_decompress``, then ``run_decode_task`` as an actor runs it), without
Ray except in the one end-to-end test at the end.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from pipeline_fixtures import (  # noqa: F401
    image_bytes,
    ray_local_fixture,
    sample_members,
    weights_file_fixture,
    write_shard,
)

from s2c_pipeline.archive.committed import read_committed
from s2c_pipeline.archive.layout import OutputLayout, shard_id_for
from s2c_pipeline.archive.manifest import read_manifests
from s2c_pipeline.bitstream import decode_container, encode_container
from s2c_pipeline.codec.encode_and_verify import EncodeSettings
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.imaging import metrics
from s2c_pipeline.imaging.colour import ColourHandling
from s2c_pipeline.pipeline import DecodeConfig, RunConfig, compress, decompress, verify
from s2c_pipeline.pipeline.compress.resume import ShardTask
from s2c_pipeline.pipeline.compress.shard_task import WorkerContext, run_shard_task
from s2c_pipeline.pipeline.decompress.decode_task import PNG, WEBDATASET, CodecCache, run_decode_task
from s2c_pipeline.pipeline.decompress.driver import DecompressSummary, plan_decompress, summarise
from s2c_pipeline.shards.records import normalise_name

SETTINGS = EncodeSettings(quality=3.0, max_pixels=10**6, device="cpu")


@pytest.fixture(scope="module")
def codec(weights_file: Path) -> ImageCodec:
    return ImageCodec.load(weights_file=weights_file, device="cpu")


def _tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A tar with exactly these member names (``TarShardWriter`` would refuse none of them either)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _compress(shard: Path, prefix: Path, codec: ImageCodec) -> OutputLayout:
    """One input shard through the actor's path (read, code, commit), without Ray."""
    layout = OutputLayout.of(str(prefix))
    task = ShardTask(shard_id_for(str(shard)), str(shard))
    run_shard_task(
        task,
        attempt=1,
        codec=codec,
        settings=SETTINGS,
        layout=layout,
        storage_options={},
        worker=WorkerContext(),
    )
    return layout


def _decompress(
    layout: OutputLayout, out: Path, weights_file: Path, *, format: str = PNG, where: str | None = None
) -> DecompressSummary:
    """``decompress`` without Ray: the driver's plan, then each task as a decode actor runs it."""
    frame = read_committed(layout, {}).rows
    plan = plan_decompress(frame, layout, str(out), where=where, format=format)
    codecs = CodecCache([(weights_file.name, weights_file.read_bytes())])
    results = [run_decode_task(t, codecs=codecs, max_pixels=10**7, storage_options={}) for t in plan.tasks]
    return summarise(plan, results, (), 0.0)


def _sample_rows(layout: OutputLayout) -> list[dict]:
    return [r for r in read_manifests(layout.prefix).to_pylist() if r["status"] != "shard_problem"]


def _tar_members(path: Path | str) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]


def _decoded_hash(path: Path) -> str:
    with Image.open(path) as image:
        return metrics.pixels_sha256(image)


def test_members_written_by_tar_with_a_leading_dot_slash_are_coded_and_restored(
    tmp_path: Path, codec: ImageCodec, weights_file: Path
) -> None:
    source = tmp_path / "photos"
    files = {
        "000000.png": image_bytes(20, 24, 1),
        "000000.json": b'{"caption": "first"}',
        "sub/000001.jpg": image_bytes(24, 20, 2, "JPEG"),
        "sub/000001.cls": b"3",
    }
    for name, data in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    shard = tmp_path / "in.tar"
    subprocess.run(["tar", "--sort=name", "-cf", str(shard), "-C", str(source), "."], check=True)
    assert "./000000.png" in [n for n, _ in _tar_members(shard)]  # what `tar -C DIR .` writes

    layout = _compress(shard, tmp_path / "out", codec)
    rows = {r["key"]: r for r in _sample_rows(layout)}
    assert {k: r["status"] for k, r in rows.items()} == {"000000": "ok", "sub/000001": "ok"}
    assert rows["000000"]["source_member"] == "./000000.png"  # where the original is, verbatim
    assert rows["000000"]["carried_members"] == ["000000.json"]

    png = _decompress(layout, tmp_path / "png", weights_file)
    assert png.ok and png.decoded == 2, png.format()
    for key, row in rows.items():
        assert _decoded_hash(tmp_path / "png" / f"{key}.png") == row["decoded_sha256"]
    assert (tmp_path / "png" / "000000.json").read_bytes() == files["000000.json"]
    assert (tmp_path / "png" / "sub" / "000001.cls").read_bytes() == files["sub/000001.cls"]

    wds = _decompress(layout, tmp_path / "wds", weights_file, format=WEBDATASET)
    assert wds.ok and wds.decoded == 2
    (restored,) = (tmp_path / "wds").glob("*.tar")
    assert sorted(n for n, _ in _tar_members(restored)) == [
        "000000.json",
        "000000.png",
        "sub/000001.cls",
        "sub/000001.png",
    ]


UNRESTORABLE = {  # key -> what its error must say
    "back\\slash": "backslash",
    "tab\tkey": "control characters",
    "dup": "2 samples",
    "both": "'both.png'",
}


def _names_shard(tmp_path: Path) -> tuple[Path, list[tuple[str, bytes]]]:
    members = [
        ("good1.png", image_bytes(20, 20, 1)),
        ("good1.json", b'{"i": 1}'),
        ("back\\slash.png", image_bytes(20, 20, 2)),
        ("tab\tkey.png", image_bytes(20, 20, 3)),
        ("dup.png", image_bytes(20, 20, 4)),
        ("dup.json", b'{"first": true}'),
        ("dup.png", image_bytes(20, 20, 5)),  # the same key right after: a new sample (repeated .png)
        ("dup.json", b'{"first": false}'),
        ("both.jpg", image_bytes(20, 20, 6, "JPEG")),  # coded, its decoded KEY.png ...
        ("both.png", image_bytes(20, 20, 7)),  # ... would replace this carried member
        ("good2.png", image_bytes(20, 20, 8)),
    ]
    return _tar(tmp_path / "names.tar", members), members


def test_names_decompress_cannot_write_are_kept_verbatim_as_bad_name(
    tmp_path: Path, codec: ImageCodec, weights_file: Path
) -> None:
    shard, members = _names_shard(tmp_path)
    layout = _compress(shard, tmp_path / "out", codec)
    rows = _sample_rows(layout)
    assert [(r["key"], r["status"]) for r in rows] == [
        ("good1", "ok"),
        ("back\\slash", "bad_name"),
        ("tab\tkey", "bad_name"),
        ("dup", "bad_name"),
        ("dup", "bad_name"),
        ("both", "bad_name"),
        ("good2", "ok"),
    ]
    output = _tar_members(layout.shard(shard_id_for(str(shard))))
    for row in rows:
        if row["status"] == "bad_name":
            assert UNRESTORABLE[row["key"]] in row["error"] and "--format webdataset" in row["error"]
            originals = [(n, d) for n, d in members if n.split(".")[0] == row["key"]]
            assert all(o in output for o in originals)  # every original byte for byte
    ok_rows = [r for r in rows if r["status"] == "ok"]

    png = _decompress(layout, tmp_path / "png", weights_file)
    assert png.decoded == 2 and len(png.errors) == 5, png.format()  # one per bad_name sample
    assert all("--format webdataset" in e for e in png.errors)
    for row in ok_rows:
        assert _decoded_hash(tmp_path / "png" / f"{row['key']}.png") == row["decoded_sha256"]
    written = sorted(
        str(p.relative_to(tmp_path / "png")) for p in (tmp_path / "png").rglob("*") if p.is_file()
    )
    assert written == ["good1.json", "good1.png", "good2.png"]

    wds = _decompress(layout, tmp_path / "wds", weights_file, format=WEBDATASET)
    assert wds.ok and wds.decoded == 2 and wds.restored == 5, wds.format()
    (restored,) = (tmp_path / "wds").glob("*.tar")
    restored_members = _tar_members(restored)
    assert [n for n, _ in restored_members] == [
        "good1.png",
        "good1.json",
        *(n for n, _ in members[2:10]),
        "good2.png",
    ]
    assert restored_members[2:10] == members[2:10]  # the dataset as it was

    report = verify(layout.prefix)  # run.json and index.json are written by `compress` only
    assert [p for p in report.problems if not p.startswith((layout.run_json, layout.index_json))] == []


def _reseal(tar: bytearray, row: dict, colour: Callable[[int], int]) -> None:
    """Give a stored bitstream another colour code (``colour(old)``), with valid CRCs, same length."""
    start, size = row["s2c_offset"], row["s2c_bytes"]
    parsed = decode_container(bytes(tar[start : start + size]))
    data = encode_container(
        replace(parsed, header=replace(parsed.header, colour=colour(parsed.header.colour)))
    )
    assert len(data) == size
    tar[start : start + size] = data


def _cut_in_last_member(data: bytes) -> bytes:
    """The tar cut short inside its last member's data, as an interrupted upload leaves it."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        last = tar.getmembers()[-1]
    return data[: last.offset_data + last.size // 2]


def test_a_stream_that_does_not_decode_is_one_error_and_the_rest_are_restored(
    tmp_path: Path, codec: ImageCodec, weights_file: Path
) -> None:
    shard = write_shard(tmp_path / "in.tar", sample_members(0, 5))
    layout = _compress(shard, tmp_path / "out", codec)
    rows = _sample_rows(layout)
    assert {r["status"] for r in rows} == {"ok"}
    path = Path(layout.shard(shard_id_for(str(shard))))
    tar = bytearray(path.read_bytes())
    _reseal(tar, rows[0], lambda _: 0x07)  # a source kind this version does not know
    _reseal(tar, rows[1], lambda old: old | ColourHandling.ALPHA_CARRIED)  # but no alpha plane
    path.write_bytes(bytes(tar))

    png = _decompress(layout, tmp_path / "png", weights_file)
    assert png.decoded == 3 and len(png.errors) == 2, png.format()
    assert "'s0_000'" in png.errors[0] and "'s0_001'" in png.errors[1]
    for row in rows[2:]:
        assert _decoded_hash(tmp_path / "png" / f"{row['key']}.png") == row["decoded_sha256"]
    assert not (tmp_path / "png" / "s0_000.png").exists()


def test_shard_problem_rows_are_counted_apart_and_fail_nothing(
    tmp_path: Path, codec: ImageCodec, weights_file: Path
) -> None:
    whole = write_shard(tmp_path / "whole.tar", sample_members(0, 3)).read_bytes()
    shard = tmp_path / "cut.tar"
    shard.write_bytes(_cut_in_last_member(whole))  # the reader returns the samples before the cut
    layout = _compress(shard, tmp_path / "out", codec)
    problems = [r for r in read_manifests(layout.prefix).to_pylist() if r["status"] == "shard_problem"]
    assert problems

    summary = _decompress(layout, tmp_path / "png", weights_file)
    assert summary.ok, summary.format()
    assert summary.decoded == len(_sample_rows(layout)) and summary.selected == summary.decoded
    assert len(summary.shard_problems) == len(problems)
    assert "input shard" in summary.format() and problems[0]["error"] in summary.format()

    # the public entry point: nothing to decode, so no Ray is needed
    only = decompress(layout.prefix, str(tmp_path / "none"), where="status == 'shard_problem'")
    assert only.ok and only.selected == 0 and len(only.shard_problems) == len(problems), only.format()


_IMAGES = {
    "png": image_bytes(16, 16, 1),
    "PNG": image_bytes(16, 16, 2),
    "jpg": image_bytes(16, 16, 3, "JPEG"),
}
# plain names (a folder "a.b" can meet a file "a.b"), or anything made of a few hard characters
_SEGMENT = st.one_of(st.sampled_from(["a", "0", "a.b"]), st.text(alphabet="ab.\\\t: ", max_size=3))
_KEY = st.builds(
    lambda lead, parts: lead + "/".join(parts),
    st.sampled_from(["", "./", "././", ".//"]),
    st.lists(_SEGMENT, min_size=1, max_size=2),
)
_MEMBERS = st.lists(
    st.tuples(_KEY, st.sampled_from(["png", "PNG", "jpg", "json", "b", "seg.png"])), max_size=6
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=_MEMBERS)
@example(names=[("a", "b"), ("a.b/0", "png")])  # the file a.b, then a.b as a folder
@example(names=[("a", "png"), ("a/::", "png")])  # "::" is fsspec's URL chaining: bad_name
@example(names=[("./a", "png"), ("a", "json"), ("a", "jpg")])  # one sample; a.jpg coded next to a.png
@example(names=[("./a", "png"), ("a", "png"), ("b", "png")])  # the same key twice, in two spellings
def test_whatever_compress_marks_ok_decompress_restores_under_that_name(
    names: list[tuple[str, str]], codec: ImageCodec, weights_file: Path
) -> None:
    members = [(f"{key}.{ext}", _IMAGES.get(ext, b"{}")) for key, ext in names]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        layout = _compress(_tar(root / "in.tar", members), root / "out", codec)
        rows = _sample_rows(layout)
        originals = {normalise_name(n): d for n, d in members}  # a repeated name is a bad_name sample

        png = _decompress(layout, root / "png", weights_file)
        assert png.decoded == sum(r["status"] == "ok" for r in rows), png.format()
        assert len(png.errors) == sum(r["status"] == "bad_name" for r in rows), png.format()
        for row in rows:
            if row["status"] == "bad_name":
                continue
            if row["status"] == "ok":
                assert _decoded_hash(root / "png" / f"{row['key']}.png") == row["decoded_sha256"]
            for name in row["carried_members"]:
                assert (root / "png" / name).read_bytes() == originals[name]

        wds = _decompress(layout, root / "wds", weights_file, format=WEBDATASET)
        assert wds.ok and wds.decoded + wds.restored == len(rows), wds.format()


def test_a_prefix_with_every_kind_of_name_decompresses_and_verifies(
    ray_local, tmp_path: Path, weights_file: Path
) -> None:
    """End to end on Ray: a shard written by `tar -C DIR .` with names no file can have, and a
    truncated shard with a repeated key."""
    source = tmp_path / "photos"
    source.mkdir()
    for name, data in [
        ("000000.png", image_bytes(20, 24, 1)),
        ("000000.json", b"{}"),
        ("back\\slash.png", image_bytes(20, 20, 2)),
        ("both.jpg", image_bytes(20, 20, 3, "JPEG")),
        ("both.png", image_bytes(20, 20, 4)),
    ]:
        (source / name).write_bytes(data)
    inputs = tmp_path / "in"
    inputs.mkdir()
    subprocess.run(["tar", "--sort=name", "-cf", str(inputs / "a.tar"), "-C", str(source), "."], check=True)
    repeated = [
        ("x.png", image_bytes(20, 20, 5)),
        ("x.png", image_bytes(20, 20, 6)),
        ("y.png", image_bytes(20, 20, 7)),
    ]
    (inputs / "b.tar").write_bytes(_cut_in_last_member(_tar(tmp_path / "b.tar", repeated).read_bytes()))
    prefix = tmp_path / "out"
    config = RunConfig(weights=str(weights_file), quality=3, show_progress=False, actors=1)
    summary = compress([str(inputs / "*.tar")], str(prefix), config)
    assert summary.ok and summary.stats.statuses.get("ok") == 1, summary
    assert summary.stats.statuses.get("bad_name") == 4 and summary.stats.statuses.get("shard_problem")

    decode = DecodeConfig(show_progress=False, actors=1)
    wds = decompress(str(prefix), str(tmp_path / "wds"), format=WEBDATASET, config=decode)
    assert wds.ok and wds.decoded == 1 and wds.restored == 4 and wds.shard_problems, wds.format()
    png = decompress(str(prefix), str(tmp_path / "png"), where="status != 'bad_name'", config=decode)
    assert png.ok and png.decoded == 1, png.format()
    assert (tmp_path / "png" / "000000.json").read_bytes() == b"{}"
    report = verify(str(prefix), decode=True, config=decode)
    assert report.ok and report.decoded == 1, report.format()

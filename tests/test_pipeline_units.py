"""Pipeline pieces without Ray: one shard through compress_shard, names, filters, resume rules."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
import zlib
from pathlib import Path

import pandas as pd
import pytest
from pipeline_fixtures import image_bytes, make_shards, sample_members, weights_file_fixture, write_shard  # noqa: F401

from s2c_pipeline.archive.layout import OutputLayout, shard_id_for
from s2c_pipeline.bitstream import decode_container
from s2c_pipeline.codec.encode_and_verify import EncodeSettings
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.imaging import metrics
from s2c_pipeline.pipeline import ResumeRefused, RunConfig, compress, format_summary
from s2c_pipeline.pipeline.compress.shard_coder import compress_shard
from s2c_pipeline.pipeline.decompress.output_paths import safe_local_path
from s2c_pipeline.pipeline.decompress.selection import SelectionError, select_rows
from s2c_pipeline.shards import read_shard
from s2c_pipeline.shards.names import UnsafeName, check_relative_name


@pytest.fixture(scope="module")
def codec(weights_file: Path) -> ImageCodec:
    return ImageCodec.load(weights_file=weights_file, device="cpu")


def _bomb_png(side: int = 20000) -> bytes:
    """A tiny PNG whose header declares side x side pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_compress_shard_rows_statuses_and_carried_members(tmp_path: Path, codec: ImageCodec) -> None:
    good = sample_members(0, 2)
    hostile = [
        ("notimage.jpg", b"this is text, not a JPEG"),
        ("empty.png", b""),
        ("onlymeta.json", b'{"no": "image"}'),
        ("big.png", _bomb_png()),
        ("dotted.v2.png", image_bytes(20, 20, 9)),  # key "dotted", extension "v2.png" (not an image type)
    ]
    shard = write_shard(tmp_path / "in.tar", good + hostile)
    contents = read_shard(str(shard))
    settings = EncodeSettings(quality=3.0, max_pixels=1_000_000, device="cpu")
    out = compress_shard(contents, codec, settings, output_url=str(tmp_path / "out.tar"))

    rows = {r.key: r for r in out.rows}
    assert len(out.rows) == len(contents.samples) == 7
    assert {k: r.status for k, r in rows.items()} == {
        "s0_000": "ok",
        "s0_001": "ok",
        "notimage": "bad_input",
        "empty": "bad_input",
        "onlymeta": "bad_input",
        "big": "skipped_too_large",
        "dotted": "bad_input",
    }
    assert all(r.error for r in out.rows if r.status != "ok")
    originals = dict(good + hostile)
    members = {m.name: m.data for s in read_shard(str(tmp_path / "in.tar")).samples for m in s.members}
    assert members == originals
    written = tmp_path / "out.tar"
    written.write_bytes(out.tar)
    output_members = {m.name: m.data for s in read_shard(str(written)).samples for m in s.members}
    for row in out.rows:
        for name in row.carried_members:  # carried byte for byte, failed images included
            assert output_members[name] == originals[name]
    for key in ("s0_000", "s0_001"):
        row = rows[key]
        data = out.tar[row.s2c_offset : row.s2c_offset + row.s2c_bytes]
        assert data == output_members[f"{key}.s2c"]
        assert decode_container(data).header.weights_id == codec.weights.weights_id
        decoded = codec.decode(data)
        assert metrics.pixels_sha256(decoded.image) == row.decoded_sha256
        assert row.source_sha256 == hashlib.sha256(originals[row.source_member]).hexdigest()
        assert row.bpp == pytest.approx(row.s2c_bytes * 8 / (row.width * row.height))
    assert out.stats.images_ok == 2 and out.stats.images_failed == 5


def test_compress_shard_records_shard_problems(tmp_path: Path, codec: ImageCodec) -> None:
    shard = write_shard(tmp_path / "in.tar", sample_members(0, 3))
    truncated = tmp_path / "cut.tar"
    truncated.write_bytes(shard.read_bytes()[:2000])
    contents = read_shard(str(truncated))
    out = compress_shard(contents, codec, EncodeSettings(3.0, 10**6, "cpu"), output_url="x")
    problems = [r for r in out.rows if r.status == "shard_problem"]
    assert problems and all(r.error for r in problems)
    assert len(out.rows) == len(contents.samples) + len(contents.problems)


def test_hostile_names_and_repeated_keys_become_rows(tmp_path: Path, codec: ImageCodec) -> None:
    path = tmp_path / "hostile.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [
            ("a.png", image_bytes(20, 20, 1)),
            ("../evil.png", image_bytes(20, 20, 2)),
            ("/abs.png", image_bytes(20, 20, 3)),
            ("a.png", image_bytes(20, 20, 4)),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    contents = read_shard(str(path))
    out = compress_shard(contents, codec, EncodeSettings(3.0, 10**6, "cpu"), output_url="x")
    # both kept, verbatim (decompress could not write two a.png files), each its own sample
    assert [(r.key, r.status) for r in out.rows if r.status != "shard_problem"] == [("a", "bad_name")] * 2
    problems = " | ".join(r.error for r in out.rows if r.status == "shard_problem")
    assert "../evil.png" in problems and "/abs.png" in problems and "link.png" in problems
    assert "duplicate key 'a'" in problems
    written = [[m.data for m in s.members] for s in read_shard_bytes(out.tar, tmp_path).samples]
    assert written == [[image_bytes(20, 20, 1)], [image_bytes(20, 20, 4)]]  # nothing hostile written


def read_shard_bytes(data: bytes, folder: Path):
    (folder / "written.tar").write_bytes(data)
    return read_shard(str(folder / "written.tar"))


def test_shard_ids_are_stable_readable_and_distinct() -> None:
    a = shard_id_for("s3://bucket/a/train-00001.tar")
    assert a == shard_id_for("s3://bucket/a/train-00001.tar")
    assert a.startswith("train-00001-") and len(a) == len("train-00001-") + 8
    assert a != shard_id_for("s3://bucket/b/train-00001.tar")
    assert shard_id_for("/x/we ird$name.tar.gz").startswith("we_ird_name-")
    layout = OutputLayout.of("s3://b/out/")
    assert layout.marker(a) == f"s3://b/out/_done/{a}.json"


@pytest.mark.parametrize(
    "name", ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a\\b", "C:x", "a\x00b", ""]
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeName):
        check_relative_name(name)


def test_links_inside_the_output_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "out"
    root.mkdir()
    (root / "sub").symlink_to(outside, target_is_directory=True)
    assert safe_local_path(root, "dir.v2/000001.png") == (root / "dir.v2" / "000001.png").resolve()
    with pytest.raises(UnsafeName, match="symbolic link"):
        safe_local_path(root, "sub/x.png")


def test_where_filter_selects_and_refuses_code() -> None:
    frame = pd.DataFrame(
        {
            "key": ["a", "b", "c"],
            "bpp": [0.1, 0.6, 0.9],
            "psnr": [20.0, 35.0, 28.0],
            "status": ["ok", "ok", "bad_input"],
        }
    )
    assert list(select_rows(frame, where="bpp > 0.5")["key"]) == ["b", "c"]
    assert list(select_rows(frame, where="psnr < 30 and status == 'ok'")["key"]) == ["a"]
    assert list(select_rows(frame, keys=["c", "a"])["key"]) == ["a", "c"]
    for hostile in ("__import__('os').system('true')", "key.str.len() > 0", "@x > 1", "nope > 1", "bpp"):
        with pytest.raises(SelectionError):
            select_rows(frame, where=hostile)
    with pytest.raises(SelectionError, match="not in the manifests"):
        select_rows(frame, keys=["zzz"])


def test_dry_run_and_refused_resume_need_no_ray(tmp_path: Path, weights_file: Path) -> None:
    make_shards(tmp_path / "in", 2, 1)
    prefix = tmp_path / "out"
    config = RunConfig(weights=str(weights_file), quality=2, dry_run=True, show_progress=False)
    summary = compress([str(tmp_path / "in" / "*.tar")], str(prefix), config)
    assert summary.dry_run and len(summary.todo) == 2 and not prefix.exists()
    assert "2 shard(s) to do" in format_summary(summary)

    prefix.mkdir()
    (prefix / "run.json").write_text(
        json.dumps(
            {
                "format": 1,
                "identity": {
                    "layout_version": 1,
                    "model": "s2c-conv-small",
                    "weights_sha256": "0" * 64,
                    "weights_id": "0" * 16,
                    "quality": 2.0,
                },
            }
        )
    )
    with pytest.raises(ResumeRefused, match="weights_sha256"):
        compress([str(tmp_path / "in" / "*.tar")], str(prefix), config)


def test_target_bpp_gives_each_image_its_own_quality(tmp_path: Path, codec: ImageCodec) -> None:
    from s2c_pipeline.codec.target import RateTarget

    shard = write_shard(tmp_path / "in.tar", sample_members(0, 2))
    contents = read_shard(str(shard))
    generous = EncodeSettings(quality=3.0, max_pixels=1_000_000, device="cpu", target=RateTarget("bpp", 1e6))
    out = compress_shard(contents, codec, generous, output_url=str(tmp_path / "out.tar"))
    assert [r.quality for r in out.rows] == [float(codec.num_qualities)] * 2  # highest quality fits
    impossible = EncodeSettings(quality=3.0, max_pixels=1_000_000, device="cpu", target=RateTarget("bpp", 1e-6))
    out = compress_shard(contents, codec, impossible, output_url=str(tmp_path / "out2.tar"))
    assert [r.quality for r in out.rows] == [1.0, 1.0]
    assert all(r.status == "ok" and "not reached" in r.error for r in out.rows)
    for row in out.rows:  # the recorded quality is the one in the bitstream
        data = out.tar[row.s2c_offset : row.s2c_offset + row.s2c_bytes]
        assert decode_container(data).header.quality == row.quality

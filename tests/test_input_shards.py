"""What ``s2c compress`` accepts as an input shard: plain and gzip-compressed tars, concatenated
tars read through to the end, and anything else refused as a failed shard that names what it is."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import re
import tarfile
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from pipeline_fixtures import (  # noqa: F401
    cli_main,
    image_bytes,
    ray_local_fixture,
    sample_members,
    weights_file_fixture,
)

from s2c_pipeline.archive.layout import OutputLayout, shard_id_for
from s2c_pipeline.archive.manifest import read_manifests
from s2c_pipeline.shards import ShardReadError, read_shard

Members = list[tuple[str, bytes]]


def tar_bytes(members: Members, *, mode: str = "w") -> bytes:
    """A tar written by Python's tarfile (``mode="w:gz"`` for a .tar.gz), padded to 10240 bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def read_members(url: str, **options) -> Members:
    return [(m.name, m.data) for s in read_shard(url, **options).samples for m in s.members]


def offsets(url: str) -> list[int]:
    return [m.offset for s in read_shard(url).samples for m in s.members]


@pytest.fixture(scope="module")
def photo_jpeg(photos) -> bytes:
    """A real photo (scikit-image's coffee) as a JPEG file, as a user would pass one by mistake."""
    buffer = io.BytesIO()
    photos[2][1].save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


# --- gzip-compressed shards ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["00001.tar.gz", "00001.tgz", "00001.tar"])
def test_gzip_shards_are_read_like_plain_ones(tmp_path: Path, name: str) -> None:
    """Detected by the gzip magic bytes, whatever the suffix; offsets are those of the tar inside."""
    members = sample_members(1, 5)
    plain = tmp_path / "plain.tar"
    plain.write_bytes(tar_bytes(members))
    packed = tar_bytes(members, mode="w:gz")
    assert packed[:2] == b"\x1f\x8b"
    path = tmp_path / name
    path.write_bytes(packed)

    contents = read_shard(str(path))
    assert [(m.name, m.data) for s in contents.samples for m in s.members] == members
    assert [s.key for s in contents.samples] == [f"s1_{i:03d}" for i in range(5)]
    assert contents.problems == ()
    assert offsets(str(path)) == offsets(str(plain))
    assert contents.size_bytes == len(packed)  # the object as stored, compressed
    assert contents.sha256 == hashlib.sha256(packed).hexdigest()


def test_concatenated_gzip_members_are_all_read(tmp_path: Path) -> None:
    """``cat a.tar.gz b.tar.gz`` is one gzip file of two members holding two tars."""
    first, second = sample_members(1, 3), sample_members(2, 2)
    path = tmp_path / "joined.tar.gz"
    path.write_bytes(gzip.compress(tar_bytes(first)) + gzip.compress(tar_bytes(second)))
    contents = read_shard(str(path))
    assert [(m.name, m.data) for s in contents.samples for m in s.members] == first + second
    assert contents.problems == ()


def test_gzip_shards_are_decompressed_in_bounded_memory(tmp_path: Path) -> None:
    """A 48 MiB member compresses to about 50 KB; skipping it over the member limit must stream,
    not decompress the whole shard into memory."""
    after = ("after.png", image_bytes(24, 32, 7))
    members = [("big.png", bytes(48 * 2**20)), ("big.json", b"{}"), after]
    path = tmp_path / "big.tar.gz"
    path.write_bytes(tar_bytes(members, mode="w:gz"))
    assert path.stat().st_size < 2**20

    tracemalloc.start()
    try:
        contents = read_shard(str(path), max_member_bytes=2**20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    big, following = contents.samples
    assert big.members[0].data == b"" and "over the 1.0 MiB limit" in (big.members[0].omitted or "")
    assert big.members[1].data == b"{}"
    assert [(m.name, m.data) for m in following.members] == [after]
    assert contents.problems == ()
    assert peak < 12 * 2**20, f"peak {peak / 2**20:.1f} MiB while reading a gzip shard"


def test_a_truncated_gzip_shard_keeps_the_samples_before_the_cut(tmp_path: Path) -> None:
    members = [(f"{i:03d}.{ext}", bytes([i + 1]) * 3000) for i in range(12) for ext in ("jpg", "txt")]
    packed = tar_bytes(members, mode="w:gz")
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    contents = read_shard(str(path))
    returned = [(m.name, m.data) for s in contents.samples for m in s.members]
    assert returned == members[: len(returned)]  # a prefix, every byte right
    (problem,) = contents.problems
    assert problem.startswith("truncated gzip stream: it ends at compressed byte")


def test_a_gzip_checksum_mismatch_is_reported(tmp_path: Path) -> None:
    packed = bytearray(tar_bytes(sample_members(1, 3), mode="w:gz"))
    packed[-8] ^= 0xFF  # the CRC-32 of the trailer: every deflate block still decodes
    path = tmp_path / "crc.tar.gz"
    path.write_bytes(bytes(packed))
    contents = read_shard(str(path))
    (problem,) = contents.problems
    assert problem.startswith("corrupt gzip data after compressed byte")
    assert "incorrect data check" in problem


# --- concatenated tars -----------------------------------------------------------------------------


def test_concatenated_tars_are_read_through_every_end_marker(tmp_path: Path) -> None:
    """Like GNU tar's --ignore-zeros: the samples after each end-of-archive marker are read too."""
    first, second, third = sample_members(1, 3), sample_members(2, 2), sample_members(3, 1)
    parts = [tar_bytes(first), tar_bytes([]), tar_bytes(second), tar_bytes(third)]
    path = tmp_path / "joined.tar"
    path.write_bytes(b"".join(parts))
    contents = read_shard(str(path))
    assert [(m.name, m.data) for s in contents.samples for m in s.members] == first + second + third
    assert contents.problems == ()
    second_start = len(parts[0]) + len(parts[1])
    assert contents.samples[3].offset == second_start  # offsets stay positions in the joined file
    assert contents.sha256 == hashlib.sha256(b"".join(parts)).hexdigest()


@pytest.mark.parametrize("junk", [b"not a header " * 60, b"trailing bytes"])
def test_data_after_the_end_marker_that_is_no_tar_is_reported(tmp_path: Path, junk: bytes) -> None:
    members = sample_members(1, 2)
    archive = tar_bytes(members)
    path = tmp_path / "junk.tar"
    path.write_bytes(archive + junk)
    contents = read_shard(str(path))
    assert [(m.name, m.data) for s in contents.samples for m in s.members] == members
    (problem,) = contents.problems
    assert f"at byte {len(archive)}" in problem and "after the end-of-archive marker" in problem


# --- files that are not tar shards -----------------------------------------------------------------


def _zip(payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.jpg", payload)
    return buffer.getvalue()


def _flip(data: bytes, where: int) -> bytes:
    return data[:where] + bytes([data[where] ^ 0xFF]) + data[where + 1 :]


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


NOT_TARS: list[tuple[str, Callable[[bytes], bytes], str]] = [
    (
        "photo.jpg",
        lambda jpeg: jpeg,
        "is a JPEG image, not a tar shard; pack images into WebDataset tar shards",
    ),
    (
        "image.png",
        lambda jpeg: _png(),
        "is a PNG image, not a tar shard; pack images into WebDataset tar shards",
    ),
    ("photo.jpg.gz", gzip.compress, "is gzip-compressed, and what it holds is a JPEG image, not a tar shard"),
    ("empty.tar", lambda jpeg: b"", "is empty (0 bytes), not a tar shard"),
    ("photos.zip", _zip, "is a zip archive, not a tar shard; pack images into WebDataset tar shards"),
    (
        "00001.tar.bz2",
        lambda jpeg: bz2.compress(tar_bytes([("a.jpg", jpeg)])),
        "is bzip2-compressed, not a tar shard; only plain and gzip-compressed tar shards are read",
    ),
    (
        "shards.list",
        lambda jpeg: b"s3://bucket/a.tar\ns3://bucket/b.tar\n",
        "is a text file, not a tar shard",
    ),
    ("noise.tar", lambda jpeg: bytes(range(1, 256)) * 4, "is not a tar shard: no valid tar header at byte 0"),
    (
        "cut.tar.gz",
        lambda jpeg: gzip.compress(tar_bytes([("a.jpg", jpeg)]))[:5],
        "is gzip-compressed, but no tar header could be decompressed from it (truncated gzip stream",
    ),
    (
        "broken.tar",
        lambda jpeg: _flip(tar_bytes([("BZh.jpg", jpeg)]), 10),  # a name that starts like bzip2
        "is a tar shard that cannot be read: no valid tar header at byte 0 (bad checksum); nothing in it "
        "could be read: write the shard again",
    ),
]


@pytest.mark.parametrize(("name", "make", "expected"), NOT_TARS, ids=[n for n, _, _ in NOT_TARS])
def test_a_file_that_is_not_a_tar_fails_the_read_at_once(
    tmp_path: Path, photo_jpeg: bytes, name: str, make: Callable[[bytes], bytes], expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(make(photo_jpeg))
    started = time.monotonic()
    with pytest.raises(ShardReadError) as caught:
        read_shard(str(path), attempts=3, backoff_s=30)
    assert time.monotonic() - started < 5  # the bytes would not change: not retried
    error = caught.value
    assert str(error).startswith(f"{path} {expected}"), str(error)
    assert "see docs/pipeline.md" in str(error) and "\n" not in str(error)
    assert (error.url, error.attempts, error.retryable) == (str(path), 1, False)


# --- end to end: the CLI on a local Ray ------------------------------------------------------------


@pytest.mark.usefixtures("ray_local")
def test_compress_fails_a_jpeg_reads_gzip_and_concatenated_shards(
    tmp_path: Path, weights_file: Path, photo_jpeg: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """One run over a JPEG given by mistake, a .tar.gz and two tars joined: the JPEG fails (no
    marker, exit 1, a message saying what it is, not retried); every sample of the others gets a
    row; the ratio counts only the samples coded."""
    photo = tmp_path / "in" / "photo.jpg"
    photo.parent.mkdir()
    photo.write_bytes(photo_jpeg)
    gz_members = [*sample_members(1, 3), ("broken.jpg", b"this is not a JPEG")]
    gz_shard = tmp_path / "in" / "00001.tar.gz"
    gz_shard.write_bytes(tar_bytes(gz_members, mode="w:gz"))
    first, second = sample_members(2, 2), sample_members(3, 2)
    joined = tmp_path / "in" / "00002.tar"
    joined.write_bytes(tar_bytes(first) + tar_bytes(second))
    prefix = tmp_path / "out"

    code = cli_main(
        [
            "compress",
            *(str(p) for p in (photo, gz_shard, joined)),
            str(prefix),
            "--weights",
            str(weights_file),
            "--quality",
            "3",
            "--actors",
            "1",
            "--no-progress",
        ]
    )
    printed = capsys.readouterr().out

    assert code == 1
    layout = OutputLayout.of(str(prefix))
    assert not Path(layout.marker(shard_id_for(str(photo)))).exists()
    assert not Path(layout.shard(shard_id_for(str(photo)))).exists()
    assert Path(layout.marker(shard_id_for(str(gz_shard)))).exists()
    assert Path(layout.marker(shard_id_for(str(joined)))).exists()
    assert re.search(r"shards\s+2 done, 0 skipped, 1 failed \(of 3\)", printed)
    assert (
        f"FAILED shard {photo}: ShardReadError: {photo} is a JPEG image, not a tar shard; "
        "pack images into WebDataset tar shards first (see docs/pipeline.md)"
    ) in printed
    assert "0 shard retries" in printed and "re-run the same command" not in printed

    rows = read_manifests(str(prefix)).to_pandas().set_index("key")
    everything = gz_members + first + second
    keys = {name.split(".")[0] for name, _ in everything}
    assert set(rows.index) == keys
    assert (rows["status"] != "shard_problem").all()
    assert rows.loc["broken", "status"] == "bad_input"
    assert (rows.drop(index="broken")["status"] == "ok").all()

    ok = rows[rows["status"] == "ok"]
    coded_in = sum(len(data) for name, data in everything if name.split(".")[0] in ok.index)
    carried = sum(
        len(data)
        for name, data in everything
        if name.split(".")[0] in ok.index and not name.endswith(("png", "jpg"))
    )
    ratio = coded_in / (ok["s2c_bytes"].sum() + carried)
    shown = re.search(r"ratio\s+(\S+)x", printed)
    assert shown and shown.group(1) == f"{ratio:.2f}", printed

"""Shards in: URL expansion, whole-shard reads of real (and hostile) tar files, tar writing, publish."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import pickle
import tarfile
import time
from pathlib import Path

import fsspec
import pytest
from aiohttp import ClientPayloadError
from botocore.exceptions import ClientError, NoCredentialsError
from fsspec.implementations.memory import MemoryFileSystem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from s2c_pipeline.shards import (
    ShardReadError,
    TarShardWriter,
    expand_braces,
    expand_inputs,
    image_member,
    is_transient,
    publish,
    read_range,
    read_shard,
    split_name,
)
from s2c_pipeline.shards.samples import BAD_IMAGE_BYTES, build_sample_shards

# --- helpers ---------------------------------------------------------------------------------------


def file_info(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special_info(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def make_tar(entries, *, tar_format: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar from (name, bytes) pairs or (TarInfo, bytes | None) pairs, written by Python's tarfile."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as tar:
        for name_or_info, data in entries:
            info, payload = (
                file_info(name_or_info, data) if isinstance(name_or_info, str) else (name_or_info, data)
            )
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return buffer.getvalue()


def write(tmp_path: Path, data: bytes, name: str = "shard.tar") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def three_samples() -> list[tuple[str, bytes]]:
    return [
        (f"{i:06d}.{ext}", bytes([i]) * size) for i in range(3) for ext, size in (("jpg", 1500), ("json", 20))
    ]


def tarfile_offsets(data: bytes) -> dict[str, int]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {member.name: member.offset for member in tar.getmembers()}


# --- URL expansion ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("s3://b/train-{00000..00002}.tar", [f"s3://b/train-{i:05d}.tar" for i in range(3)]),
        ("x{8..10}", ["x8", "x9", "x10"]),
        ("x{08..10}", ["x08", "x09", "x10"]),
        ("x{3..1}", ["x3", "x2", "x1"]),
        ("x{0..10..5}", ["x0", "x5", "x10"]),
        ("{a,b}/{1..2}", ["a/1", "a/2", "b/1", "b/2"]),
        ("p{a,b{1..2}}q", ["paq", "pb1q", "pb2q"]),
        ("keep{literal}", ["keep{literal}"]),
        ("open{brace", ["open{brace"]),
        ("plain.tar", ["plain.tar"]),
    ],
)
def test_brace_expansion(pattern: str, expected: list[str]) -> None:
    assert expand_braces(pattern) == expected


def test_brace_expansion_refuses_runaway_patterns() -> None:
    started = time.monotonic()
    with pytest.raises(ValueError, match="more than"):
        expand_braces("s3://b/{0..99999999999}.tar")
    with pytest.raises(ValueError, match="more than"):
        expand_braces("s3://b/{0..999}-{0..1999}.tar")
    assert time.monotonic() - started < 5


def test_expand_inputs_combines_globs_ranges_and_list_files(tmp_path: Path) -> None:
    for i in range(6):
        (tmp_path / f"train-{i:05d}.tar").write_bytes(b"")
    (tmp_path / "notes.md").write_text("not a shard")
    listing = tmp_path / "more.txt"
    listing.write_text(f"# shards to add\n\n{tmp_path}/train-00004.tar\n   \n{tmp_path}/train-0000[5].tar\n")
    urls = expand_inputs(
        [
            f"{tmp_path}/train-{{00000..00001}}.tar",
            f"file://{tmp_path}/train-00001.tar",  # duplicate in another spelling
            f"{tmp_path}/train-0000[23].tar",
            f"@{listing}",
            str(listing),  # a .txt input is a list file too; duplicates collapse
        ]
    )
    assert urls == [str(tmp_path / f"train-{i:05d}.tar") for i in range(6)]


def test_expand_inputs_names_missing_shards(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"{i:05d}.tar").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as caught:
        expand_inputs([f"{tmp_path}/{{00000..00014}}.tar", f"{tmp_path}/nothing-*.tar"])
    message = str(caught.value)
    assert "13 input shard(s) not found" in message
    assert f"{tmp_path}/00003.tar" in message and f"{tmp_path}/00012.tar" in message
    assert f"{tmp_path}/00013.tar" not in message  # at most 10 named
    assert "and 3 more" in message


def test_expand_inputs_refuses_directories_and_empty_inputs(tmp_path: Path) -> None:
    (tmp_path / "shards").mkdir()
    with pytest.raises(FileNotFoundError, match="not a file: use a glob"):
        expand_inputs([str(tmp_path / "shards")])
    with pytest.raises(ValueError, match="no input shards"):
        expand_inputs([])
    empty_list = tmp_path / "empty.txt"
    empty_list.write_text("# nothing yet\n")
    with pytest.raises(ValueError, match="no input shards"):
        expand_inputs([str(empty_list)])


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed here")
def test_gs_without_gcsfs_is_a_clear_error() -> None:
    with pytest.raises(ImportError, match=r"gs://b/x\.tar: gs:// needs an extra package.*gcsfs"):
        expand_inputs(["gs://b/x.tar"])


# --- reading ---------------------------------------------------------------------------------------


def test_reads_demo_shards_exactly(sample_shard_dir: Path) -> None:
    shards = sorted(sample_shard_dir.glob("*.tar"))
    assert len(shards) == 2
    keys = []
    for shard in shards:
        data = shard.read_bytes()
        contents = read_shard(str(shard))
        assert contents.problems == ()
        assert contents.size_bytes == len(data)
        assert contents.sha256 == hashlib.sha256(data).hexdigest()
        offsets = tarfile_offsets(data)
        with tarfile.open(shard) as tar:
            for sample in contents.samples:
                keys.append(sample.key)
                assert [m.extension for m in sample.members][1:] == ["json", "cls"]
                for member in sample.members:
                    assert member.offset == offsets[member.name]
                    assert member.data == tar.extractfile(member.name).read()
    assert keys == ["000000", "batch.v2/000001", "000002", "000003", "000004"]
    last = read_shard(str(shards[-1])).samples[-1]
    bad = image_member(last)
    assert bad is not None and bad.extension == "jpg" and bad.data == BAD_IMAGE_BYTES


@pytest.mark.parametrize("tar_format", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_long_and_unicode_names_keep_tarfile_offsets(tmp_path: Path, tar_format: int) -> None:
    long_dir = "d" * 120 if tar_format != tarfile.USTAR_FORMAT else "d" * 90
    names = [f"{long_dir}/{'k' * 80}.jpg", f"{long_dir}/{'k' * 80}.json", "Zürich/été.png", "plain.cls"]
    data = make_tar([(name, name.encode() * 3) for name in names], tar_format=tar_format)
    contents = read_shard(write(tmp_path, data))
    members = [m for s in contents.samples for m in s.members]
    assert contents.problems == ()
    assert [m.name for m in members] == names
    assert [m.data for m in members] == [n.encode() * 3 for n in names]
    assert [m.offset for m in members] == [tarfile_offsets(data)[n] for n in names]


def test_truncated_inside_a_new_sample_keeps_the_samples_before(tmp_path: Path) -> None:
    data = make_tar(three_samples())
    cut = tarfile_offsets(data)["000002.jpg"] + 512 + 700  # 700 bytes into 000002.jpg's data
    contents = read_shard(write(tmp_path, data[:cut]))
    assert [s.key for s in contents.samples] == ["000000", "000001"]
    assert [len(m.data) for s in contents.samples for m in s.members] == [1500, 20, 1500, 20]
    assert contents.problems == (
        f"truncated at byte {cut}: member 000002.jpg incomplete (700 of 1500 bytes)",
    )


def test_truncated_inside_a_sample_drops_that_sample(tmp_path: Path) -> None:
    data = make_tar(three_samples())
    cut = tarfile_offsets(data)["000001.json"] + 512 + 5
    contents = read_shard(write(tmp_path, data[:cut]))
    assert [s.key for s in contents.samples] == ["000000"]
    (problem,) = contents.problems
    assert problem.startswith(f"truncated at byte {cut}: member 000001.json incomplete")
    assert "sample '000001' (read so far: 000001.jpg) not returned" in problem


@pytest.mark.parametrize("where", ["boundary", "header"])
def test_truncated_between_members_is_reported(tmp_path: Path, where: str) -> None:
    data = make_tar(three_samples())
    cut = tarfile_offsets(data)["000002.json"] + (0 if where == "boundary" else 100)
    contents = read_shard(write(tmp_path, data[:cut]))
    assert [s.key for s in contents.samples] == ["000000", "000001"]
    (problem,) = contents.problems
    expected = "ends without its end-of-archive marker" if where == "boundary" else "ends inside a header"
    assert problem.startswith(f"truncated at byte {cut}: the archive {expected}")
    assert "sample '000002'" in problem


def test_hostile_members_are_named_and_never_returned(tmp_path: Path) -> None:
    device = tarfile.TarInfo("dev.jpg")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    data = make_tar(
        [
            ("good1.jpg", b"ok"),
            ("../evil.jpg", b"escape"),
            ("/etc/evil.jpg", b"absolute"),
            ("a/../../evil2.jpg", b"escape"),
            special_info("link.jpg", tarfile.SYMTYPE, "/etc/passwd"),
            special_info("hard.jpg", tarfile.LNKTYPE, "good1.jpg"),
            (device, None),
            special_info("pipe.jpg", tarfile.FIFOTYPE),
            special_info("folder", tarfile.DIRTYPE),
            ("good2.jpg", b"ok"),
        ]
    )
    assert "/etc/evil.jpg" in tarfile_offsets(data)  # the tar really holds an absolute name
    contents = read_shard(write(tmp_path, data))
    assert [s.key for s in contents.samples] == ["good1", "good2"]
    problems = "\n".join(contents.problems)
    assert len(contents.problems) == 7
    for expected in (
        "'../evil.jpg' at byte 1024 has a '..' path component",
        "'/etc/evil.jpg' at byte 2048 has an absolute path",
        "'a/../../evil2.jpg' at byte 3072 has a '..' path component",
        "'link.jpg' at byte 4096 is a symlink -> '/etc/passwd'",
        "'hard.jpg' at byte 4608 is a hardlink -> 'good1.jpg'",
        "'dev.jpg' at byte 5120 is a character device",
        "'pipe.jpg' at byte 5632 is a fifo",
    ):
        assert expected in problems


def test_zero_byte_and_non_image_members_are_carried(tmp_path: Path) -> None:
    data = make_tar([("empty.png", b""), ("empty.json", b"{}"), ("text.jpg", b"hello"), ("text.cls", b"3")])
    contents = read_shard(write(tmp_path, data))
    assert contents.problems == ()
    empty, text = contents.samples
    assert image_member(empty).data == b"" and image_member(text).data == b"hello"
    assert image_member(text).omitted is None


def test_duplicate_keys_are_kept_and_reported(tmp_path: Path) -> None:
    data = make_tar([("a.jpg", b"1"), ("b.jpg", b"2"), ("a.jpg", b"3"), ("c.jpg", b"4"), ("c.jpg", b"5")])
    contents = read_shard(write(tmp_path, data))
    assert [(s.key, s.members[0].data) for s in contents.samples] == [
        ("a", b"1"),
        ("b", b"2"),
        ("a", b"3"),
        ("c", b"4"),
        ("c", b"5"),
    ]
    assert len({s.offset for s in contents.samples}) == 5  # (shard, offset) stays unique
    assert contents.problems == (
        "duplicate key 'a': member 'a.jpg' at byte 2048 repeats the sample at byte 0; both kept",
        "duplicate key 'c': member 'c.jpg' at byte 4096 repeats the sample at byte 3072; both kept",
    )


def test_keys_follow_the_webdataset_rule(tmp_path: Path) -> None:
    assert split_name("dir.v1/x.y.JPG") == ("dir.v1/x", "y.jpg")
    assert split_name("a//b.seg.png") == ("a//b", "seg.png")
    assert split_name("noext") is None and split_name("d/.hidden") is None and split_name("x.") is None
    data = make_tar([("dir.v1/x.jpg", b"1"), ("dir.v1/x.seg.png", b"2"), ("UP.JPG", b"3"), ("README", b"4")])
    contents = read_shard(write(tmp_path, data))
    assert [(s.key, [m.extension for m in s.members]) for s in contents.samples] == [
        ("dir.v1/x", ["jpg", "seg.png"]),
        ("UP", ["jpg"]),
    ]
    assert contents.problems == (
        "member 'README' at byte 3072 has no extension, so it belongs to no sample; not read",
    )


def test_corrupt_header_midway_keeps_earlier_samples(tmp_path: Path) -> None:
    data = bytearray(make_tar(three_samples()))
    header = tarfile_offsets(bytes(data))["000002.jpg"]
    data[header + 10] ^= 0xFF  # breaks the header checksum
    contents = read_shard(write(tmp_path, bytes(data)))
    assert [s.key for s in contents.samples] == ["000000"]  # 000001 may have had more members
    (problem,) = contents.problems
    assert problem.startswith(f"corrupt header at byte {header} (bad checksum)")
    assert "sample '000001'" in problem


def test_corrupt_pax_record_is_reported(tmp_path: Path) -> None:
    long_name = f"{'p' * 120}.jpg"
    data = bytearray(make_tar([("first.jpg", b"1"), (long_name, b"2")]))
    pax_data = tarfile_offsets(bytes(data))[long_name] + 512  # the pax header's records
    assert data[pax_data : pax_data + 4] == b"134 "
    data[pax_data : pax_data + 4] = b"x34 "  # records carry no checksum; the parser must refuse this
    contents = read_shard(write(tmp_path, bytes(data)))
    assert contents.samples == ()  # "first" may have had more members after it: not returned
    (problem,) = contents.problems
    assert problem.startswith(
        f"corrupt pax header at byte {pax_data - 512}: bad record at position 0; sample 'first'"
    )


def test_members_over_the_limit_are_omitted_not_dropped(tmp_path: Path) -> None:
    data = make_tar([("big.png", b"x" * 5000), ("big.json", b"{}"), ("next.png", b"y" * 900)])
    contents = read_shard(write(tmp_path, data), max_member_bytes=1000)
    big, following = contents.samples
    assert (
        big.members[0].data == b"" and "over the 0.0 MiB limit (--max-member-bytes)" in big.members[0].omitted
    )
    assert big.members[1].data == b"{}" and following.members[0].data == b"y" * 900
    assert contents.problems == ()


def test_missing_shard_fails_at_once_with_a_one_line_error(tmp_path: Path) -> None:
    started = time.monotonic()
    missing = str(tmp_path / "nope.tar")
    with pytest.raises(ShardReadError) as caught:
        read_shard(missing, attempts=3, backoff_s=30)
    assert time.monotonic() - started < 5  # not retried
    error = caught.value
    assert str(error).startswith(f"shard {missing}: FileNotFoundError") and "\n" not in str(error)
    assert (error.url, error.attempts, error.retryable) == (missing, 1, False)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.url, copy.attempts, copy.retryable) == (str(error), missing, 1, False)


class EarlyEndFileSystem(MemoryFileSystem):
    """A store whose first ``cut_opens`` reads of a file end early without an error, as a dropped
    connection can look to a client that does not check lengths."""

    protocol = "earlyend"
    cut_opens = 0
    opens = 0

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(path.removeprefix("earlyend://"))

    def size(self, path):
        return len(self.cat_file(path))

    def _open(self, path, mode="rb", **kwargs):
        if mode != "rb":
            return super()._open(path, mode, **kwargs)
        EarlyEndFileSystem.opens += 1
        data = self.cat_file(path)
        if EarlyEndFileSystem.opens <= EarlyEndFileSystem.cut_opens:
            data = data[: len(data) // 2]
        return io.BytesIO(data)


@pytest.mark.parametrize(("cut_opens", "attempts"), [(1, 3), (5, 2)])
def test_stream_that_ends_early_is_retried_not_called_truncated(cut_opens: int, attempts: int) -> None:
    fsspec.register_implementation("earlyend", EarlyEndFileSystem, clobber=True)
    data = make_tar(three_samples())
    fsspec.filesystem("earlyend").pipe_file("earlyend://shard.tar", data)
    EarlyEndFileSystem.cut_opens, EarlyEndFileSystem.opens = cut_opens, 0
    if cut_opens < attempts:
        contents = read_shard("earlyend://shard.tar", attempts=attempts, backoff_s=0)
        assert contents.problems == () and [s.key for s in contents.samples] == ["000000", "000001", "000002"]
        assert EarlyEndFileSystem.opens == 2
    else:
        with pytest.raises(
            ShardReadError, match=r"read failed 2 times, last: StreamEndedEarly: stream ended at byte"
        ):
            read_shard("earlyend://shard.tar", attempts=attempts, backoff_s=0)


def client_error(status: int, code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionResetError("reset by peer"), True),
        (TimeoutError("read timed out"), True),
        (OSError(5, "InternalError"), True),  # what s3fs makes of a 5xx
        (ClientPayloadError("Response payload is not completed"), True),
        (client_error(503, "SlowDown"), True),
        (client_error(429, "TooManyRequests"), True),
        (client_error(404, "NoSuchKey"), False),
        (client_error(403, "AccessDenied"), False),
        (NoCredentialsError(), False),
        (FileNotFoundError("s3://b/x.tar"), False),
        (PermissionError("denied"), False),
        (ValueError("a bug, not storage"), False),
    ],
)
def test_transient_storage_errors_are_told_apart(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


_names = st.lists(
    st.tuples(
        st.sampled_from(["k1", "k2", "dir.x/k3", "k4"]), st.sampled_from(["jpg", "json", "cls", "seg.png"])
    ),
    min_size=1,
    max_size=8,
).map(lambda pairs: [f"{key}.{ext}" for key, ext in pairs])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=_names, sizes=st.lists(st.integers(0, 1200), min_size=8, max_size=8), cut=st.floats(0, 1))
def test_any_truncation_returns_exact_data_and_one_problem(tmp_path: Path, names, sizes, cut) -> None:
    entries = [
        (name, bytes([index + 1]) * size)
        for index, (name, size) in enumerate(zip(names, sizes[: len(names)], strict=True))
    ]
    data = make_tar(entries)
    full = read_shard(write(tmp_path, data))
    assert full.problems in ((), tuple(p for p in full.problems if p.startswith("duplicate key")))
    assert [(m.name, m.data) for s in full.samples for m in s.members] == entries
    end = tarfile_offsets(data)[names[-1]] + 512 + sizes[len(names) - 1]  # last byte of the last data
    length = int(end * cut)
    if length < 512:  # not even one header: refused as not a tar (tests/test_input_shards.py)
        with pytest.raises(ShardReadError):
            read_shard(write(tmp_path, data[:length], "cut.tar"))
        return
    part = read_shard(write(tmp_path, data[:length], "cut.tar"))
    returned = [(m.name, m.data) for s in part.samples for m in s.members]
    assert returned == entries[: len(returned)]  # a prefix, every byte right
    assert len(part.samples) <= len(full.samples)
    damage = [p for p in part.problems if not p.startswith("duplicate key")]
    assert len(damage) == 1 and (
        damage[0].startswith("truncated at byte") or damage[0].startswith("empty file")
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=4))
def test_corrupted_bytes_never_raise(tmp_path: Path, flips) -> None:
    """Flipped bytes anywhere give samples and/or problems, never an exception. (Tar has no data
    checksums: a flip inside member data or a pax record changes those bytes undetected; the
    pipeline's source_sha256 is what catches that.)"""
    entries = [
        (f"{'d' * 110}/{i:03d}.{ext}", bytes([i]) * (300 * i + 7)) for i in range(4) for ext in ("jpg", "txt")
    ]
    data = bytearray(make_tar(entries))
    end = len(data) - 10240 // 2  # keep flips mostly inside headers and data
    for where, mask in flips:
        data[int(where * end)] ^= mask
    if any(int(where * end) < 512 for where, _ in flips):  # the first header: nothing is readable,
        try:  # so the shard may be refused as a whole (tests/test_input_shards.py)
            read_shard(write(tmp_path, bytes(data)))
        except ShardReadError as refused:
            assert "no valid tar header at byte 0" in str(refused)
            return
    contents = read_shard(write(tmp_path, bytes(data)))
    assert (contents.size_bytes, contents.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert sum(len(s.members) for s in contents.samples) <= len(entries)
    assert contents.samples or contents.problems


# --- writing and publishing ------------------------------------------------------------------------


def test_writer_offsets_allow_exact_range_reads(tmp_path: Path) -> None:
    members = [
        ("000001.s2c", b"\x00bitstream" * 50),
        ("batch.v2/000002.s2c", b""),
        (f"{'n' * 150}.s2c", b"x"),
        ("été/000003.s2c", bytes(range(256)) * 3),
        ("000001.json", b"{}"),
    ]
    writer = TarShardWriter()
    offsets = [writer.add(name, data) for name, data in members]
    data = writer.finish()
    url = str(tmp_path / "out" / "00000.tar")
    publish(data, url)
    for (name, payload), offset in zip(members, offsets, strict=True):
        assert read_range(url, offset, len(payload)) == payload, name
    with tarfile.open(url) as tar:
        assert [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()] == members
    again = TarShardWriter()
    for name, payload in members:
        again.add(name, payload)
    assert again.finish() == data  # reproducible: no timestamps or owners
    assert [(m.name, m.data) for s in read_shard(url).samples for m in s.members] == members


@pytest.mark.parametrize("name", ["", "/abs.s2c", "../up.s2c", "a/../../b.s2c", "dir/"])
def test_writer_refuses_unsafe_names(name: str) -> None:
    with pytest.raises(ValueError, match="not a relative file path"):
        TarShardWriter().add(name, b"x")


def test_writer_refuses_add_after_finish() -> None:
    writer = TarShardWriter()
    writer.finish()
    with pytest.raises(ValueError, match="after finish"):
        writer.add("a.s2c", b"x")


def test_publish_replaces_atomically_and_cleans_up(tmp_path: Path) -> None:
    url = str(tmp_path / "deep" / "dir" / "part.parquet")
    publish(b"first", url)
    publish(b"second", url)
    assert Path(url).read_bytes() == b"second"
    with pytest.raises(TypeError):
        publish("not bytes", url)  # type: ignore[arg-type]  # fails while writing the temporary file
    assert Path(url).read_bytes() == b"second"
    assert [p.name for p in Path(url).parent.iterdir()] == ["part.parquet"]


def test_read_range_checks_its_bounds(tmp_path: Path) -> None:
    url = write(tmp_path, b"0123456789", "blob.bin")
    assert read_range(url, 2, 3) == b"234" and read_range(url, 10, 0) == b""
    with pytest.raises(OSError, match="asked for 5 bytes at offset 8"):
        read_range(url, 8, 5)
    with pytest.raises(ValueError, match="must be >= 0"):
        read_range(url, -1, 2)


# --- demo shards -----------------------------------------------------------------------------------


def test_build_sample_shards(tmp_path: Path, photos) -> None:
    paths = build_sample_shards(tmp_path / "a", photos, shards=3, max_side=48)
    assert [p.name for p in paths] == ["00000.tar", "00001.tar", "00002.tar"]
    samples = [s for p in paths for s in read_shard(str(p)).samples]
    assert [s.key for s in samples] == ["000000", "batch.v2/000001", "000002", "000003", "000004"]
    extensions = [image_member(s).extension for s in samples]
    assert extensions == ["png", "png", "jpg", "png", "jpg"]
    for sample in samples[:-1]:
        with Image.open(io.BytesIO(image_member(sample).data)) as image:
            assert max(image.size) == 48
    assert image_member(samples[-1]).data == BAD_IMAGE_BYTES
    again = build_sample_shards(tmp_path / "b", photos, shards=3, max_side=48)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]  # deterministic
    assert len(build_sample_shards(tmp_path / "c", photos[:1], shards=3, bad_member=False)) == 1

"""Outputs other tools and people can use: file modes that follow the umask, the manifest as
pandas reads it, an ``output_shard`` that resolves from anywhere, which run committed each row, and
readers that see committed shards only.

The archive is built the way ``s2c compress`` builds it, without Ray: the driver's records
(run.json, weights, index.json) and the actor's shard job (read, code, commit), into an output
prefix given as a *relative* path, as a user in their working directory types it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pipeline_fixtures import (  # noqa: F401
    RAY_TEST_ARGS,
    image_bytes,
    make_shards,
    sample_members,
    weights_file_fixture,
    write_shard,
)

from s2c_pipeline.archive.committed import read_committed
from s2c_pipeline.archive.index import write_index
from s2c_pipeline.archive.layout import OutputLayout, shard_id_for
from s2c_pipeline.archive.manifest import MANIFEST_SCHEMA, read_manifests
from s2c_pipeline.archive.run_record import check_or_write_run_record, identity
from s2c_pipeline.archive.weights import store_weights
from s2c_pipeline.codec.encode_and_verify import EncodeSettings
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.pipeline import RunConfig, verify
from s2c_pipeline.pipeline.compress.resume import ShardTask
from s2c_pipeline.pipeline.compress.shard_task import WorkerContext, run_shard_task
from s2c_pipeline.pipeline.compress.weights_spec import resolve_codec
from s2c_pipeline.pipeline.decompress.decode_task import CodecCache, run_decode_task
from s2c_pipeline.pipeline.decompress.driver import plan_decompress
from s2c_pipeline.shards import read_range

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = EncodeSettings(quality=3.0, max_pixels=10**6, device="cpu")
RANGE_READ_HEADING = "### One bitstream by range request"
PANDAS_HEADING = "### pandas"
NIGHTLY_HEADING = "### One run of a nightly archive"
DOC_PREFIXES = ("/data/run1", "/data/archive")
ADDED_COLUMNS = ("run_id", "committed_at")


@contextmanager
def umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@pytest.fixture(scope="module")
def codec(weights_file: Path) -> ImageCodec:
    return ImageCodec.load(weights_file=weights_file, device="cpu")


def input_shards(folder: Path) -> list[Path]:
    """Shard a: two photos-like PNGs (keys 000123, 000124) and a .jpg that is not an image (a
    failure row, its integer columns null); shard b: two samples of the fixture kind."""
    a = write_shard(
        folder / "a.tar",
        [
            ("000123.png", image_bytes(24, 32, 1)),
            ("000123.json", b'{"i": 123}'),
            ("000124.png", image_bytes(20, 28, 2)),
            ("broken.jpg", b"this is text, not a JPEG"),
        ],
    )
    return [a, write_shard(folder / "b.tar", sample_members(1, 2))]


def build_archive(
    workdir: Path, prefix: str, shards: list[Path], codec: ImageCodec, weights_file: Path, run_ids: list[str]
) -> OutputLayout:
    """What ``s2c compress`` writes, one shard per run id, each run recorded in run.json."""
    spec = resolve_codec(None, str(weights_file))
    with working_directory(workdir):
        layout = OutputLayout.of(prefix)
        wanted = identity(spec.model, spec.weights_sha256, SETTINGS.quality)
        for shard, run_id in zip(shards, run_ids, strict=True):
            check_or_write_run_record(layout, wanted, RunConfig(), {}, run_id=run_id)
            store_weights(layout, spec, {})
            url = str(shard)
            run_shard_task(
                ShardTask(shard_id_for(url), url, run_id=run_id),
                attempt=1,
                codec=codec,
                settings=SETTINGS,
                layout=layout,
                storage_options={},
                worker=WorkerContext(),
            )
        write_index(layout, {})
    return layout


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, codec: ImageCodec, weights_file: Path) -> Path:
    """Two shards committed by two runs ("night-1", "night-2") into ``workdir/archive``."""
    workdir = tmp_path_factory.mktemp("workdir")
    shards = input_shards(workdir / "in")
    build_archive(workdir, "archive", shards, codec, weights_file, ["night-1", "night-2"])
    return workdir / "archive"


def files_under(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*") if p.is_file())


# --- file modes -------------------------------------------------------------------------------


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_every_output_file_follows_the_umask(
    tmp_path: Path, codec: ImageCodec, weights_file: Path, mask: int, mode: int
) -> None:
    from s2c_pipeline.codec.weights import export_checkpoint
    from s2c_pipeline.codec.zoo import create_model

    shards = input_shards(tmp_path / "in")
    with umask(mask):
        layout = build_archive(tmp_path, "archive", shards[:1], codec, weights_file, ["run"])
        frame = read_committed(layout, {}).rows
        plan = plan_decompress(frame, layout, str(tmp_path / "png"), format="png")
        for task in plan.tasks:
            run_decode_task(task, codecs=CodecCache([(weights_file.name, weights_file.read_bytes())]), max_pixels=10**7, storage_options={})
        exported = export_checkpoint(create_model("s2c-conv-small"), tmp_path / "export", recipe={})
    archive = files_under(tmp_path / "archive")
    assert {p.relative_to(tmp_path / "archive").parts[0] for p in archive} == {
        "shards",
        "manifest",
        "_done",
        "weights",
        "run.json",
        "index.json",
    }
    decoded = files_under(tmp_path / "png")
    assert {p.name for p in decoded} == {"000123.png", "000123.json", "000124.png", "broken.jpg"}
    written = archive + decoded + [exported.path]
    modes = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in written}
    assert modes == {name: oct(mode) for name in modes}
    assert not [p for p in written if p.name.startswith(".")]  # no temporary file left behind


# --- the manifest as other tools read it ------------------------------------------------------


def documented_code(heading: str) -> str:
    """The first Python block under ``heading`` in docs/manifest.md, exactly as a reader copies it."""
    text = (ROOT / "docs" / "manifest.md").read_text()
    section = text.split(f"\n{heading}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_documented(heading: str, archive: Path, where: Path) -> dict:
    """That block run against ``archive`` (for the doc's /data/run1 or /data/archive) from the
    folder ``where``; returns the names it defined."""
    code = documented_code(heading)
    assert any(prefix in code for prefix in DOC_PREFIXES)
    for prefix in DOC_PREFIXES:
        code = code.replace(prefix, str(archive))
    namespace: dict = {}
    with working_directory(where):
        exec(compile(code, "docs/manifest.md", "exec"), namespace)
    return namespace


def test_the_documented_range_read_runs_as_written_from_another_directory(
    archive: Path, tmp_path: Path
) -> None:
    assert '"000123"' in documented_code(RANGE_READ_HEADING)
    namespace = run_documented(RANGE_READ_HEADING, archive, tmp_path)  # not where compress ran
    (tar,) = (archive / "shards").glob("a-*.tar")
    with tarfile.open(tar) as members:
        expected = members.extractfile("000123.s2c").read()
    assert namespace["bitstream"] == expected


def test_the_documented_pandas_read_keeps_integers_next_to_a_failure_row(
    archive: Path, tmp_path: Path
) -> None:
    df = run_documented(PANDAS_HEADING, archive, tmp_path)["df"]
    assert len(df) == 5 and (df.status == "bad_input").sum() == 1
    failure = df[df.status == "bad_input"].iloc[0]
    for name in ("width", "height", "s2c_offset", "s2c_bytes"):
        assert pd.api.types.is_integer_dtype(df[name]), (name, df[name].dtype)
        assert pd.isna(failure[name])  # unknown, not a made-up 0
    ok = df[df.key == "000124"].iloc[0]
    assert isinstance(ok.s2c_offset, int) and (ok.width, ok.height) == (28, 20)


def test_output_shard_is_absolute_so_it_resolves_from_anywhere(archive: Path, tmp_path: Path) -> None:
    rows = read_manifests(str(archive)).to_pylist()
    shards = {r["output_shard"] for r in rows}
    assert shards == {str(p) for p in (archive / "shards").glob("*.tar")}
    assert all(os.path.isabs(s) for s in shards)
    row = next(r for r in rows if r["key"] == "000124")
    with working_directory(tmp_path):
        data = read_range(row["output_shard"], row["s2c_offset"], row["s2c_bytes"])
    with tarfile.open(row["output_shard"]) as members:
        assert data == members.extractfile("000124.s2c").read()


# --- which run committed a row ----------------------------------------------------------------


def test_each_row_names_its_run_and_commit_time(archive: Path) -> None:
    table = read_manifests(str(archive))
    assert table.schema.field("committed_at").type == pa.timestamp("us", tz="UTC")
    night = table.filter(pc.equal(table.column("run_id"), "night-2")).to_pylist()
    markers = {
        m["source_url"]: m for m in (json.loads(p.read_text()) for p in (archive / "_done").glob("*.json"))
    }
    assert {r["source_shard"] for r in night} == {str(archive.parent / "in" / "b.tar")}
    assert len(night) == markers[str(archive.parent / "in" / "b.tar")]["rows"] == 2
    for row in table.to_pylist():
        marker = markers[row["source_shard"]]
        assert row["run_id"] == marker["run_id"]
        assert row["committed_at"] == datetime.fromisoformat(marker["committed_at"])
        assert timedelta(0) <= datetime.now(timezone.utc) - row["committed_at"] < timedelta(hours=1)
    runs = json.loads((archive / "run.json").read_text())["runs"]
    assert [r["run_id"] for r in runs] == ["night-1", "night-2"]


def test_the_documented_selection_of_one_run_works_as_written(archive: Path, tmp_path: Path) -> None:
    names = run_documented(NIGHTLY_HEADING, archive, tmp_path)
    assert names["one_run"].num_rows == 0  # the doc's example id is not a run of this archive
    assert names["last_run"].column("key").to_pylist() == ["s1_000", "s1_001"]  # night-2: shard b
    assert names["since"].num_rows == names["table"].num_rows == 5


def test_manifests_written_before_the_new_columns_still_read_and_verify(
    archive: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old"
    shutil.copytree(archive, old)
    (part,) = (old / "manifest").glob("a-*.parquet")
    older = pq.read_table(part).drop_columns(list(ADDED_COLUMNS))
    pq.write_table(older.replace_schema_metadata(MANIFEST_SCHEMA.metadata), part, compression="zstd")
    marker_path = old / "_done" / f"{part.stem}.json"
    marker = json.loads(marker_path.read_text())
    data = part.read_bytes()
    marker.update(manifest_bytes=len(data), manifest_sha256=hashlib.sha256(data).hexdigest())
    marker_path.write_text(json.dumps(marker))

    table = read_manifests(str(old))
    assert table.column_names == MANIFEST_SCHEMA.names
    by_shard = {r["source_shard"].rsplit("/", 1)[-1]: r for r in table.to_pylist()}
    assert by_shard["a.tar"]["run_id"] is None and by_shard["a.tar"]["committed_at"] is None
    assert by_shard["b.tar"]["run_id"] == "night-2"
    only_old = read_manifests([str(part)], columns=["key", "run_id"])
    assert only_old.column_names == ["key", "run_id"] and only_old.column("run_id").null_count == 3
    report = verify(str(old))
    assert report.ok, report.format()
    assert report.rows == 5


# --- committed data only ----------------------------------------------------------------------


def test_readers_see_committed_shards_only_unless_they_ask(archive: Path, tmp_path: Path) -> None:
    crashed = tmp_path / "crashed"  # a crash between the manifest part and the marker of shard b
    shutil.copytree(archive, crashed)
    (marker,) = (crashed / "_done").glob("b-*.json")
    marker.unlink()
    committed = read_manifests(str(crashed))
    assert set(committed.column("run_id").to_pylist()) == {"night-1"} and committed.num_rows == 3
    assert read_manifests(str(crashed / "manifest")).num_rows == 3  # the manifest folder itself too
    everything = read_manifests(str(crashed), include_uncommitted=True)
    assert everything.num_rows == 5
    (part,) = (crashed / "manifest").glob("b-*.parquet")
    with pytest.raises(FileNotFoundError, match=r"no commit marker.*include_uncommitted=True"):
        read_manifests([str(part)])
    assert read_manifests([str(part)], include_uncommitted=True).num_rows == 2


def test_committed_parts_only_on_a_real_s3_server(s3_server) -> None:
    from s2c_pipeline.archive.manifest import ManifestRow, write_manifest
    from s2c_pipeline.shards import publish

    bucket, options = s3_server.make_bucket("committed"), s3_server.storage_options
    prefix = f"s3://{bucket}/archive"
    for shard_id in ("a", "b"):
        row = ManifestRow(
            key=f"{shard_id}0", source_shard=f"s3://{bucket}/in/{shard_id}.tar", status="ok", attempts=1
        )
        write_manifest([row], f"{prefix}/manifest/{shard_id}.parquet", storage_options=options)
    assert read_manifests(prefix, storage_options=options, include_uncommitted=True).num_rows == 2
    with pytest.raises(FileNotFoundError, match=rf"no commit marker in s3://{bucket}/archive/_done/"):
        read_manifests(prefix, storage_options=options)
    publish(b"{}", f"{prefix}/_done/a.json", storage_options=options)
    assert read_manifests(prefix, storage_options=options).column("key").to_pylist() == ["a0"]
    publish(b"{}", f"{prefix}/_done/b.json", storage_options=options)
    assert read_manifests(prefix, storage_options=options).column("key").to_pylist() == ["a0", "b0"]


# --- one real run through Ray: run ids per invocation, from a relative prefix -------------------


@pytest.mark.slow
def test_each_compress_invocation_gets_its_own_run_id(tmp_path: Path, weights_file: Path) -> None:
    import ray

    from s2c_pipeline.pipeline import compress

    make_shards(tmp_path / "in", 2, 1)
    config = RunConfig(weights=str(weights_file), quality=3, show_progress=False, actors=1)
    if ray.is_initialized():
        ray.shutdown()
    ray.init(**RAY_TEST_ARGS)
    try:
        with working_directory(tmp_path):
            first = compress(["in/00000.tar"], "out", config)
            second = compress(["in/00000.tar", "in/00001.tar"], "out", config)
    finally:
        ray.shutdown()
    assert first.ok and second.ok and second.shards_skipped == 1
    runs = json.loads((tmp_path / "out" / "run.json").read_text())["runs"]
    ids = [r["run_id"] for r in runs]
    assert len(ids) == 2 and ids[0] != ids[1] and ids[0][:16] <= ids[1][:16]  # start times sort
    assert all(re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", i) for i in ids)
    table = read_manifests(str(tmp_path / "out"))
    by_run = {i: table.filter(pc.equal(table.column("run_id"), i)) for i in ids}
    assert by_run[ids[0]].column("key").to_pylist() == ["s0_000"]
    assert by_run[ids[1]].column("key").to_pylist() == ["s1_000"]
    assert set(table.column("output_shard").to_pylist()) == {
        str(p) for p in (tmp_path / "out" / "shards").glob("*.tar")
    }

"""Manifests out: the schema, Parquet round trips, and reading parts with pandas, pyarrow and Ray Data."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from s2c_pipeline.archive.manifest import (
    MANIFEST_SCHEMA,
    ManifestRow,
    read_manifests,
    rows_to_table,
    write_manifest,
)
from s2c_pipeline.archive.status import Status


def ok_row(index: int, shard: str = "s3://in/00000.tar") -> ManifestRow:
    return ManifestRow(
        key=f"{index:06d}",
        source_shard=shard,
        source_member=f"{index:06d}.jpg",
        source_offset=index * 4096,
        source_bytes=30_000 + index,
        source_sha256="ab" * 32,
        width=768,
        height=512,
        mode="RGB",
        model="s2c-small",
        weights_id="1a2b3c4d",
        quality=3.5,
        s2c_member=f"{index:06d}.s2c",
        s2c_offset=512 + index * 10_240,
        s2c_bytes=9_000 + index,
        bpp=0.183,
        psnr=31.25,
        ms_ssim=0.9671,
        decoded_sha256="cd" * 32,
        status="ok",
        attempts=1,
        encode_ms=812.5,
        decode_ms=790.0,
        device="cpu",
        output_shard="s3://out/shards/00000.tar",
        carried_members=(f"{index:06d}.json", f"{index:06d}.cls"),
    )


def failed_rows(shard: str) -> list[ManifestRow]:
    return [
        ManifestRow(
            key="000900",
            source_shard=shard,
            source_member="000900.jpg",
            source_offset=90_000,
            source_bytes=61,
            status="bad_input",
            attempts=1,
            error="member 000900.jpg is not an image (cannot identify image file)",
            carried_members=("000900.json",),
        ),
        ManifestRow(
            key="",
            source_shard=shard,
            status="shard_problem",
            attempts=0,
            error="truncated at byte 81920: member 000901.jpg incomplete (700 of 1500 bytes)",
        ),
    ]


def write_run(prefix: Path) -> list[ManifestRow]:
    """Two manifest parts as the pipeline writes them, without commit markers (the tests here read
    them with ``include_uncommitted``); returns every row in part order."""
    first = [ok_row(i, "s3://in/00000.tar") for i in range(3)]
    second = [ok_row(i, "s3://in/00001.tar") for i in range(3, 5)] + failed_rows("s3://in/00001.tar")
    write_manifest(first, str(prefix / "manifest" / "00000.parquet"))
    write_manifest(second, str(prefix / "manifest" / "00001.parquet"))
    return first + second


def test_schema_and_row_record_match() -> None:
    assert [f.name for f in dataclasses.fields(ManifestRow)] == MANIFEST_SCHEMA.names
    required = {f.name for f in MANIFEST_SCHEMA if not f.nullable}
    assert required == {"key", "source_shard", "status", "attempts", "carried_members"}
    assert MANIFEST_SCHEMA.metadata == {b"s2c_manifest_version": b"1"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "done"}, "status 'done' is not one of"),
        ({"status": "encode_error"}, "status 'encode_error' needs an error message"),
        ({"attempts": -1}, "attempts must be >= 0"),
    ],
)
def test_rows_refuse_inconsistent_values(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(ok_row(0), **changes)


def test_round_trip_keeps_every_value_and_null(tmp_path: Path) -> None:
    rows = write_run(tmp_path)
    table = read_manifests(str(tmp_path), include_uncommitted=True)
    assert table.schema.equals(MANIFEST_SCHEMA, check_metadata=False)
    back = [
        ManifestRow(**{**record, "carried_members": tuple(record["carried_members"])})
        for record in table.to_pylist()
    ]
    assert back == rows
    assert table.equals(rows_to_table(rows))
    folder = read_manifests(str(tmp_path / "manifest"), include_uncommitted=True)
    assert folder.num_rows == len(rows)  # the folder itself works too
    parts = [str(tmp_path / "manifest" / "0000{1,0}.parquet")]
    assert read_manifests(parts, include_uncommitted=True).equals(table)  # sorted parts


def test_columns_subset_and_single_part(tmp_path: Path) -> None:
    write_run(tmp_path)
    part = str(tmp_path / "manifest" / "00001.parquet")
    table = read_manifests(part, columns=["key", "status", "bpp"], include_uncommitted=True)
    assert table.column_names == ["key", "status", "bpp"]
    assert table.column("status").to_pylist() == ["ok", "ok", "bad_input", "shard_problem"]


def test_empty_part_is_valid_and_no_temporary_files_remain(tmp_path: Path) -> None:
    write_manifest([], str(tmp_path / "manifest" / "00000.parquet"))
    table = read_manifests(str(tmp_path), include_uncommitted=True)
    assert table.num_rows == 0 and table.schema.equals(MANIFEST_SCHEMA, check_metadata=False)
    assert [p.name for p in (tmp_path / "manifest").iterdir()] == ["00000.parquet"]


def test_missing_manifests_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"no manifest parts under .*/manifest/ \(has the run committed"
    ):
        read_manifests(str(tmp_path))


def test_pandas_and_pyarrow_read_the_parts(tmp_path: Path) -> None:
    rows = write_run(tmp_path)
    frame = pd.read_parquet(tmp_path / "manifest")
    assert len(frame) == len(rows)
    assert frame.groupby("status").size().to_dict() == {"bad_input": 1, "ok": 5, "shard_problem": 1}
    ok = frame[frame.status == "ok"]
    assert math.isclose(ok.bpp.mean(), 0.183) and list(ok.carried_members.iloc[0]) == [
        "000000.json",
        "000000.cls",
    ]
    assert frame.loc[frame.status != "ok", "psnr"].isna().all()
    dataset = pads.dataset(tmp_path / "manifest", format="parquet")
    failures = dataset.to_table(filter=pads.field("status") != "ok", columns=["key", "error"])
    assert failures.column("key").to_pylist() == ["000900", ""]
    assert {s.value for s in Status} >= set(frame.status)


@pytest.mark.slow
def test_ray_data_reads_the_manifest_folder(tmp_path: Path) -> None:
    import ray

    rows = write_run(tmp_path)
    ray.init(num_cpus=1, object_store_memory=100 * 2**20, include_dashboard=False, log_to_driver=False)
    try:
        dataset = ray.data.read_parquet(str(tmp_path / "manifest") + "/")
        assert dataset.count() == len(rows)
        assert dataset.schema().names == MANIFEST_SCHEMA.names
        ok = dataset.filter(expr="status == 'ok'")
        assert sorted(row["key"] for row in ok.take_all()) == [f"{i:06d}" for i in range(5)]
        assert pa.Table.from_pandas(dataset.to_pandas()).num_rows == len(rows)
    finally:
        ray.shutdown()


def test_statuses_read_and_print_as_the_strings_parquet_holds() -> None:
    assert [s.value for s in Status] == [
        "ok",
        "bad_input",
        "encode_error",
        "verify_failed",
        "skipped_too_large",
        "bad_name",
        "shard_problem",
    ]
    assert (
        Status.OK == "ok"
        and f"{Status.BAD_NAME}" == "bad_name"
        and str(Status.SHARD_PROBLEM) == "shard_problem"
    )
    row = ManifestRow(key="k", source_shard="s", status="verify_failed", error="e", attempts=1)
    assert row.status is Status.VERIFY_FAILED


def test_every_codec_refusal_has_one_manifest_status() -> None:
    from s2c_pipeline.archive.outcomes import status_of
    from s2c_pipeline.codec.encode_and_verify import NotCoded

    kinds = NotCoded.__subclasses__()
    assert len({status_of(kind("why")) for kind in kinds}) == len(kinds) == 4
    with pytest.raises(TypeError, match="no manifest status"):
        status_of(NotCoded("why"))

"""Shards and manifests on S3: a real server (SeaweedFS, keys enforced) and moto with injected faults."""

from __future__ import annotations

import io
import tarfile
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import s3fs

from s2c_pipeline.archive.manifest import ManifestRow, read_manifests, write_manifest
from s2c_pipeline.shards import ShardReadError, TarShardWriter, expand_inputs, publish, read_range, read_shard


def upload_shards(server, bucket: str, shard_dir: Path) -> list[str]:
    fs = server.filesystem()
    urls = []
    for path in sorted(shard_dir.glob("*.tar")):
        fs.pipe_file(f"{bucket}/shards/{path.name}", path.read_bytes())
        urls.append(f"s3://{bucket}/shards/{path.name}")
    return urls


def as_records(contents) -> list[tuple[str, list[tuple[str, int, bytes]]]]:
    return [(s.key, [(m.name, m.offset, m.data) for m in s.members]) for s in contents.samples]


def random_shard(samples: int = 12, size: int = 6000) -> bytes:
    writer = TarShardWriter()
    for index in range(samples):
        writer.add(f"{index:06d}.png", bytes((index * 7 + i) % 251 for i in range(size)))
        writer.add(f"{index:06d}.json", b'{"i": %d}' % index)
    return writer.finish()


# --- the real server ------------------------------------------------------------------------------


def test_wrong_secret_is_refused(s3_server) -> None:
    bucket = s3_server.make_bucket("auth")
    s3_server.filesystem().pipe_file(f"{bucket}/x.tar", random_shard(1))
    wrong = {**s3_server.storage_options, "secret": "not-the-secret"}
    with pytest.raises(PermissionError):
        expand_inputs([f"s3://{bucket}/x.tar"], storage_options=wrong)
    started = time.monotonic()
    with pytest.raises(
        ShardReadError, match=rf"shard s3://{bucket}/x.tar: PermissionError.*not retried"
    ) as caught:
        read_shard(f"s3://{bucket}/x.tar", storage_options=wrong, attempts=3, backoff_s=30)
    assert not caught.value.retryable and time.monotonic() - started < 10
    assert read_shard(f"s3://{bucket}/x.tar", storage_options=s3_server.storage_options).problems == ()


def test_shards_read_from_s3_match_local_reads(s3_server, sample_shard_dir: Path) -> None:
    bucket = s3_server.make_bucket("shards")
    urls = upload_shards(s3_server, bucket, sample_shard_dir)
    options = s3_server.storage_options
    assert expand_inputs([f"s3://{bucket}/shards/{{00000..00001}}.tar"], storage_options=options) == urls
    assert expand_inputs([f"s3://{bucket}/shards/*.tar"], storage_options=options) == urls
    for url in urls:
        remote = read_shard(url, storage_options=options)
        local = read_shard(str(sample_shard_dir / url.rsplit("/", 1)[1]))
        assert remote.url == url and remote.problems == ()
        assert as_records(remote) == as_records(local)
        assert (remote.sha256, remote.size_bytes) == (local.sha256, local.size_bytes)


def test_brace_range_on_s3_names_the_missing_shards(s3_server, sample_shard_dir: Path) -> None:
    bucket = s3_server.make_bucket("range")
    upload_shards(s3_server, bucket, sample_shard_dir)
    with pytest.raises(FileNotFoundError) as caught:
        expand_inputs(
            [f"s3://{bucket}/shards/{{00000..00003}}.tar"], storage_options=s3_server.storage_options
        )
    assert str(caught.value) == (
        f"2 input shard(s) not found: s3://{bucket}/shards/00002.tar, s3://{bucket}/shards/00003.tar"
    )
    with pytest.raises(ShardReadError, match=r"FileNotFoundError.*not retried"):
        read_shard(f"s3://{bucket}/shards/00009.tar", storage_options=s3_server.storage_options)


def test_output_tar_on_s3_supports_range_reads(s3_server) -> None:
    bucket = s3_server.make_bucket("out")
    writer = TarShardWriter()
    members = {f"{i:06d}.s2c": bytes([i]) * (1000 + 37 * i) for i in range(5)}
    offsets = {name: writer.add(name, data) for name, data in members.items()}
    url = f"s3://{bucket}/run/shards/00000.tar"
    publish(writer.finish(), url, storage_options=s3_server.storage_options)
    for name, data in members.items():
        assert read_range(url, offsets[name], len(data), storage_options=s3_server.storage_options) == data
    keys = s3_server.filesystem().find(f"{bucket}/run")
    assert keys == [f"{bucket}/run/shards/00000.tar"]  # one direct PUT, nothing temporary left


def test_manifests_on_s3_round_trip(s3_server) -> None:
    bucket = s3_server.make_bucket("manifest")
    options = s3_server.storage_options
    rows = [
        ManifestRow(
            key=f"{i:06d}",
            source_shard=f"s3://{bucket}/in/00000.tar",
            status="ok",
            attempts=1,
            bpp=0.1 * i,
            carried_members=(f"{i:06d}.json",),
        )
        for i in range(4)
    ]
    write_manifest(rows[:3], f"s3://{bucket}/run/manifest/00000.parquet", storage_options=options)
    write_manifest(rows[3:], f"s3://{bucket}/run/manifest/00001.parquet", storage_options=options)
    table = read_manifests(f"s3://{bucket}/run", storage_options=options, include_uncommitted=True)
    assert table.column("key").to_pylist() == [r.key for r in rows]
    frame = pd.read_parquet(f"s3://{bucket}/run/manifest/", storage_options=options)
    assert sorted(frame.key) == [r.key for r in rows]


# --- faults (moto behind the injector) ------------------------------------------------------------


def flaky_options(server, **extra) -> dict:
    # Small read blocks, so reading one shard takes several ranged GETs and a fault lands mid-shard.
    return {**server.endpoint().storage_options, "default_block_size": 16 * 1024, **extra}


def test_reset_mid_read_rereads_the_whole_shard(flaky_s3) -> None:
    endpoint = flaky_s3.endpoint()
    bucket = endpoint.make_bucket("flaky")
    data = random_shard()
    endpoint.filesystem().pipe_file(f"{bucket}/00000.tar", data)
    expected = read_shard_bytes(data)
    # From the 2nd GET on, as many GETs are cut halfway as s3fs itself tries one range (5), so the
    # error gets past s3fs and reaches read_shard.
    tries = s3fs.S3FileSystem.retries
    flaky_s3.fail_gets("/00000.tar", first=2, count=tries)
    contents = read_shard(
        f"s3://{bucket}/00000.tar", storage_options=flaky_options(flaky_s3), attempts=3, backoff_s=0.01
    )
    assert as_records(contents) == expected and contents.problems == ()
    ranges = flaky_s3.gets("/00000.tar")
    assert ranges[0].startswith("bytes=0-") and not ranges[1].startswith("bytes=0-")
    assert len(set(ranges[1 : 1 + tries])) == 1  # the broken range, retried by s3fs itself
    assert ranges[1 + tries].startswith("bytes=0-")  # then read_shard starts over from byte 0
    assert len(ranges) > 2 + tries


def test_server_errors_are_retried(flaky_s3) -> None:
    endpoint = flaky_s3.endpoint()
    bucket = endpoint.make_bucket("flaky500")
    data = random_shard()
    endpoint.filesystem().pipe_file(f"{bucket}/00000.tar", data)
    flaky_s3.fail_gets("/00000.tar", first=3, count=1, mode="503")
    options = flaky_options(
        flaky_s3, config_kwargs={"retries": {"total_max_attempts": 1}}
    )  # no botocore retry
    contents = read_shard(f"s3://{bucket}/00000.tar", storage_options=options, backoff_s=0.01)
    assert as_records(contents) == read_shard_bytes(data)
    assert flaky_s3.gets("/00000.tar").count(flaky_s3.gets("/00000.tar")[0]) == 2  # byte 0 read twice


def test_persistent_failure_raises_after_the_attempts(flaky_s3) -> None:
    endpoint = flaky_s3.endpoint()
    bucket = endpoint.make_bucket("flakydead")
    endpoint.filesystem().pipe_file(f"{bucket}/00000.tar", random_shard())
    flaky_s3.fail_gets("/00000.tar", first=2, count=10_000, mode="503")
    options = flaky_options(flaky_s3, config_kwargs={"retries": {"total_max_attempts": 1}})
    with pytest.raises(ShardReadError) as caught:
        read_shard(f"s3://{bucket}/00000.tar", storage_options=options, attempts=2, backoff_s=0.01)
    error = caught.value
    assert str(error).startswith(f"shard s3://{bucket}/00000.tar: read failed 2 times, last: OSError")
    assert (error.attempts, error.retryable) == (2, True) and "\n" not in str(error)


def read_shard_bytes(data: bytes):
    """The samples a local read of the same bytes gives (the reference for the S3 reads)."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = [m.name for m in tar.getmembers()]
    assert names  # the reference must not be vacuous
    with tempfile.NamedTemporaryFile(suffix=".tar") as handle:
        handle.write(data)
        handle.flush()
        return as_records(read_shard(handle.name))

"""Whole-run faults and topologies: a killed driver, two nodes, S3 in and out, a flaky S3 read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
from pipeline_fixtures import RAY_TEST_ARGS, make_shards, sample_members, weights_file_fixture, write_shard  # noqa: F401

from s2c_pipeline.archive.layout import OutputLayout, shard_id_for
from s2c_pipeline.archive.manifest import read_manifests
from s2c_pipeline.codec.encode_and_verify import EncodeSettings
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.pipeline import DecodeConfig, RunConfig, compress, verify
from s2c_pipeline.pipeline.compress.resume import ShardTask
from s2c_pipeline.pipeline.compress.shard_task import WorkerContext, run_shard_task

CLI = [sys.executable, str(Path(__file__).parent / "pipeline_fixtures.py")]


def _config(weights: Path, **overrides) -> RunConfig:
    return RunConfig(
        **{"weights": str(weights), "quality": 3, "show_progress": False, "actors": 1, **overrides}
    )


@pytest.mark.slow
def test_a_rerun_after_the_driver_is_killed_completes(tmp_path: Path, weights_file: Path) -> None:
    make_shards(tmp_path / "in", 4, 3)
    prefix = tmp_path / "out"
    if ray.is_initialized():
        ray.shutdown()
    ray.init(**RAY_TEST_ARGS)
    try:
        address = ray.get_runtime_context().gcs_address
        driver = subprocess.Popen(
            [
                *CLI,
                "compress",
                str(tmp_path / "in" / "*.tar"),
                str(prefix),
                "--weights",
                str(weights_file),
                "--quality",
                "3",
                "--address",
                address,
                "--actors",
                "1",
                "--no-progress",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 180
        while not list((prefix / "_done").glob("*.json")):
            assert driver.poll() is None, driver.stdout.read().decode(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "no shard committed within 180 s"
            time.sleep(0.1)
        driver.kill()  # SIGKILL: no cleanup, its actor dies with it
        driver.wait()
        committed = len(list((prefix / "_done").glob("*.json")))
        assert committed < 4
        summary = compress([str(tmp_path / "in" / "*.tar")], str(prefix), _config(weights_file))
    finally:
        ray.shutdown()
    assert summary.ok and summary.shards_skipped >= 1 and summary.shards_skipped + summary.shards_done == 4
    frame = read_manifests(str(prefix)).to_pandas()
    assert len(frame) == 12 and frame["key"].is_unique
    assert verify(str(prefix)).ok


@pytest.mark.slow
def test_shards_spread_across_two_nodes(tmp_path: Path, weights_file: Path) -> None:
    from ray.cluster_utils import Cluster

    make_shards(tmp_path / "in", 4, 2)
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 100 * 2**20, "include_dashboard": False},
    )
    try:
        cluster.add_node(num_cpus=1, object_store_memory=100 * 2**20)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address)
        summary = compress(
            [str(tmp_path / "in" / "*.tar")], str(tmp_path / "out"), _config(weights_file, actors=None)
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
    markers = [json.loads(p.read_text()) for p in (tmp_path / "out" / "_done").glob("*.json")]
    assert summary.ok and len(markers) == 4
    assert len(summary.nodes) == 2 and len({m["node_id"] for m in markers}) == 2


@pytest.mark.slow
def test_s3_in_and_out_with_credentials_from_the_environment_only(
    tmp_path: Path,
    weights_file: Path,
    s3_server,
) -> None:
    bucket = s3_server.make_bucket("pipeline")
    fs = s3_server.filesystem()
    for path in make_shards(tmp_path / "in", 2, 2):
        fs.put_file(str(path), f"{bucket}/in/{path.name}")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": s3_server.key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    run = subprocess.run(
        [
            *CLI,
            "compress",
            f"s3://{bucket}/in/{{00000..00001}}.tar",
            f"s3://{bucket}/out",
            "--weights",
            str(weights_file),
            "--quality",
            "3",
            "--s3-endpoint",
            s3_server.endpoint,
            "--actors",
            "1",
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        timeout=300,
    )
    output = (run.stdout + run.stderr).decode(errors="replace")
    assert run.returncode == 0, output[-3000:]
    assert "4 ok" in output
    fs.invalidate_cache()
    written = fs.find(f"{bucket}/out")
    assert {p.rsplit("/", 2)[-2] for p in written} >= {"shards", "manifest", "_done", "weights"}
    for path in written:
        assert s3_server.secret.encode() not in fs.cat_file(path), path
    assert s3_server.secret not in output and s3_server.key not in output
    report = verify(f"s3://{bucket}/out", config=DecodeConfig(storage_options=s3_server.storage_options))
    assert report.ok, report.format()
    frame = read_manifests(f"s3://{bucket}/out", storage_options=s3_server.storage_options).to_pandas()
    assert len(frame) == 4 and set(frame["status"]) == {"ok"}


def test_a_transient_s3_error_mid_read_rereads_the_whole_shard(
    tmp_path: Path,
    weights_file: Path,
    flaky_s3,
) -> None:
    endpoint = flaky_s3.endpoint()
    bucket = endpoint.make_bucket("flaky")
    shard = write_shard(tmp_path / "00000.tar", sample_members(0, 3, size=(64, 96)))
    endpoint.filesystem().put_file(str(shard), f"{bucket}/in/00000.tar")
    url = f"s3://{bucket}/in/00000.tar"
    flaky_s3.fail_gets("in/00000.tar", first=1, count=1, mode="reset")
    layout = OutputLayout.of(str(tmp_path / "out"))
    codec = ImageCodec.load(weights_file=weights_file, device="cpu")
    result = run_shard_task(
        ShardTask(shard_id_for(url), url),
        attempt=1,
        codec=codec,
        settings=EncodeSettings(quality=3.0, max_pixels=10**6, device="cpu"),
        layout=layout,
        storage_options=endpoint.storage_options | {"default_block_size": 4096},
        worker=WorkerContext(),
        encode_lock=threading.Lock(),
    )
    assert result.committed and result.stats.images_ok == 3
    assert len(flaky_s3.gets("in/00000.tar")) >= 2  # the broken read, then a whole new one
    assert len(read_manifests(str(tmp_path / "out")).to_pandas()) == 3

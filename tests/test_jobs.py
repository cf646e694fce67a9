"""jobs/: config files, and compress jobs submitted through a real local Ray head's job server.

The head is started with ``ray start --head --block`` in its own session on 127.0.0.1 with its own
ports, temp dir and auth token, and stopped by signalling that process and then killing whatever is
left in its session by pid. Not ``ray stop``: that kills every Ray on the machine, other people's too.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from pipeline_fixtures import weights_file_fixture  # noqa: F401
from s3server import _die_with_parent, free_ports

REPO = Path(__file__).resolve().parents[1]
JOBS = REPO / "jobs"
sys.path.insert(0, str(JOBS))

import cluster_wait  # noqa: E402
import jobspec  # noqa: E402
import run as job_run  # noqa: E402
import submit  # noqa: E402

_SCRUBBED = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "RAY_ADDRESS",
    "RAY_API_SERVER_ADDRESS",
)


# ---- config files (fast) ----------------------------------------------------------------------


def test_argv_maps_options_to_s2c_flags() -> None:
    spec = jobspec.parse_job_spec(
        {
            "verb": "compress",
            "args": ["in/*.tar", "out"],
            "options": {
                "cpus_per_actor": 2,
                "no-progress": True,
                "dry_run": False,
                "quality": None,
                "weights": ["a.pt", "b.pt"],
            },
        }
    )
    assert spec.argv() == [
        "compress",
        "in/*.tar",
        "out",
        "--cpus-per-actor",
        "2",
        "--no-progress",
        "--weights",
        "a.pt",
        "--weights",
        "b.pt",
    ]
    assert spec.job.name == "s2c-job" and spec.job.entrypoint_num_cpus == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"verb": "train", "args": ["x"]}, "verb must be one of"),
        ({"verb": "compress", "args": []}, "args must be a non-empty list"),
        ({"verb": "compress", "args": ["a", "b"], "optoins": {}}, "unknown key"),
        ({"verb": "compress", "args": ["a", "b"], "options": {"quality": {"x": 1}}}, "expected a string"),
        (
            {"verb": "compress", "args": ["a", "b"], "job": {"env": {"AWS_SECRET_ACCESS_KEY": "x"}}},
            "looks like a credential",
        ),
        (
            {"verb": "compress", "args": ["a", "b"], "job": {"env": {"MY_API_TOKEN": "x"}}},
            "looks like a credential",
        ),
        ({"verb": "compress", "args": ["a", "b"], "job": {"name": "Nightly Run"}}, "job.name"),
        (
            {"verb": "compress", "args": ["a", "b"], "job": {"env_from_submitter": ["NOT-A-NAME"]}},
            "not an environment variable name",
        ),
    ],
)
def test_bad_configs_are_refused_with_the_reason(data: dict, message: str) -> None:
    with pytest.raises(jobspec.JobSpecError, match=message):
        jobspec.parse_job_spec(data, source="bad.yaml")


def _registered_verbs() -> set[str]:
    from s2c_pipeline.cli.main import VERBS

    names: set[str] = set()
    for module in VERBS:
        recorder = _VerbRecorder()
        module.register(recorder)
        names |= recorder.names
    return names


class _VerbRecorder:
    """Stands in for argparse's subparsers to learn which verbs each CLI module registers."""

    def __init__(self) -> None:
        import argparse

        self.names: set[str] = set()
        self._sub = argparse.ArgumentParser().add_subparsers()

    def add_parser(self, name: str, **kwargs):
        self.names.add(name)
        return self._sub.add_parser(name, **kwargs)


def _example_configs() -> list[Path]:
    return sorted(JOBS.glob("*.yaml"))


def test_there_are_examples_for_compress_decompress_and_analyze() -> None:
    verbs = {jobspec.load_job_spec(p).verb for p in _example_configs()}
    assert {"compress", "decompress", "analyze"} <= verbs


@pytest.mark.parametrize("config", _example_configs(), ids=lambda p: p.name)
def test_example_configs_are_commands_s2c_accepts(config: Path) -> None:
    spec = jobspec.load_job_spec(config)
    assert spec.verb in _registered_verbs(), f"s2c has no '{spec.verb}' verb (cli/main.py VERBS)"
    submit.check_command(spec)


def test_a_typo_in_an_option_fails_before_submitting() -> None:
    spec = jobspec.parse_job_spec({"verb": "compress", "args": ["a", "b"], "options": {"qualty": 3}})
    with pytest.raises(jobspec.JobSpecError, match="qualty"):
        submit.check_command(spec)


def test_runtime_env_passes_named_variables_and_refuses_missing_ones(tmp_path: Path) -> None:
    spec = jobspec.parse_job_spec(
        {
            "verb": "compress",
            "args": ["a", "b"],
            "job": {"env": {"AWS_DEFAULT_REGION": "eu-west-1"}, "env_from_submitter": ["AWS_ACCESS_KEY_ID"]},
        }
    )
    env = submit.runtime_env(spec, tmp_path, ship_code=True, environ={"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"})
    assert env["env_vars"] == {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}
    assert env["working_dir"] == str(tmp_path)
    import s2c_pipeline

    assert Path(env["py_modules"][0]) == Path(s2c_pipeline.__file__).parent
    assert "py_modules" not in submit.runtime_env(
        spec, tmp_path, ship_code=False, environ={"AWS_ACCESS_KEY_ID": "x"}
    )
    with pytest.raises(jobspec.JobSpecError, match="AWS_ACCESS_KEY_ID, not set"):
        submit.runtime_env(spec, tmp_path, ship_code=True, environ={})


def test_an_unreachable_job_server_is_exit_status_3(tmp_path: Path) -> None:
    config = _write_config(tmp_path / "job.yaml", {"verb": "verify", "args": [str(tmp_path / "prefix")]})
    (port,) = free_ports(1)
    assert (
        submit.main(["--config", str(config), "--address", f"http://127.0.0.1:{port}"]) == submit.EXIT_NOT_RUN
    )


def test_the_credential_summary_names_variables_without_values() -> None:
    spec = jobspec.parse_job_spec({"verb": "verify", "args": ["p"], "job": {"env_from_submitter": ["S2C_X"]}})
    line = job_run.credential_summary(spec, {"AWS_SECRET_ACCESS_KEY": "hunter2", "S2C_X": "1"})
    assert "AWS_SECRET_ACCESS_KEY set" in line and "AWS_ACCESS_KEY_ID unset" in line and "S2C_X set" in line
    assert "hunter2" not in line
    assert "instance profile" in job_run.credential_summary(spec, {})


@pytest.mark.parametrize(
    ("status", "driver_code", "expected"),
    [
        ("SUCCEEDED", 0, 0),
        ("FAILED", 1, 1),
        ("FAILED", 2, 2),
        ("FAILED", -9, 137),
        ("FAILED", None, 3),
        ("STOPPED", None, 3),
        ("STOPPED", -15, 3),
    ],
)
def test_exit_status_mapping(status: str, driver_code: int | None, expected: int) -> None:
    assert submit.exit_code(status, driver_code) == expected


def test_resource_requests_are_one_bundle_per_unit() -> None:
    assert cluster_wait.bundles_for({"GPU": 2, "CPU": 1.5}) == [
        {"GPU": 1.0},
        {"GPU": 1.0},
        {"CPU": 1.0},
        {"CPU": 1.0},
    ]
    assert cluster_wait.missing({"GPU": 2, "CPU": 4}, {"CPU": 8, "GPU": 1}) == {"GPU": (1, 2)}


def test_waiting_ends_when_the_cluster_has_the_resources_or_times_out() -> None:
    readings = iter([{"CPU": 4}, {"CPU": 4, "GPU": 1}, {"CPU": 8, "GPU": 2}])
    cluster_wait.wait_for_resources({"GPU": 2}, 30, cluster_resources=lambda: next(readings), poll_s=0.01)
    with pytest.raises(cluster_wait.ResourcesUnavailable, match="0 of 1 GPU after"):
        cluster_wait.wait_for_resources({"GPU": 1}, 0.05, cluster_resources=lambda: {"CPU": 2.0}, poll_s=0.01)


# ---- a real Ray head with its job server (slow) -------------------------------------------------


@dataclass
class RayHead:
    address: str
    """The job server (dashboard) URL."""
    client_env: dict[str, str]
    """The environment a client needs: the auth token and PATH, no AWS credentials."""


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):  # the process has already gone
            if os.getsid(int(entry)) == sid:
                pids.append(int(entry))
    return pids


def _wait_until_serving(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/version", timeout=5):
                return
        except urllib.error.HTTPError:
            return  # answering (an auth error still means the job server is up)
        except OSError:
            time.sleep(1)
    raise RuntimeError(
        f"the Ray job server at {url} did not answer in {timeout_s:.0f} s:\n{log.read_text()[-3000:]}"
    )


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    """A real Ray head (2 CPUs, 200 MB object store, dashboard and job server) on 127.0.0.1."""
    temp_dir = Path(tempfile.mkdtemp(prefix="s2cray-", dir="/tmp"))  # short: Ray's socket paths are limited
    token = temp_dir / "auth_token"
    token.write_text(secrets.token_hex(32))
    gcs, dashboard, client, node_manager, object_manager, agent_http, agent_grpc, env_agent, metrics = (
        free_ports(9)
    )
    bin_dir = str(Path(sys.executable).parent)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(auth, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", PATH=f"{bin_dir}:{env.get('PATH', '')}")
    log = temp_dir / "ray-start.log"
    command = [
        f"{bin_dir}/ray",
        "start",
        "--head",
        "--block",
        "--disable-usage-stats",
        "--node-ip-address=127.0.0.1",
        f"--port={gcs}",
        f"--temp-dir={temp_dir}",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        "--num-cpus=2",
        f"--object-store-memory={200 * 2**20}",
        f"--ray-client-server-port={client}",
        f"--node-manager-port={node_manager}",
        f"--object-manager-port={object_manager}",
        f"--dashboard-agent-listen-port={agent_http}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--runtime-env-agent-port={env_agent}",
        f"--metrics-export-port={metrics}",
        "--min-worker-port=0",
        "--max-worker-port=0",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # SIGTERM (a clean stop) if pytest dies
    url = f"http://127.0.0.1:{dashboard}"
    try:
        _wait_until_serving(url, process, log)
        yield RayHead(url, env)
    finally:
        process.send_signal(signal.SIGTERM)  # `ray start --block` stops its own processes on SIGTERM
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        for pid in _session_pids(process.pid):  # leftovers of this head only: same session id
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _submit(head: RayHead, config: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """``python jobs/submit.py`` as a user runs it; its exit status is the job's."""
    return subprocess.run(
        [sys.executable, str(JOBS / "submit.py"), "--config", str(config), "--address", head.address],
        env={**head.client_env, **extra_env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _snapshot(prefix: Path) -> dict[str, tuple[bytes, int]]:
    """Every committed file's bytes and mtime: what a redo would change."""
    return {
        str(p.relative_to(prefix)): (p.read_bytes(), p.stat().st_mtime_ns)
        for folder in ("_done", "manifest", "shards")
        for p in sorted((prefix / folder).iterdir())
    }


def _require_compress_verb() -> None:
    if "compress" not in _registered_verbs():
        pytest.fail("s2c compress is not registered in s2c_pipeline/cli/main.py VERBS: the jobs cannot run")


@pytest.mark.slow
def test_compress_job_commits_shards_and_a_resubmission_redoes_nothing(
    ray_head: RayHead, tmp_path: Path, sample_shard_dir: Path, weights_file: Path
) -> None:
    _require_compress_verb()
    out = tmp_path / "archive"
    config = _write_config(
        tmp_path / "nightly.yaml",
        {
            "verb": "compress",
            "args": [str(sample_shard_dir / "*.tar"), str(out)],
            "options": {"weights": str(weights_file), "quality": 3, "cpus_per_actor": 1, "no_progress": True},
            "job": {"name": "test-nightly", "require_resources": {"CPU": 2}},
        },
    )
    inputs = sorted(sample_shard_dir.glob("*.tar"))

    first = _submit(ray_head, config)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    # the job's log, streamed by submit.py: the command, the progress line, the final table
    assert "job test-nightly: s2c compress" in first.stdout
    assert (
        f"dry run: {len(inputs)} shard(s) to compress" in first.stdout
        and "cluster resources ready after" in first.stdout
    )
    assert f"{len(inputs)} input shard(s): {len(inputs)} to do, 0 already committed" in first.stdout
    assert re.search(rf"{len(inputs)}/{len(inputs)} shards, \d+ images", first.stdout)
    assert re.search(rf"shards\s+{len(inputs)} done, 0 skipped, 0 failed", first.stdout)
    assert re.search(r"job test-nightly-\S+ SUCCEEDED, exit status 0", first.stderr)
    markers = sorted((out / "_done").glob("*.json"))
    assert len(markers) == len(inputs)
    assert len(sorted((out / "manifest").glob("*.parquet"))) == len(inputs)
    rows = pq.read_table(out / "manifest").to_pandas()
    assert len(rows) == 5 and sorted(rows["status"]) == ["bad_input", "ok", "ok", "ok", "ok"]
    assert (out / "run.json").is_file()
    before = _snapshot(out)

    second = _submit(ray_head, config)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert f"0 to do, {len(inputs)} already committed (resuming)" in second.stdout
    assert "nothing to compress, so no resources are requested" in second.stdout
    assert "cluster resources ready" not in second.stdout
    assert re.search(rf"shards\s+0 done, {len(inputs)} skipped, 0 failed", second.stdout)
    assert _snapshot(out) == before, "a re-submission rewrote committed outputs"
    assert pq.read_table(out / "manifest").to_pandas().equals(rows)


@pytest.mark.slow
def test_s3_credentials_travel_by_name_and_a_failed_job_fails_the_submitter(
    ray_head: RayHead, tmp_path: Path, sample_shard_dir: Path, weights_file: Path, s3_server
) -> None:
    _require_compress_verb()
    bucket = s3_server.make_bucket("jobs")
    config = _write_config(
        tmp_path / "to-s3.yaml",
        {
            "verb": "compress",
            "args": [str(sample_shard_dir / "*.tar"), f"s3://{bucket}/archive"],
            "options": {
                "weights": str(weights_file),
                "quality": 3,
                "s3_endpoint": s3_server.endpoint,
                "no_progress": True,
            },
            "job": {
                "name": "test-s3",
                "env": {"AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"},
                "env_from_submitter": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
            },
        },
    )

    ok = _submit(ray_head, config, AWS_ACCESS_KEY_ID=s3_server.key, AWS_SECRET_ACCESS_KEY=s3_server.secret)
    assert ok.returncode == 0, ok.stdout[-4000:] + ok.stderr[-4000:]
    assert "AWS_ACCESS_KEY_ID set, AWS_SECRET_ACCESS_KEY set" in ok.stdout
    assert "passing AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY from this environment" in ok.stderr
    assert s3_server.secret not in ok.stdout + ok.stderr
    fs = s3_server.filesystem()
    assert len(fs.glob(f"{bucket}/archive/_done/*.json")) == len(list(sample_shard_dir.glob("*.tar")))

    refused = _submit(
        ray_head, config, AWS_ACCESS_KEY_ID=s3_server.key, AWS_SECRET_ACCESS_KEY="not-the-secret"
    )
    assert refused.returncode == 1, refused.stdout[-4000:] + refused.stderr[-4000:]
    assert re.search(r"job test-s3-\S+ FAILED, exit status 1", refused.stderr)
    assert "not-the-secret" not in refused.stdout + refused.stderr


@pytest.mark.slow
def test_a_job_whose_resources_never_come_fails_having_written_nothing(
    ray_head: RayHead, tmp_path: Path, sample_shard_dir: Path
) -> None:
    _require_compress_verb()
    out = tmp_path / "archive"
    config = _write_config(
        tmp_path / "gpu.yaml",
        {
            "verb": "compress",
            "args": [str(sample_shard_dir / "*.tar"), str(out)],
            "job": {"name": "test-gpu", "require_resources": {"GPU": 1}, "resource_wait_s": 3},
        },
    )
    result = _submit(ray_head, config)
    assert result.returncode == 3, result.stdout[-4000:] + result.stderr[-4000:]
    assert "the cluster has 0 of 1 GPU after" in result.stdout
    assert re.search(r"job test-gpu-\S+ FAILED, exit status 3", result.stderr)
    assert not out.exists()

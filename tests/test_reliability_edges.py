"""Edges found by attacking the product on purpose, each held by a test (docs/pipeline.md, Reliability):
an unreachable S3 endpoint, GIF members, ``--max-member-bytes``, hostile member names end to end,
kill -9 of the driver and of an actor at moments other tests do not cover, a full disk, and
credentials in Ray's own logs.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pytest
import ray
from PIL import Image
from pipeline_fixtures import (  # noqa: F401
    cli_main,
    image_bytes,
    make_shards,
    ray_local_fixture,
    sample_members,
    weights_file_fixture,
    write_shard,
)

from s2c_pipeline.archive.manifest import read_manifests
from s2c_pipeline.imaging import ColourHandling, load_image
from s2c_pipeline.pipeline import DecodeConfig, RunConfig, compress, decompress, verify
from s2c_pipeline.shards import image_member, read_shard

CLI = [sys.executable, "-m", "s2c_pipeline"]
DRIVER = [sys.executable, str(Path(__file__).parent / "pipeline_fixtures.py")]
DECODE = DecodeConfig(show_progress=False, actors=1)


def _config(weights: Path, **overrides) -> RunConfig:
    return RunConfig(
        **{"weights": str(weights), "quality": 3, "show_progress": False, "actors": 1, **overrides}
    )


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _assert_complete(prefix: Path, samples: int) -> None:
    """Rows equal samples, no duplicate, and every bitstream decodes to its recorded pixels."""
    frame = read_manifests(str(prefix)).to_pandas()
    assert len(frame) == samples, frame[["key", "status"]]
    assert not frame.duplicated(["source_shard", "source_offset"]).any() and frame["key"].is_unique
    assert set(frame["status"]) == {"ok"}, frame[["key", "status", "error"]]
    report = verify(str(prefix), decode=True, config=DECODE)
    assert report.ok, report.format()


# --- an unreachable S3 endpoint ---------------------------------------------------------------


@pytest.mark.parametrize("case", ["input on s3", "output on s3", "verify on s3"])
def test_an_unreachable_s3_endpoint_is_one_line_naming_it(case: str, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    local_shard = write_shard(tmp_path / "in.tar", sample_members(0, 1))
    argv = {
        "input on s3": ["compress", "s3://bucket/x.tar", str(tmp_path / "out")],
        "output on s3": ["compress", str(local_shard), "s3://bucket/out"],
        "verify on s3": ["verify", "s3://bucket/out"],
    }[case]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "unused-key",
        "AWS_SECRET_ACCESS_KEY": "unused-secret",
        "AWS_MAX_ATTEMPTS": "1",  # botocore's backoff only makes the test slower, not different
    }
    run = subprocess.run(
        [*CLI, *argv, "--s3-endpoint", endpoint, "--no-progress"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "Traceback" not in output and len(output.splitlines()) <= 3, output
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(f"s2c {argv[0]}: cannot connect to the storage endpoint {endpoint} "), last
    assert "running" in last and "--s3-endpoint" in last and "network" in last


# --- .gif members ---------------------------------------------------------------------------


def _animated_gif() -> tuple[bytes, np.ndarray]:
    """Two palette frames, index 0 transparent; and the first frame as RGBA."""
    frames = []
    for shift in (0, 40):
        y, x = np.mgrid[0:20, 0:30]
        frames.append(Image.fromarray(((x * 8 + y * 3 + shift) % 200 + 1).astype(np.uint8), "P"))
    palette = [(i * 5 % 256, i * 11 % 256, 255 - i) for i in range(256)]
    for frame in frames:
        frame.putpalette([v for rgb in palette for v in rgb])
    frames[0].putpixel((0, 0), 0)
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], transparency=0, duration=100)
    first = frames[0].convert("RGBA")
    return out.getvalue(), np.asarray(first)


def test_a_gif_member_is_read_and_coded_as_the_samples_image(tmp_path: Path, weights_file: Path) -> None:
    from s2c_pipeline.codec.encode_and_verify import EncodeSettings
    from s2c_pipeline.codec.image_codec import ImageCodec
    from s2c_pipeline.pipeline.compress.shard_coder import compress_shard

    gif, first = _animated_gif()
    shard = write_shard(tmp_path / "gif.tar", [("anim.gif", gif), ("anim.json", b"{}")])
    (sample,) = read_shard(str(shard)).samples
    member = image_member(sample)
    assert member is not None and member.name == "anim.gif"
    prepared = load_image(member.data)
    assert prepared.colour.kind == ColourHandling.PALETTE
    assert (
        ColourHandling.FRAMES_DROPPED in prepared.colour and ColourHandling.ALPHA_CARRIED in prepared.colour
    )
    assert np.array_equal(prepared.rgb, first[..., :3])
    codec = ImageCodec.load(weights_file=weights_file, device="cpu")
    (row,) = compress_shard(
        read_shard(str(shard)), codec, EncodeSettings(3, 10**8, "cpu"), output_url=str(tmp_path / "o.tar")
    ).rows
    assert (row.status, row.source_member, row.s2c_member) == ("ok", "anim.gif", "anim.s2c")
    assert list(row.carried_members) == ["anim.json"]


# --- on a real local Ray --------------------------------------------------------------------


def _our_workers(name: str) -> list[psutil.Process]:
    """Ray worker processes titled ``ray::NAME...`` of the Ray this test process started (other
    Rays on the machine are left alone)."""
    mine = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith(f"ray::{name}"):
            try:
                if os.getpid() in {parent.pid for parent in proc.parents()}:
                    mine.append(proc)
            except psutil.NoSuchProcess:
                continue
    return mine


def _wait_for(condition, what: str, timeout_s: float = 180.0, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        if process is not None and process.poll() is not None:
            pytest.fail(
                f"driver exited before {what}: {process.stdout.read().decode(errors='replace')[-3000:]}"
            )
        assert time.monotonic() < deadline, f"not {what} within {timeout_s:.0f} s"
        time.sleep(0.05)
    return found


@pytest.mark.usefixtures("ray_local")
def test_max_member_bytes_flag_skips_a_larger_member(tmp_path: Path, weights_file: Path, capsys) -> None:
    big = image_bytes(96, 96, 7)  # noise-heavy PNG: several kB
    small = image_bytes(8, 8, 1)
    assert len(small) < 2000 < len(big)
    write_shard(tmp_path / "in" / "00000.tar", [("big.png", big), ("big.cls", b"1"), ("small.png", small)])
    common = ["--weights", str(weights_file), "--quality", "3", "--actors", "1", "--no-progress"]
    inputs, prefix = str(tmp_path / "in" / "00000.tar"), str(tmp_path / "out")
    assert cli_main(["compress", inputs, prefix, *common, "--max-member-bytes", "0"]) == 2
    assert "max_member_bytes must be at least 1" in capsys.readouterr().err
    assert cli_main(["compress", inputs, prefix, *common, "--max-member-bytes", "2000"]) == 0
    rows = read_manifests(prefix).to_pandas().set_index("key")
    assert rows.loc["small", "status"] == "ok"
    assert rows.loc["big", "status"] == "skipped_too_large"
    assert "limit (--max-member-bytes); not read" in rows.loc["big", "error"]
    assert rows.loc["big", "carried_members"].tolist() == ["big.cls"]
    runs = json.loads((tmp_path / "out" / "run.json").read_text())["runs"]
    assert runs[-1]["execution"]["max_member_bytes"] == 2000


def _hostile_tar(path: Path, outside: Path) -> Path:
    """A shard whose members try to leave any folder they are extracted into."""

    def add(
        tar: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = ""
    ):
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.size = kind, link, len(data)
        tar.addfile(info, io.BytesIO(data))

    png = image_bytes(24, 32, 3)
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        add(tar, "good.png", png)
        add(tar, "../escape.png", png)
        add(tar, str(outside / "absolute.png"), png)
        add(tar, "sub/../../up.png", png)
        add(tar, "link.png", kind=tarfile.SYMTYPE, link=str(outside / "linked.png"))
        add(tar, "hard.png", kind=tarfile.LNKTYPE, link="good.png")
        add(tar, "last.png", png)
    return path


@pytest.mark.usefixtures("ray_local")
def test_hostile_member_names_are_refused_and_nothing_is_written_outside(
    tmp_path: Path, weights_file: Path
) -> None:
    work = tmp_path / "work"
    outside = tmp_path / f"outside-{uuid.uuid4().hex[:8]}"
    outside.mkdir()
    shard = _hostile_tar(tmp_path / "hostile.tar", outside)
    before = {p for p in tmp_path.rglob("*")}
    summary = compress([str(shard)], str(work / "out"), _config(weights_file))
    assert summary.ok
    frame = read_manifests(str(work / "out")).to_pandas()
    assert sorted(frame[frame["status"] == "ok"]["key"]) == ["good", "last"]
    problems = "\n".join(frame[frame["status"] == "shard_problem"]["error"])
    for name in ("../escape.png", str(outside / "absolute.png"), "sub/../../up.png", "link.png", "hard.png"):
        assert repr(name) in problems, problems
    restored = decompress(str(work / "out"), str(work / "restored"), config=DECODE)
    assert restored.decoded == 2
    assert sorted(p.name for p in (work / "restored").iterdir()) == ["good.png", "last.png"]
    created = {p for p in tmp_path.rglob("*")} - before
    inside = (work / "out", work / "restored")
    strays = [p for p in created if p != work and not any(p == d or d in p.parents for d in inside)]
    assert not strays, strays
    assert list(outside.iterdir()) == []


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_an_actor_killed_right_after_its_first_commit_is_replaced(tmp_path: Path, weights_file: Path) -> None:
    make_shards(tmp_path / "in", 3, 3)
    prefix = tmp_path / "out"
    killed: list[int] = []

    def kill_after_first_marker() -> None:
        markers = prefix / "_done"
        _wait_for(lambda: markers.is_dir() and any(markers.glob("*.json")), "a shard committed")
        for proc in _our_workers("CompressWorker"):
            proc.send_signal(signal.SIGKILL)
            killed.append(proc.pid)

    killer = threading.Thread(target=kill_after_first_marker, daemon=True)
    killer.start()
    summary = compress([str(tmp_path / "in" / "*.tar")], str(prefix), _config(weights_file))
    killer.join(timeout=5)
    assert killed and summary.actor_deaths >= 1
    assert summary.ok and summary.shards_done == 3
    _assert_complete(prefix, 9)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
@pytest.mark.parametrize("moment", ["run.json written, no actor yet", "first shard being coded"])
def test_a_rerun_after_the_driver_is_killed_at_another_moment_completes(
    moment: str, tmp_path: Path, weights_file: Path
) -> None:
    """The moment "after the first commit" is tests/test_pipeline_cluster.py's."""
    make_shards(tmp_path / "in", 3, 3)
    prefix = tmp_path / "out"
    driver = subprocess.Popen(
        [
            *DRIVER,
            "compress",
            str(tmp_path / "in" / "*.tar"),
            str(prefix),
            "--weights",
            str(weights_file),
            "--quality",
            "3",
            "--address",
            ray.get_runtime_context().gcs_address,
            "--actors",
            "1",
            "--no-progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    markers = prefix / "_done"
    try:
        if moment == "run.json written, no actor yet":
            _wait_for(lambda: (prefix / "run.json").exists(), "run.json written", process=driver)
            assert not _our_workers("CompressWorker")
        else:
            _wait_for(lambda: _our_workers("CompressWorker.process"), "a shard being coded", process=driver)
        assert not (markers.is_dir() and any(markers.glob("*.json"))), "too late: a shard was committed"
        driver.kill()  # SIGKILL; its actor dies with it (an orphaned commit would be fine too)
    finally:
        driver.kill()
        driver.wait()
    summary = compress([str(tmp_path / "in" / "*.tar")], str(prefix), _config(weights_file))
    assert summary.ok and summary.shards_done + summary.shards_skipped == 3
    _assert_complete(prefix, 9)


# --- a full disk, and credentials in logs: each CLI run starts its own Ray ---------------------


def _unshare_works() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt 2>/dev/null || exit 1"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.fixture
def ray_tmpdir() -> Path:
    """A short RAY_TMPDIR of its own (Ray's socket paths must stay under 107 characters)."""
    path = Path(tempfile.mkdtemp(prefix="s2c-ray-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_a_full_disk_fails_cleanly_and_a_rerun_completes(
    tmp_path: Path, weights_file: Path, ray_tmpdir: Path
) -> None:
    """The output prefix is on a 64 MiB tmpfs (a private mount namespace); after the first shard
    is committed a filler file takes all the space left; it is deleted before the re-run."""
    if not _unshare_works():
        pytest.skip("needs unshare -rm and mount -t tmpfs (unprivileged user namespaces)")
    make_shards(tmp_path / "in", 6, 3)
    disk = tmp_path / "disk"
    disk.mkdir()
    compress_cmd = " ".join(
        [
            *CLI,
            "compress",
            f"'{tmp_path / 'in'}/*.tar'",
            f"{disk}/out",
            f"--weights {weights_file} --quality 3 --actors 1 --cpus-per-actor 1 --no-progress",
        ]
    )
    script = f"""
set -u
mount -t tmpfs -o size=64m tmpfs {disk}
{compress_cmd} > {tmp_path}/run1.log 2>&1 &
run=$!
until ls {disk}/out/_done/*.json >/dev/null 2>&1; do
  kill -0 $run 2>/dev/null || break
  sleep 0.05
done
cat /dev/zero > {disk}/filler 2>/dev/null
wait $run; echo $? > {tmp_path}/run1.rc
rm {disk}/filler
{compress_cmd} > {tmp_path}/run2.log 2>&1; echo $? > {tmp_path}/run2.rc
{" ".join(CLI)} verify {disk}/out --decode --actors 1 --no-progress > {tmp_path}/verify.log 2>&1
echo $? > {tmp_path}/verify.rc
cp -a {disk}/out {tmp_path}/copy
"""
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmpdir)}
    env.pop("RAY_ADDRESS", None)
    subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, timeout=900, check=True)
    first = (tmp_path / "run1.log").read_text()
    assert (tmp_path / "run1.rc").read_text().strip() == "1", first[-3000:]
    assert "No space left on device" in first and "Traceback" not in first, first[-3000:]
    assert "giving up" in first and first.strip().splitlines()[-1].startswith("s2c compress: "), first[-3000:]
    second = (tmp_path / "run2.log").read_text()
    assert (tmp_path / "run2.rc").read_text().strip() == "0", second[-3000:]
    assert "0 failed (of 6)" in second, second
    checked = (tmp_path / "verify.log").read_text()
    assert (tmp_path / "verify.rc").read_text().strip() == "0", checked
    frame = read_manifests(str(tmp_path / "copy")).to_pandas()
    assert len(frame) == 18 and frame["key"].is_unique and set(frame["status"]) == {"ok"}


@pytest.mark.slow
def test_no_credential_in_ray_logs_outputs_or_cli_output(
    tmp_path: Path, weights_file: Path, s3_server, ray_tmpdir: Path
) -> None:
    """tests/test_pipeline_cluster.py checks the objects written and the CLI's output; this run
    also searches every file of Ray's session (driver, raylet, worker and actor logs)."""
    bucket = s3_server.make_bucket("secrets")
    fs = s3_server.filesystem()
    for path in make_shards(tmp_path / "in", 1, 2):
        fs.put_file(str(path), f"{bucket}/in/{path.name}")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": s3_server.key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "RAY_TMPDIR": str(ray_tmpdir),
    }
    env.pop("RAY_ADDRESS", None)
    common = ["--s3-endpoint", s3_server.endpoint, "--actors", "1", "--no-progress"]
    output = ""
    for argv in (
        ["compress", f"s3://{bucket}/in/*.tar", f"s3://{bucket}/out", "--weights", str(weights_file)],
        ["verify", f"s3://{bucket}/out", "--decode"],
    ):
        run = subprocess.run([*CLI, *argv, *common], env=env, capture_output=True, text=True, timeout=600)
        output += run.stdout + run.stderr
        assert run.returncode == 0, output[-3000:]
    assert s3_server.secret not in output and s3_server.key not in output
    logs = [p for p in ray_tmpdir.rglob("*") if p.is_file() and not p.is_socket()]
    assert any(p.suffix in (".out", ".err", ".log") for p in logs)
    for path in logs:
        assert s3_server.secret.encode() not in path.read_bytes(), path
    fs.invalidate_cache()
    for path in fs.find(f"{bucket}/out"):
        assert s3_server.secret.encode() not in fs.cat_file(path), path

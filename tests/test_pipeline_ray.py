"""compress / decompress / verify on a real local Ray, on real files."""

from __future__ import annotations

import json
import os
import signal
import tarfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest
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
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.imaging import metrics
from s2c_pipeline.pipeline import DecodeConfig, ResumeRefused, RunConfig, compress, decompress, verify
from s2c_pipeline.shards import read_range, read_shard

pytestmark = pytest.mark.usefixtures("ray_local")


def _config(weights: Path, **overrides) -> RunConfig:
    """One actor: the test shards are tiny, and each actor's start (torch, model) costs seconds."""
    return RunConfig(
        **{"weights": str(weights), "quality": 3, "show_progress": False, "actors": 1, **overrides}
    )


DECODE = DecodeConfig(show_progress=False, actors=1)


def _manifest(prefix: Path) -> pd.DataFrame:
    return read_manifests(str(prefix)).to_pandas()


def _input_members(inputs: list[Path]) -> dict[str, bytes]:
    return {m.name: m.data for p in inputs for s in read_shard(str(p)).samples for m in s.members}


@pytest.fixture(scope="module")
def compressed(tmp_path_factory: pytest.TempPathFactory, weights_file: Path):
    """Three shards of four samples, compressed once for the read-only tests of this module; the
    samples share one padded size, so the actor codes them four to a pass (--batch-size 4)."""
    root = tmp_path_factory.mktemp("compressed")
    inputs = make_shards(root / "in", 3, 4)
    summary = compress([str(root / "in" / "*.tar")], str(root / "out"), _config(weights_file, batch_size=4))
    return root, inputs, summary


def test_compress_writes_a_row_per_sample_and_carries_members(compressed, weights_file: Path) -> None:
    root, inputs, summary = compressed
    prefix = root / "out"
    assert summary.ok and summary.shards_done == 3 and summary.stats.images_ok == 12
    frame = _manifest(prefix)
    assert len(frame) == 12 and frame["key"].is_unique and set(frame["status"]) == {"ok"}
    originals = _input_members(inputs)
    outputs = {
        m.name: m.data
        for p in (prefix / "shards").glob("*.tar")
        for s in read_shard(str(p)).samples
        for m in s.members
    }
    carried = [name for names in frame["carried_members"] for name in names]
    assert len(carried) == 24 and all(outputs[n] == originals[n] for n in carried)
    index = json.loads((prefix / "index.json").read_text())
    assert index["nsamples"] == 12 and len(index["shardlist"]) == 3
    assert json.loads((prefix / "run.json").read_text())["runs"][0]["execution"]["batch_size"] == 4
    assert sorted(p.name for p in (prefix / "weights").iterdir()) == [weights_file.name]

    row = frame.iloc[5]  # one image by a range request, as a consumer of the manifest would
    data = read_range(row["output_shard"], int(row["s2c_offset"]), int(row["s2c_bytes"]))
    codec = ImageCodec.load(weights_file=weights_file, device="cpu")
    assert metrics.pixels_sha256(codec.decode(data).image) == row["decoded_sha256"]
    assert verify(str(prefix)).ok


def test_resume_skips_committed_shards_and_refuses_another_quality(compressed, weights_file: Path) -> None:
    root, _, _ = compressed
    prefix = root / "out"
    before = {p: p.stat().st_mtime_ns for p in prefix.rglob("*") if p.is_file() and p.parent.name != "out"}
    again = compress([str(root / "in" / "*.tar")], str(prefix), _config(weights_file))
    assert again.ok and again.shards_done == 0 and again.shards_skipped == 3
    after = {p: p.stat().st_mtime_ns for p in before}
    assert before == after  # nothing rewritten
    assert len(_manifest(prefix)) == 12
    with pytest.raises(ResumeRefused, match=r"quality: the prefix has 3\.0, this run asks for 4\.0"):
        compress(
            [str(root / "in" / "*.tar")],
            str(prefix),
            _config(weights_file, quality=4),
        )


def test_decompress_png_webdataset_and_filters(compressed, tmp_path: Path) -> None:
    root, inputs, _ = compressed
    prefix = root / "out"
    frame = _manifest(prefix)
    originals = _input_members(inputs)

    png = decompress(str(prefix), str(tmp_path / "png"), config=DECODE)
    assert png.ok and png.decoded == 12
    for row in frame.itertuples():
        decoded = Image.open(tmp_path / "png" / f"{row.key}.png")
        assert metrics.pixels_sha256(decoded) == row.decoded_sha256  # recomputable from the PNG alone
        for name in row.carried_members:
            assert (tmp_path / "png" / name).read_bytes() == originals[name]

    threshold = float(frame["bpp"].median())
    wds = decompress(
        str(prefix),
        str(tmp_path / "wds"),
        where=f"bpp > {threshold}",
        format="webdataset",
        config=DECODE,
    )
    expected = set(frame.loc[frame["bpp"] > threshold, "key"])
    assert wds.ok and wds.decoded == len(expected)
    names = []
    for shard in (tmp_path / "wds").glob("*.tar"):
        with tarfile.open(shard) as tar:
            names += tar.getnames()
    assert {n.split(".")[0] for n in names} == expected
    assert {n for n in names if n.endswith(".json")} == {f"{k}.json" for k in expected}

    some = decompress(str(prefix), str(tmp_path / "keys"), keys=["s1_002"], config=DECODE)
    assert some.ok and sorted(p.name for p in (tmp_path / "keys").iterdir()) == [
        "s1_002.cls",
        "s1_002.json",
        "s1_002.png",
    ]


def test_decompress_refuses_keys_that_escape_the_output(compressed, tmp_path: Path) -> None:
    root, _, _ = compressed
    prefix = tmp_path / "tampered"
    os.system(f"cp -r {root / 'out'} {prefix}")
    part = sorted((prefix / "manifest").glob("*.parquet"))[0]
    table = pq.read_table(part).to_pandas()
    table.loc[0, "key"] = "../escaped"
    pq.write_table(pq.read_table(part).from_pandas(table, schema=pq.read_schema(part)), part)
    out = tmp_path / "png"
    summary = decompress(str(prefix), str(out), config=DECODE)
    assert not summary.ok and any("'../escaped'" in e and "outside" in e for e in summary.errors)
    assert not (tmp_path / "escaped.png").exists() and summary.decoded == 11


def test_verify_detects_a_flipped_byte_and_a_missing_marker(compressed, tmp_path: Path) -> None:
    root, _, _ = compressed
    prefix = tmp_path / "copy"
    os.system(f"cp -r {root / 'out'} {prefix}")
    tar = sorted((prefix / "shards").glob("*.tar"))[0]
    frame = pq.read_table(prefix / "manifest" / f"{tar.stem}.parquet").to_pandas()
    data = bytearray(tar.read_bytes())
    data[int(frame["s2c_offset"][0]) + 30] ^= 0x40  # inside the first bitstream
    tar.write_bytes(bytes(data))
    marker = sorted((prefix / "_done").glob("*.json"))[-1]
    marker.unlink()
    report = verify(str(prefix))
    text = "\n".join(report.problems)
    assert not report.ok
    assert f"{tar.name}: sha256 differs from the marker's" in text
    assert "CRC" in text  # the damaged bitstream itself is named
    assert f"shards/{marker.stem}.tar: no commit marker" in text


def test_demo_shards_round_trip(sample_shard_dir: Path, weights_file: Path, tmp_path: Path) -> None:
    """The README's path on the real sample photos: a dotted key directory and a broken .jpg, coded
    with encoder refinement (``--refine-steps``), which any decoder reads."""
    from s2c_pipeline.shards.samples import BAD_IMAGE_BYTES, DOTTED_DIRECTORY

    prefix = tmp_path / "out"
    summary = compress([str(sample_shard_dir / "*.tar")], str(prefix), _config(weights_file, refine_steps=2))
    frame = _manifest(prefix).set_index("key")
    assert summary.ok and summary.stats.statuses == {"ok": 4, "bad_input": 1}
    assert json.loads((prefix / "run.json").read_text())["runs"][0]["execution"]["refine_steps"] == 2
    restored = decompress(str(prefix), str(tmp_path / "png"), config=DECODE)
    assert restored.ok and restored.decoded == 4 and restored.restored == 1
    dotted = f"{DOTTED_DIRECTORY}/000001"
    image = Image.open(tmp_path / "png" / f"{dotted}.png")
    assert metrics.pixels_sha256(image) == frame.loc[dotted, "decoded_sha256"]
    bad_key = frame.index[frame["status"] == "bad_input"][0]
    assert (tmp_path / "png" / f"{bad_key}.jpg").read_bytes() == BAD_IMAGE_BYTES


def test_cli_exit_codes(compressed, weights_file: Path, tmp_path: Path, capsys) -> None:
    root, _, _ = compressed
    prefix = str(root / "out")
    assert cli_main(["verify", prefix]) == 0
    assert (
        cli_main(
            [
                "compress",
                str(root / "in" / "*.tar"),
                prefix,
                "--weights",
                str(weights_file),
                "--quality",
                "3",
                "--dry-run",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "dry run: 0 shard(s) to do, 3 already done" in capsys.readouterr().out
    assert (
        cli_main(
            [
                "compress",
                str(root / "in" / "*.tar"),
                prefix,
                "--weights",
                str(weights_file),
                "--quality",
                "5",
                "--no-progress",
            ]
        )
        == 2
    )
    assert "refusing to resume" in capsys.readouterr().err
    assert cli_main(["decompress", prefix, str(tmp_path / "x"), "--where", "__import__('os')"]) == 2
    assert (
        cli_main(["compress", str(root / "missing" / "*.tar"), prefix, "--weights", str(weights_file)]) == 2
    )
    damaged = tmp_path / "damaged"
    os.system(f"cp -r {prefix} {damaged}")
    next((damaged / "_done").glob("*.json")).unlink()
    assert cli_main(["verify", str(damaged)]) == 1
    assert "no commit marker" in capsys.readouterr().out


def test_retry_failed_redoes_only_failed_samples(tmp_path: Path, weights_file: Path) -> None:
    members = [*sample_members(0, 3), ("large.png", image_bytes(64, 64, 5))]
    write_shard(tmp_path / "in" / "00000.tar", members)
    prefix = tmp_path / "out"
    first = compress(
        [str(tmp_path / "in" / "00000.tar")], str(prefix), _config(weights_file, max_pixels=2000)
    )
    rows = _manifest(prefix).set_index("key")
    assert first.ok and rows.loc["large", "status"] == "skipped_too_large"
    retry = compress(
        [str(tmp_path / "in" / "00000.tar")],
        str(prefix),
        _config(weights_file, max_pixels=10**6, retry_failed=True),
    )
    again = _manifest(prefix).set_index("key")
    assert retry.ok and retry.shards_done == 1 and len(again) == 4
    assert again.loc["large", "status"] == "ok" and again.loc["large", "attempts"] == 2
    ok_before = rows[rows["status"] == "ok"]
    assert (again.loc[ok_before.index, "decoded_sha256"] == ok_before["decoded_sha256"]).all()
    assert (again.loc[ok_before.index, "attempts"] == 1).all()  # kept, not coded again
    assert verify(str(prefix)).ok


def _kill_first_busy_actor(killed: list[int], stop: threading.Event) -> None:
    """kill -9 the first CompressWorker process seen running a shard (Ray titles it by method)."""
    while not stop.is_set():
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if cmdline.startswith("ray::CompressWorker.process"):
                time.sleep(0.5)  # well into the shard
                os.kill(proc.info["pid"], signal.SIGKILL)
                killed.append(proc.info["pid"])
                return
        time.sleep(0.05)


@pytest.mark.slow
def test_an_actor_killed_mid_shard_is_replaced(tmp_path: Path, weights_file: Path) -> None:
    # Images large enough that a shard outlasts the killer's half-second wait: at 24x32 a format-2
    # actor could finish its shard first, and an idle actor's death is never noticed.
    inputs = make_shards(tmp_path / "in", 2, 6, size=(128, 160))
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_first_busy_actor, args=(killed, stop), daemon=True)
    killer.start()
    try:
        summary = compress([str(p) for p in inputs], str(tmp_path / "out"), _config(weights_file))
    finally:
        stop.set()
        killer.join()
    assert killed and summary.actor_deaths >= 1 and summary.retries >= 1
    assert summary.ok and summary.shards_done == 2
    frame = _manifest(tmp_path / "out")
    assert len(frame) == 12 and frame["key"].is_unique and set(frame["status"]) == {"ok"}
    markers = [json.loads(p.read_text()) for p in (tmp_path / "out" / "_done").glob("*.json")]
    assert max(m["attempt"] for m in markers) == 2

"""A prefix committed by the code before issue 21 (tests/fixtures/prefix-v1) still resumes,
decompresses, verifies and reports, unchanged.

The fixture was written by ``tests/fixtures/prefix-v1/make.py`` at main f3c259d (before
``s2c_pipeline.archive`` existed): three input shards (ok images, a corrupt image, a sample
without an image, a truncated shard), the bundled s2c-conv-small weights at quality 3. Its ``weights/`` copy is left out of git (13 MB): it is the
bundled checkpoint, put back here byte for byte. Shard ids derive from the input URLs, so the
inputs are put back at the path they were compressed from.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from pipeline_fixtures import ray_local_fixture  # noqa: F401

import s2c_pipeline.codec
from s2c_pipeline.analysis.run_summary import summarize_prefix
from s2c_pipeline.archive.committed import (
    SHARD_COLUMN,
    read_committed,
    uncommitted_files,
    uncommitted_sources,
)
from s2c_pipeline.archive.index import build_index
from s2c_pipeline.archive.layout import OutputLayout
from s2c_pipeline.archive.manifest import read_manifests
from s2c_pipeline.archive.marker import read_markers
from s2c_pipeline.archive.run_record import read_run_record
from s2c_pipeline.imaging import metrics
from s2c_pipeline.pipeline import DecodeConfig, RunConfig, compress, decompress, verify

FIXTURE = Path(__file__).parent / "fixtures" / "prefix-v1"
INPUTS = Path("/tmp/s2c-prefix-v1/inputs")
WEIGHTS = "s2c-conv-small-5dd4d4124b69bb9e.pt"
SHARD_IDS = ("00000-980e91b8", "00001-5da19743", "00002-4d794744")
DECODE = DecodeConfig(show_progress=False, actors=1)

pytestmark = pytest.mark.usefixtures("ray_local")


def _prefix(root: Path) -> Path:
    """A fresh copy of the fixture prefix, its weights and its inputs back where they were."""
    prefix = root / "prefix"
    shutil.copytree(FIXTURE / "prefix", prefix)
    (prefix / "weights").mkdir()
    shutil.copyfile(
        Path(s2c_pipeline.codec.__file__).parent / "weights" / WEIGHTS, prefix / "weights" / WEIGHTS
    )
    INPUTS.mkdir(parents=True, exist_ok=True)
    for tar in sorted((FIXTURE / "inputs").glob("*.tar")):
        shutil.copyfile(tar, INPUTS / tar.name)
    return prefix


def test_the_fixture_is_what_todays_code_committed() -> None:
    markers = sorted(p.stem for p in (FIXTURE / "prefix" / "_done").glob("*.json"))
    assert tuple(markers) == SHARD_IDS
    run = json.loads((FIXTURE / "prefix" / "run.json").read_text())
    assert run["identity"]["weights_id"] == "5dd4d4124b69bb9e" and len(run["runs"]) == 1


def test_markers_and_run_json_read_back_and_write_byte_for_byte() -> None:
    layout = OutputLayout.of(str(FIXTURE / "prefix"))
    markers = read_markers(layout, {})
    assert tuple(markers) == SHARD_IDS
    for shard_id, marker in markers.items():
        assert marker.to_json() == (FIXTURE / "prefix" / "_done" / f"{shard_id}.json").read_bytes()
    assert markers[SHARD_IDS[0]].stats.statuses == {"ok": 2, "bad_input": 1}
    assert markers[SHARD_IDS[2]].failed_samples == 1  # the truncated tar's problem row
    record = read_run_record(layout, {})
    assert record is not None and record.to_json() == (FIXTURE / "prefix" / "run.json").read_bytes()
    index = build_index(layout, markers)
    assert json.dumps(index, indent=1).encode() == (FIXTURE / "prefix" / "index.json").read_bytes()


def test_committed_rows_are_the_marked_shards_rows_and_nothing_else(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path)
    layout = OutputLayout.of(str(prefix))
    committed = read_committed(layout, {})
    assert len(committed.rows) == 7 and set(committed.rows[SHARD_COLUMN]) == set(SHARD_IDS)
    assert committed.rows["status"].value_counts().to_dict() == {"ok": 4, "bad_input": 2, "shard_problem": 1}
    (prefix / "_done" / f"{SHARD_IDS[0]}.json").unlink()
    committed = read_committed(layout, {})
    assert tuple(committed.markers) == SHARD_IDS[1:] and len(committed.rows) == 4
    assert uncommitted_files(layout, {}) == [
        f"{layout.prefix}/shards/{SHARD_IDS[0]}.tar",
        f"{layout.prefix}/manifest/{SHARD_IDS[0]}.parquet",
    ]
    assert uncommitted_sources(layout, {}) == (str(INPUTS / "00000.tar"),)
    for shard_id in SHARD_IDS[1:]:
        (prefix / "_done" / f"{shard_id}.json").unlink()
    with pytest.raises(FileNotFoundError, match="no committed shards"):
        read_committed(layout, {})
    assert read_committed(layout, {}, allow_empty=True).rows.empty


def test_resume_finds_nothing_to_redo(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path)
    index_before = (prefix / "index.json").read_bytes()
    tars_before = {p.name: p.read_bytes() for p in (prefix / "shards").glob("*.tar")}
    summary = compress(
        [str(INPUTS / "*.tar")], str(prefix), RunConfig(quality=3, show_progress=False, actors=1)
    )
    assert summary.ok and summary.shards_total == 3
    assert summary.shards_skipped == 3 and summary.shards_done == 0 and summary.todo == ()
    assert {p.name: p.read_bytes() for p in (prefix / "shards").glob("*.tar")} == tars_before
    assert (prefix / "index.json").read_bytes() == index_before  # rebuilt from the same markers
    runs = json.loads((prefix / "run.json").read_text())["runs"]
    assert len(runs) == 2 and runs[0]["run_id"] == "20261202T154435Z-c0e1ace9"


def test_resume_with_retry_failed_redoes_only_shards_with_failures(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path)
    summary = compress(
        [str(INPUTS / "*.tar")],
        str(prefix),
        RunConfig(quality=3, show_progress=False, actors=1, retry_failed=True, dry_run=True),
    )
    # every shard has a failure: a corrupt image, a sample with no image, a truncated tar
    assert summary.todo == SHARD_IDS and summary.shards_skipped == 0


def test_verify_with_decode_finds_it_whole(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path)
    report = verify(str(prefix), decode=True, config=DECODE)
    assert report.ok, report.format()
    assert (report.shards, report.rows, report.bitstreams, report.decoded) == (3, 7, 4, 4)


def test_verify_reports_a_changed_tar(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path)
    tar = prefix / "shards" / f"{SHARD_IDS[1]}.tar"
    tar.write_bytes(tar.read_bytes()[:-1] + b"\x01")
    report = verify(str(prefix), config=DECODE)
    assert not report.ok and any("sha256 differs" in p and SHARD_IDS[1] in p for p in report.problems)


def test_decompress_restores_every_sample(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path)
    out = tmp_path / "png"
    summary = decompress(str(prefix), str(out), config=DECODE)
    assert summary.ok, summary.format()
    assert (summary.selected, summary.decoded, summary.restored) == (6, 4, 2)
    assert len(summary.shard_problems) == 1 and "00002.tar" in summary.shard_problems[0]
    rows = read_manifests(str(prefix)).to_pylist()
    for row in (r for r in rows if r["status"] == "ok"):
        with Image.open(out / f"{row['key']}.png") as image:
            assert metrics.pixels_sha256(image) == row["decoded_sha256"]
    # samples that were not coded come back byte for byte
    assert (out / "a002.png").read_bytes() == b"not a png at all"
    assert (out / "b001.json").read_bytes() == b'{"no": "image"}'


def test_report_counts_committed_shards_only(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path)
    summary = summarize_prefix(str(prefix))
    assert dict(summary.statuses) == {"bad_input": 2, "ok": 4, "shard_problem": 1}
    assert [s.shard_id for s in summary.shards] == sorted(SHARD_IDS) and summary.uncommitted_sources == ()
    (prefix / "_done" / f"{SHARD_IDS[1]}.json").unlink()  # shard 1 no longer committed
    summary = summarize_prefix(str(prefix))
    assert dict(summary.statuses) == {"bad_input": 1, "ok": 3, "shard_problem": 1}
    assert summary.uncommitted_sources == (str(INPUTS / "00001.tar"),)
    manifest = read_manifests(str(prefix)).to_pylist()
    assert {r["key"] for r in manifest} == {"a000", "a001", "a002", "c000", ""}
    digest = hashlib.sha256((prefix / "manifest" / f"{SHARD_IDS[0]}.parquet").read_bytes()).hexdigest()
    marker = json.loads((prefix / "_done" / f"{SHARD_IDS[0]}.json").read_text())
    assert marker["manifest_sha256"] == digest

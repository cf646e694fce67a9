"""``s2c analyze`` and ``s2c report`` on real photos, real encodes, a real output prefix and a real S3 server.

The truth every projection is checked against is a full compression of the same shards by the
pipeline's own per-shard job (``run_shard_task``: read, code, decode-verify, commit), i.e. what the
actors of ``s2c compress`` run, without the Ray scheduling around it.
"""

from __future__ import annotations

import io
import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pipeline_fixtures import weights_file_fixture  # noqa: F401 (the "weights_file" fixture)

from s2c_pipeline.analysis.projection import SampledSizes, project
from s2c_pipeline.analysis.sampling import SampleDesign, draw_sample, list_shard_sizes
from s2c_pipeline.archive.manifest import read_manifests
from s2c_pipeline.shards import TarShardWriter

SHARDS, PER_SHARD, QUALITY = 5, 8, 3.0
BAD_MEMBER = "0039x.jpg"


def s2c(argv: list[str]) -> int:
    """``s2c ARGV`` with the analysis verbs registered even before the lead wires them into main."""
    from s2c_pipeline.cli import analysis_verbs
    from s2c_pipeline.cli import main as cli

    if analysis_verbs not in cli.VERBS:
        cli.VERBS = (*cli.VERBS, analysis_verbs)
    return cli.main(argv)


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 shards of 8 crops (64-192 px) of the evaluation photos, PNG and JPEG, each with a .json;
    the last shard also holds a .jpg that is not an image (coded as nothing, kept verbatim)."""
    from s2c_pipeline.photos import evaluation_photos

    rng = random.Random(0)
    photos = [p.load() for p in evaluation_photos()]
    folder = tmp_path_factory.mktemp("crops")
    for shard in range(SHARDS):
        writer = TarShardWriter()
        for i in range(shard * PER_SHARD, (shard + 1) * PER_SHARD):
            photo = photos[i % len(photos)]
            w, h = rng.randint(64, 192), rng.randint(64, 160)
            x, y = rng.randint(0, photo.width - w), rng.randint(0, photo.height - h)
            buffer = io.BytesIO()
            fmt, ext = ("JPEG", "jpg") if i % 3 == 2 else ("PNG", "png")
            photo.crop((x, y, x + w, y + h)).save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
            writer.add(f"{i:04d}.{ext}", buffer.getvalue())
            writer.add(f"{i:04d}.json", json.dumps({"photo": i % len(photos)}).encode())
        if shard == SHARDS - 1:
            writer.add(BAD_MEMBER, b"not an image at all\n" * 40)
        (folder / f"{shard:05d}.tar").write_bytes(writer.finish())
    return folder


@pytest.fixture(scope="module")
def compressed(crops: Path, weights_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every crop shard compressed at QUALITY into an output prefix, by the pipeline's shard job."""
    from s2c_pipeline.archive.layout import OutputLayout, shard_id_for
    from s2c_pipeline.archive.run_record import check_or_write_run_record, identity
    from s2c_pipeline.codec.encode_and_verify import EncodeSettings
    from s2c_pipeline.codec.image_codec import ImageCodec
    from s2c_pipeline.pipeline.compress.resume import ShardTask
    from s2c_pipeline.pipeline.compress.shard_task import WorkerContext, run_shard_task
    from s2c_pipeline.pipeline.config import RunConfig

    torch.set_num_threads(1)
    codec = ImageCodec.load(weights_file=weights_file, device="cpu")
    layout = OutputLayout.of(str(tmp_path_factory.mktemp("run") / "prefix"))
    check_or_write_run_record(layout, identity(codec.model_name, codec.weights.sha256, QUALITY), RunConfig(), {})
    for path in sorted(crops.glob("*.tar")):
        url = str(path)
        run_shard_task(ShardTask(shard_id_for(url), url), attempt=1, codec=codec,
                       settings=EncodeSettings(QUALITY, 10**8, "cpu"), layout=layout, storage_options={},
                       worker=WorkerContext("node-a", "cpu", 1))
    return Path(layout.prefix)


def truth(prefix: Path, shards: list[str] | None = None) -> dict[str, float]:
    """What the run wrote: output tar bytes, and image bytes as stored (bitstreams, or originals kept)."""
    rows = read_manifests(str(prefix)).to_pandas()
    markers = [json.loads(p.read_text()) for p in (prefix / "_done").glob("*.json")]
    if shards is not None:
        rows = rows[rows.source_shard.isin(shards)]
        markers = [m for m in markers if m["source_url"] in shards]
    stored = rows.s2c_bytes.where(rows.status == "ok", rows.source_bytes)
    return {"output_bytes": sum(m["tar_bytes"] for m in markers), "compressed_image_bytes": float(stored.sum()),
            "images": len(rows)}


def coded_sizes(prefix: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """(source shard, member) -> (source bytes, bytes as stored) for every sample of the run."""
    rows = read_manifests(str(prefix)).to_pandas()
    return {(r.source_shard, r.source_member): (int(r.source_bytes), int(r.s2c_bytes if r.status == "ok"
                                                                          else r.source_bytes))
            for r in rows.itertuples()}


def inside(interval: dict, value: float) -> bool:
    return interval["low"] <= value <= interval["high"]


def is_png(path: Path) -> bool:
    with Image.open(path) as image:
        return image.format == "PNG" and image.width >= 600 and image.height >= 400


# --- sampling ----------------------------------------------------------------------------------


def test_sizes_come_from_the_listing_and_the_sample_is_seeded_and_spread(crops: Path) -> None:
    urls = [str(p) for p in sorted(crops.glob("*.tar"))]
    sizes = list_shard_sizes(urls)
    assert [s.size_bytes for s in sizes] == [p.stat().st_size for p in sorted(crops.glob("*.tar"))]

    def picks(**design) -> list[tuple[str, str, float]]:
        draws = list(draw_sample(sizes, SampleDesign(**design)))
        return [(p.shard_url, p.member, p.weight) for d in draws for p in d.picked]

    first = picks(images=12, shards=3, seed=7)
    assert first == picks(images=12, shards=3, seed=7) != picks(images=12, shards=3, seed=8)
    assert len(first) == 12 and len({u for u, _, _ in first}) == 3  # 4 images from each of 3 shards
    draws = list(draw_sample(sizes, SampleDesign(images=12, shards=3, seed=7)))
    assert len(draws) == 3 and all(d.tally.images in (PER_SHARD, PER_SHARD + 1) for d in draws)
    assert all(p.weight == d.tally.images / 4 and d.tally.sampled == 4 for d in draws for p in d.picked)
    # a fraction is of the projected image count (41 images in all): a quarter is about 10
    assert 8 <= len(picks(images=None, fraction=0.25, seed=1)) <= 13
    # more than there is: every image of every shard, each with weight 1
    everything = picks(images=1000, seed=3)
    assert len(everything) == SHARDS * PER_SHARD + 1 and {w for _, _, w in everything} == {1.0}
    with pytest.raises(ValueError, match="either a sample size or a fraction"):
        SampleDesign(images=5, fraction=0.1)


# --- analyze against the real compression -------------------------------------------------------


def test_analyze_projection_contains_what_compress_wrote(crops: Path, compressed: Path, weights_file: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    code = s2c(["analyze", f"{crops}/{{00000..00004}}.tar", "--sample", "12", "--shards", "3", "--qualities",
                f"{QUALITY:g}", "--codecs", "jpeg", "--weights", str(weights_file),
                "--device", "cpu", "--threads", "1", "--seed", "5", "--out", str(out), "--no-progress"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"] == {"shards": SHARDS, "bytes": sum(p.stat().st_size for p in crops.glob("*.tar"))}
    # the analysis measures exactly what the pipeline writes, image by image
    measured = coded_sizes(compressed)
    for image in report["images"]:
        coded = image["coded"][0]
        assert (coded["source_bytes"], coded["coded_bytes"]) == measured[(image["shard"], image["member"])]
    real = truth(compressed)
    projection = report["qualities"][0]["projection"]
    assert inside(projection["output_bytes"], real["output_bytes"]), (projection["output_bytes"], real)
    assert inside(projection["compressed_image_bytes"], real["compressed_image_bytes"])
    assert projection["savings_bytes"]["value"] == pytest.approx(report["dataset"]["bytes"]
                                                                 - projection["output_bytes"]["value"])
    assert 0 < projection["output_bytes"]["low"] < projection["output_bytes"]["high"]
    # JPEG is a row of the projection too: the same 12 images, at the setting matching our mean PSNR
    assert report["classical"]["codecs"] == ["jpeg"]
    [level] = report["levels"]
    rows = {r["codec"]: r for r in level["rows"]}
    assert set(rows) == {"jpeg", report["model"]} and len(rows["jpeg"]["images"]) == 12
    assert 1 <= int(rows["jpeg"]["setting"]) <= 99 and rows["jpeg"]["matched"]
    assert rows["jpeg"]["psnr"]["mean"] >= rows[report["model"]]["psnr"]["mean"]
    assert rows[report["model"]]["projection"] == projection
    for name in ("bpp_histogram.png", "rd_scatter.png", "bytes_by_codec.png", "costs.png", "payback.png"):
        assert is_png(out / name)
    markdown = (out / "report.md").read_text()
    assert "## Why per-shard tars, not one object per image" in markdown
    assert "https://aws.amazon.com/s3/pricing/" in markdown and "2026-05" in markdown
    assert markdown.count("![") == 5 and "data:image/png;base64," in (out / "report.html").read_text()


def test_a_census_projects_the_exact_bytes(crops: Path, compressed: Path, weights_file: Path) -> None:
    """Every image of every shard sampled: no sampling error left, and the tar model is exact."""
    from s2c_pipeline.analysis.analyze import AnalyzeOptions, analyze
    from s2c_pipeline.codec.image_codec import ImageCodec

    shards = [str(crops / "00003.tar"), str(crops / "00004.tar")]  # includes the image that is not one
    codec = ImageCodec.load(weights_file=weights_file, device="cpu")
    result = analyze(shards, codec, AnalyzeOptions(design=SampleDesign(images=1000), qualities=(QUALITY,),
                                                   show_progress=False, replicates=200))
    projection = result.per_quality[0].projection
    real = truth(compressed, shards)
    assert projection.output_bytes.value == projection.output_bytes.low == projection.output_bytes.high
    assert projection.output_bytes.value == real["output_bytes"]
    assert projection.compressed_image_bytes.value == pytest.approx(real["compressed_image_bytes"], rel=1e-12)
    assert projection.images.value == real["images"] == 2 * PER_SHARD + 1
    assert result.per_quality[0].statuses == {"ok": 2 * PER_SHARD, "bad_input": 1}


def test_bootstrap_intervals_cover_the_truth_across_seeds(crops: Path, compressed: Path) -> None:
    """The interval's promise, checked: over many seeded samples of the real coded sizes, the 95%
    intervals of compressed and output bytes hold the measured totals most of the time."""
    sizes = list_shard_sizes([str(p) for p in sorted(crops.glob("*.tar"))])
    stored = coded_sizes(compressed)
    real = truth(compressed)
    seeds = range(60)
    hits = {"compressed_image_bytes": 0, "output_bytes": 0}
    for seed in seeds:
        draws = list(draw_sample(sizes, SampleDesign(images=12, shards=3, seed=seed)))
        picked = [p for d in draws for p in d.picked]
        sample = SampledSizes(
            shard=np.array([p.shard_index for p in picked]),
            source=np.array([stored[(p.shard_url, p.member)][0] for p in picked], dtype=float),
            coded=np.array([stored[(p.shard_url, p.member)][1] for p in picked], dtype=float),
        )
        projection = project(sum(s.size_bytes for s in sizes), len(sizes), [d.tally for d in draws], sample,
                             replicates=400, seed=seed)
        for name in hits:
            hits[name] += inside(getattr(projection, name).to_dict(), real[name])
    assert all(count >= 0.85 * len(seeds) for count in hits.values()), hits


# --- report ---------------------------------------------------------------------------------------


def test_report_sums_up_a_prefix_and_leaves_uncommitted_shards_out(crops: Path, compressed: Path,
                                                                    tmp_path: Path) -> None:
    assert s2c(["report", str(compressed), "--out", str(tmp_path / "full")]) == 0
    full = json.loads((tmp_path / "full" / "report.json").read_text())
    inputs = sorted(crops.glob("*.tar"))
    assert full["committed_shards"] == SHARDS and full["uncommitted_sources"] == []
    assert full["statuses"] == {"bad_input": 1, "ok": SHARDS * PER_SHARD}
    assert full["bytes"]["source_shards"] == sum(p.stat().st_size for p in inputs)
    assert full["bytes"]["output_shards"] == sum(p.stat().st_size for p in (compressed / "shards").glob("*.tar"))
    assert full["bytes"]["saved"] == full["bytes"]["source_shards"] - full["bytes"]["output_shards"]
    [failure] = full["failures"]
    assert failure["status"] == "bad_input" and failure["count"] == 1 and failure["example"].endswith(BAD_MEMBER)
    rows = read_manifests(str(compressed)).to_pandas()
    assert full["metrics"]["bpp"]["mean"] == pytest.approx(rows[rows.status == "ok"].bpp.mean())
    assert full["throughput"]["cumulative_samples"][-1] == SHARDS * PER_SHARD + 1
    assert len(full["shards"]) == SHARDS and all(s["device"] == "cpu" for s in full["shards"])
    for name in ("bpp_histogram.png", "quality_histograms.png", "throughput.png"):
        assert is_png(tmp_path / "full" / name)
    assert "## Slowest shards" in (tmp_path / "full" / "report.md").read_text()

    partial = tmp_path / "partial"  # a crash between the manifest part and the marker of one shard
    shutil.copytree(compressed, partial)
    marker = sorted((partial / "_done").glob("*.json"))[-1]
    dropped = json.loads(marker.read_text())
    marker.unlink()
    assert s2c(["report", str(partial), "--out", str(tmp_path / "partial-report")]) == 0
    part = json.loads((tmp_path / "partial-report" / "report.json").read_text())
    assert part["committed_shards"] == SHARDS - 1 and part["uncommitted_sources"] == [dropped["source_url"]]
    assert part["samples"] == full["samples"] - dropped["rows"]
    assert part["bytes"]["output_shards"] == full["bytes"]["output_shards"] - dropped["tar_bytes"]


def test_report_of_a_folder_without_manifests_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert s2c(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "no manifest parts" in capsys.readouterr().err and not (tmp_path / "r").exists()


# --- S3 -------------------------------------------------------------------------------------------


def test_analyze_and_report_on_s3_match_local(s3_server, crops: Path, compressed: Path,
                                              weights_file: Path, tmp_path: Path, monkeypatch) -> None:
    bucket = s3_server.make_bucket("analysis")
    fs = s3_server.filesystem()
    for path in sorted(crops.glob("*.tar")):
        fs.pipe_file(f"{bucket}/in/{path.name}", path.read_bytes())
    fs.put(str(compressed), f"{bucket}/run", recursive=True)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    common = ["--sample", "4", "--shards", "2", "--qualities", f"{QUALITY:g}", "--weights", str(weights_file),
              "--device", "cpu", "--threads", "1", "--seed", "2", "--replicates", "300", "--codecs", "none",
              "--no-progress"]
    # on S3 with two worker processes, locally in this process: the same sample, the same numbers
    assert s2c(["analyze", f"s3://{bucket}/in/*.tar", "--s3-endpoint", s3_server.endpoint, "--workers", "2",
                "--out", str(tmp_path / "s3"), *common]) == 0
    assert s2c(["analyze", f"{crops}/*.tar", "--out", str(tmp_path / "local"), *common]) == 0
    remote, local = (json.loads((tmp_path / n / "report.json").read_text()) for n in ("s3", "local"))
    assert remote["dataset"] == local["dataset"]
    def coded(report: dict) -> list:
        return [(Path(i["shard"]).name, i["member"], [(c["status"], c["coded_bytes"]) for c in i["coded"]])
                for i in report["images"]]

    assert coded(remote) == coded(local) and len(coded(local)) == 4
    # the same bitstreams; decoded pixels may differ by rounding between processes (docs/codec.md)
    psnr = [c["psnr"] for r in (remote, local) for i in r["images"] for c in i["coded"]]
    assert psnr[:4] == pytest.approx(psnr[4:], abs=0.01)
    assert remote["qualities"][0]["projection"] == local["qualities"][0]["projection"]

    assert s2c(["report", f"s3://{bucket}/run", "--s3-endpoint", s3_server.endpoint, "--out",
                str(tmp_path / "s3-report")]) == 0
    report = json.loads((tmp_path / "s3-report" / "report.json").read_text())
    assert report["committed_shards"] == SHARDS and report["uncommitted_sources"] == []
    assert report["bytes"]["output_shards"] == truth(compressed)["output_bytes"]
    assert math.isfinite(report["metrics"]["psnr"]["mean"])


# --- command-line errors --------------------------------------------------------------------------


def test_bad_price_file_stops_analyze_before_any_work(crops: Path, tmp_path: Path, capsys) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("classes:\n  s3-standard:\n    storage_per_gb_month: -1\n")
    out = tmp_path / "never"
    assert s2c(["analyze", f"{crops}/*.tar", "--prices", str(prices), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"s2c analyze: {prices}: classes.s3-standard.storage_per_gb_month: expected a number >= 0, "
                   "got -1")
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--qualities", "9"], "outside 1..6"),
    (["--codecs", "jpeg,bmp"], "unknown codec bmp"),
    (["--assume-size", "lots"], "is not a size"),
    (["--sample", "0"], "at least 1"),
])
def test_bad_arguments_are_usage_errors(crops: Path, weights_file: Path, tmp_path: Path, capsys,
                                        args: list[str], message: str) -> None:
    code = s2c(["analyze", f"{crops}/00000.tar", "--weights", str(weights_file), "--device", "cpu",
                "--no-progress", "--out", str(tmp_path / "o"), *args])
    assert code == 2 and message in capsys.readouterr().err


def test_missing_input_is_a_usage_error(tmp_path: Path, weights_file: Path, capsys) -> None:
    assert s2c(["analyze", str(tmp_path / "nothing-*.tar"), "--weights", str(weights_file)]) == 2
    assert "not found" in capsys.readouterr().err


def test_analyze_gives_each_image_the_status_compress_records(weights_file: Path, tmp_path: Path) -> None:
    """One coding path: an image over --max-pixels is ``skipped_too_large`` in both (not ``bad_input``),
    bytes that are not an image are ``bad_input``, and a coded image has the compress row's size."""
    from s2c_pipeline.analysis.coding import code_image
    from s2c_pipeline.analysis.sampling import PickedImage
    from s2c_pipeline.codec.encode_and_verify import EncodeSettings
    from s2c_pipeline.codec.image_codec import ImageCodec
    from s2c_pipeline.pipeline.compress.shard_coder import compress_shard
    from s2c_pipeline.shards import read_shard

    codec = ImageCodec.load(weights_file=weights_file, device="cpu")
    rng = np.random.default_rng(3)
    members = {}
    for key, size in (("small", (40, 56)), ("large", (96, 120))):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(buffer, "PNG")
        members[f"{key}.png"] = buffer.getvalue()
    members["junk.jpg"] = b"not an image\n" * 30
    writer = TarShardWriter()
    for name, data in members.items():
        writer.add(name, data)
    shard = tmp_path / "00000.tar"
    shard.write_bytes(writer.finish())
    max_pixels = 64 * 64
    settings = EncodeSettings(QUALITY, max_pixels, device="cpu")
    rows = compress_shard(read_shard(str(shard)), codec, settings, output_url=str(tmp_path / "out.tar")).rows
    by_key = {row.key: row for row in rows}
    assert {k: r.status for k, r in by_key.items()} == {"small": "ok", "large": "skipped_too_large",
                                                       "junk": "bad_input"}
    for name, data in members.items():
        key = name.split(".")[0]
        (coded,) = code_image(PickedImage(0, str(shard), key, name, data, 1.0), codec, (QUALITY,),
                              max_pixels=max_pixels).coded
        assert coded.status == by_key[key].status
        if coded.status == "ok":
            assert coded.coded_bytes == by_key[key].s2c_bytes
        else:
            assert coded.coded_bytes == len(data) and coded.error

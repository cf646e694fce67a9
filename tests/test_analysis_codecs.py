"""``s2c analyze`` with every codec as a row: real codecs (bundled weights, Pillow AVIF/JPEG/WebP, JPEG XL)
on crops of the evaluation photos, checked against a real compression of every image.

Truth for our codec: the pipeline's own shard job (``run_shard_task``) over every shard. Truth for
AVIF: every image of every shard encoded at the setting the analysis chose, written into tars with
the pipeline's tar writer. Both totals must lie inside the intervals the 9-image sample (3 of the 4 shards) projected.
"""

from __future__ import annotations

import io
import json
import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from s2c_pipeline.archive.members import bitstream_member_name
from s2c_pipeline.shards import TarShardWriter, image_member, read_shard

SHARDS, PER_SHARD, QUALITY, SAMPLE = 4, 4, 4.0, 9
GIB = 2**30


def s2c(argv: list[str]) -> int:
    from s2c_pipeline.cli import analysis_verbs
    from s2c_pipeline.cli import main as cli

    if analysis_verbs not in cli.VERBS:
        cli.VERBS = (*cli.VERBS, analysis_verbs)
    return cli.main(argv)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 shards of 4 PNG crops (96-160 px) of the evaluation photos, each with a .cls and a .json label."""
    from s2c_pipeline.photos import evaluation_photos

    rng = random.Random(1)
    photos = [p.load() for p in evaluation_photos()][:8]
    folder = tmp_path_factory.mktemp("codec-shards")
    for shard in range(SHARDS):
        writer = TarShardWriter()
        for i in range(shard * PER_SHARD, (shard + 1) * PER_SHARD):
            photo = photos[i % len(photos)].convert("RGB")
            w, h = rng.randint(96, 160), rng.randint(96, 144)
            x, y = rng.randint(0, photo.width - w), rng.randint(0, photo.height - h)
            buffer = io.BytesIO()
            photo.crop((x, y, x + w, y + h)).save(buffer, "PNG")
            writer.add(f"{i:04d}.png", buffer.getvalue())
            writer.add(f"{i:04d}.cls", b"even" if i % 2 == 0 else b"odd")
            writer.add(f"{i:04d}.json", json.dumps({"meta": {"photo": i % 3}}).encode())
        (folder / f"{shard:05d}.tar").write_bytes(writer.finish())
    return folder


@pytest.fixture(scope="module")
def codec():
    from s2c_pipeline.codec.image_codec import ImageCodec

    torch.set_num_threads(1)
    return ImageCodec.load(device="cpu")  # the bundled weights: PSNRs a classical codec can match


@pytest.fixture(scope="module")
def analysis(shards: Path, codec):
    from s2c_pipeline.analysis.analyze import AnalyzeOptions, analyze
    from s2c_pipeline.analysis.sampling import SampleDesign

    options = AnalyzeOptions(design=SampleDesign(images=SAMPLE, shards=3, seed=0), qualities=(QUALITY,),
                             codecs=("avif", "jpeg"), group_by="cls", replicates=600, show_progress=False)
    return analyze([f"{shards}/*.tar"], codec, options)


@pytest.fixture(scope="module")
def ours_truth(shards: Path, codec, tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """Every shard compressed at QUALITY by the pipeline's shard job: output tar bytes and bitstream bytes."""
    from s2c_pipeline.archive.layout import OutputLayout, shard_id_for
    from s2c_pipeline.archive.manifest import read_manifests
    from s2c_pipeline.archive.run_record import check_or_write_run_record, identity
    from s2c_pipeline.codec.encode_and_verify import EncodeSettings
    from s2c_pipeline.pipeline.compress.resume import ShardTask
    from s2c_pipeline.pipeline.compress.shard_task import WorkerContext, run_shard_task
    from s2c_pipeline.pipeline.config import RunConfig

    layout = OutputLayout.of(str(tmp_path_factory.mktemp("codec-run") / "prefix"))
    check_or_write_run_record(layout, identity(codec.model_name, codec.weights.sha256, QUALITY), RunConfig(), {})
    for path in sorted(shards.glob("*.tar")):
        run_shard_task(ShardTask(shard_id_for(str(path)), str(path)), attempt=1, codec=codec,
                       settings=EncodeSettings(QUALITY, 10**8, "cpu"), layout=layout, storage_options={},
                       worker=WorkerContext("node-a", "cpu", 1))
    prefix = Path(layout.prefix)
    rows = read_manifests(str(prefix)).to_pandas()
    markers = [json.loads(p.read_text()) for p in (prefix / "_done").glob("*.json")]
    return {"output_bytes": sum(m["tar_bytes"] for m in markers), "image_bytes": float(rows.s2c_bytes.sum()),
            "prefix": str(prefix)}


def classical_truth(shards: Path, name: str, setting: int) -> dict[str, float]:
    """Every image of every shard through a classical codec at ``setting``, written as the output tar
    a recompression job would write (the image member replaced by the codec's file)."""
    from s2c_pipeline.evaluate.classical import classical_codecs
    from s2c_pipeline.imaging import load_image

    [codec], _ = classical_codecs([name])
    output = images = 0
    for path in sorted(shards.glob("*.tar")):
        writer = TarShardWriter()
        for sample in read_shard(str(path)).samples:
            image = image_member(sample)
            for member in sample.members:
                if member is image:
                    data = codec.encode(load_image(member.data).rgb, setting)
                    images += len(data)
                    writer.add(bitstream_member_name(sample.key), data)
                else:
                    writer.add(member.name, member.data)
        output += len(writer.finish())
    return {"output_bytes": output, "image_bytes": images}


def row(analysis, codec: str):
    return next(r for r in analysis.rows(0) if r.codec == codec)


def inside(interval, value: float) -> bool:
    return interval.low <= value <= interval.high


# --- every codec a row of the projection ---------------------------------------------------------


def test_projection_holds_the_real_totals_for_ours_and_avif(analysis, ours_truth, shards: Path) -> None:
    ours = analysis.per_quality[0]
    assert len(analysis.results) == SAMPLE and ours.statuses == {"ok": SAMPLE}
    assert inside(ours.projection.output_bytes, ours_truth["output_bytes"]), (ours.projection, ours_truth)
    assert inside(ours.projection.compressed_image_bytes, ours_truth["image_bytes"])

    avif = row(analysis, "avif")
    assert avif.matched and avif.psnr.mean >= ours.psnr.mean  # the smallest setting reaching our PSNR
    truth = classical_truth(shards, "avif", int(avif.setting))
    assert inside(avif.projection.output_bytes, truth["output_bytes"]), (avif.projection, truth)
    assert inside(avif.projection.compressed_image_bytes, truth["image_bytes"])
    assert avif.projection.images == ours.projection.images  # same sample, same estimator
    assert len(avif.coded) == SAMPLE and all(c.status == "ok" and c.bpp > 0 for c in avif.coded)


def test_level_matching_picks_the_smallest_setting_reaching_our_mean_psnr(analysis, shards: Path) -> None:
    """Searched again on the same images: the same setting; one lower, the weighted mean PSNR falls
    below ours; a PSNR no setting reaches gives the best setting, marked as not reached."""
    from s2c_pipeline.analysis.matching import SampledSource, match_levels, probe
    from s2c_pipeline.evaluate.classical import classical_codecs
    from s2c_pipeline.imaging import load_image

    ours = analysis.per_quality[0]
    chosen = int(row(analysis, "jpeg").setting)
    [jpeg], _ = classical_codecs(["jpeg"])
    sources = [SampledSource(p.data, p.weight) for d in _draws(shards) for p in d.picked]
    everything = [[True] * len(sources)]
    [again, never] = match_levels(jpeg, sources, [ours.psnr.mean, math.inf], everything * 2, 10**8)
    assert again.setting == chosen and again.reached and again.mean_psnr >= ours.psnr.mean
    assert never.setting == 99 and not never.reached
    weights = [s.weight for s in sources]
    for setting in {1, chosen - 1} - {0}:  # below the chosen setting the mean PSNR is below ours
        mean = np.average([probe(jpeg, load_image(s.data).rgb, setting).psnr for s in sources], weights=weights)
        assert mean < ours.psnr.mean, setting


def _draws(shards: Path):
    from s2c_pipeline.analysis.sampling import SampleDesign, draw_sample, list_shard_sizes

    sizes = list_shard_sizes([str(p) for p in sorted(shards.glob("*.tar"))])
    return list(draw_sample(sizes, SampleDesign(images=SAMPLE, shards=3, seed=0)))


def test_report_ranks_codecs_prices_them_and_pays_back(analysis, tmp_path: Path) -> None:
    from s2c_pipeline.analysis import default_prices
    from s2c_pipeline.analysis.analysis_report import write_analysis_report
    from s2c_pipeline.analysis.codec_report import codec_label
    from s2c_pipeline.analysis.compute_prices import CPU_HOUR, ComputeOptions

    compute = ComputeOptions(gpu_images_per_s=50.0, reads_per_month=1e6, benchmarks=None)
    write_analysis_report(analysis, default_prices(), tmp_path, priced_bytes=1e14, compute=compute)
    report = json.loads((tmp_path / "report.json").read_text())
    [level] = report["levels"]
    images = [r["projection"]["compressed_image_bytes"]["value"] for r in level["rows"]]
    assert images == sorted(images) and {r["codec"] for r in level["rows"]} == {analysis.model_name, "avif", "jpeg"}
    best = level["rows"][0]["codec"]
    markdown = (tmp_path / "report.md").read_text()
    if best == analysis.model_name:
        assert f"**{analysis.model_name} stores this data in the fewest bytes**" in markdown
    else:
        assert f"**{codec_label(best)} beats {analysis.model_name} on this data**" in markdown
    scale = 1e14 / analysis.dataset_bytes
    prices = default_prices()
    for entry in report["payback"]:
        images_priced = row(analysis, entry["codec"]).projection.images.value * scale
        assert entry["images"] == pytest.approx(images_priced)
        r = row(analysis, entry["codec"])
        seconds = (r.encode_ms.mean + r.decode_ms.mean) / 1000
        threads = analysis.threads if r.learned else 1
        assert entry["cpu_core_hours"] == pytest.approx(images_priced * seconds * threads / 3600)
        if r.learned:  # --gpu-images-per-s prices our codec on a GPU when that is cheaper
            assert entry["gpu_hours"] == pytest.approx(images_priced / 50 / 3600)
            cpu_usd, gpu_usd = entry["cpu_core_hours"] * CPU_HOUR.usd_per_hour, entry["gpu_hours"] * 12.29
            assert entry["compute_usd"] == pytest.approx(min(cpu_usd, gpu_usd))
        for c in entry["per_class"]:
            assert c["one_off_usd"] == pytest.approx(entry["compute_usd"] + c["moving_usd"])
            storage = c["today_usd_month"] - c["after_usd_month"]
            assert c["saving_usd_month"] == pytest.approx(storage - entry["decode_usd_month"])
            if c["saving_usd_month"] > 0:
                assert c["months"] == pytest.approx(c["one_off_usd"] / c["saving_usd_month"])
            else:
                assert c["months"] is None  # never: infinity is not JSON, written as null
        standard = next(c for c in entry["per_class"] if c["class_id"] == "s3-standard")
        tars = r.projection.output_bytes.value * scale
        assert standard["after_usd_month"] == pytest.approx(tars / GIB * prices.by_id("s3-standard").storage_per_gb_month)
    assert "## Compute and payback" in markdown and "**Months to pay back**" in markdown
    assert "50 images/s (--gpu-images-per-s)" in markdown
    for name in ("rd_scatter.png", "bytes_by_codec.png", "payback.png"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.width >= 600
    # per group (.cls): every sampled image in exactly one group, at every codec
    groups = {g["group"]: g for g in report["groups"]}
    assert set(groups) <= {"even", "odd"} and sum(g["images"] for g in groups.values()) == SAMPLE
    assert all(len(g["codecs"]) == 3 and 0 < g["codecs"][0]["ratio"] < 1 for g in groups.values())
    assert "## Per group (`cls`)" in markdown


def test_a_committed_gpu_benchmark_gives_our_gpu_hours(analysis, tmp_path: Path) -> None:
    from s2c_pipeline.analysis.compute_prices import ComputeOptions
    from s2c_pipeline.analysis.payback import gpu_figure

    assert gpu_figure(analysis, ComputeOptions(benchmarks=tmp_path)) is None
    (tmp_path / "other.json").write_text(json.dumps({"kind": "s2c-gpu-coding", "model": "another-model",
                                                     "megapixels_per_s": 1.0}))
    assert gpu_figure(analysis, ComputeOptions(benchmarks=tmp_path)) is None
    (tmp_path / "gpu.json").write_text(json.dumps({"kind": "s2c-gpu-coding", "model": analysis.model_name,
                                                   "device": "NVIDIA H100", "megapixels_per_s": 20.0}))
    figure = gpu_figure(analysis, ComputeOptions(benchmarks=tmp_path))
    pixels = [(c.width * c.height, r.image.weight) for r in analysis.results for c in r.coded]
    mean = np.average([p for p, _ in pixels], weights=[w for _, w in pixels])
    assert figure is not None and figure.images_per_s == pytest.approx(20e6 / mean)
    assert "gpu.json" in figure.source and "NVIDIA H100" in figure.source


# --- a PSNR target ------------------------------------------------------------------------------


def test_target_psnr_codes_each_image_at_its_smallest_setting(shards: Path, codec) -> None:
    from s2c_pipeline.analysis.analyze import AnalyzeOptions, analyze
    from s2c_pipeline.analysis.sampling import SampleDesign
    from s2c_pipeline.evaluate.classical import classical_codecs
    from s2c_pipeline.imaging import load_image, psnr

    target = 31.0
    options = AnalyzeOptions(design=SampleDesign(images=4, shards=2, seed=3), target_psnr=target,
                             codecs=("jpeg", "webp"), replicates=200, show_progress=False)
    result = analyze([f"{shards}/*.tar"], codec, options)
    assert len(result.per_quality) == 1 and len(result.classical_rows[0]) == 2
    ours = result.per_quality[0]
    for coded in ours.coded:  # our codec: the lowest level in eighths that reaches the target
        assert coded.psnr >= target or coded.target_missed
    sources = [p for d in _draws_with(shards, 4, 2, 3) for p in d.picked]
    for name in ("jpeg", "webp"):
        [classical], _ = classical_codecs([name])
        r = next(x for x in result.classical_rows[0] if x.codec == name)
        assert r.setting.startswith("per image: ")
        for coded, picked in zip(r.coded, sources, strict=True):
            assert coded.status == "ok" and coded.psnr >= target and not coded.target_missed
            if coded.quality > 1:  # one setting lower misses the target
                rgb = load_image(picked.data).rgb
                lower = classical.decode(classical.encode(rgb, int(coded.quality) - 1))
                assert psnr(rgb, lower) < target


def _draws_with(shards: Path, images: int, count: int, seed: int):
    from s2c_pipeline.analysis.sampling import SampleDesign, draw_sample, list_shard_sizes

    sizes = list_shard_sizes([str(p) for p in sorted(shards.glob("*.tar"))])
    return list(draw_sample(sizes, SampleDesign(images=images, shards=count, seed=seed)))


def test_a_target_no_codec_reaches_is_a_per_image_status(shards: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "high"
    assert s2c(["analyze", f"{shards}/00000.tar", "--sample", "2", "--target-psnr", "80", "--codecs", "jpeg",
                "--device", "cpu", "--threads", "1", "--replicates", "100", "--group-by", "meta.photo",
                "--out", str(out), "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    [level] = report["levels"]
    for r in level["rows"]:
        assert r["statuses"] == {"target_not_reached": 2} and not r["matched"]
        assert all(i["status"] == "target_not_reached" and i["coded_bytes"] > 0 for i in r["images"])
    jpeg = next(r for r in level["rows"] if r["codec"] == "jpeg")
    assert {i["setting"] for i in jpeg["images"]} == {99}  # coded at the best setting, counted at its size
    markdown = (out / "report.md").read_text()
    assert "counted as `target_not_reached`" in markdown and "JPEG 2" in markdown
    assert {g["group"] for g in report["groups"]} <= {"0", "1", "2"}  # the JSON field meta.photo


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--target-psnr", "120"], "--target-psnr 120: expected a PSNR in dB between 0 and 100"),
    (["--cpu-hour-price", "-0.5"], "--cpu-hour-price -0.5: expected a number >= 0"),
    (["--gpu-images-per-s", "0"], "--gpu-images-per-s 0: expected a number > 0"),
    (["--codecs", "jpeg,heic"], "--codecs: unknown codec heic; known: jpeg, webp, avif, jxl"),
])
def test_bad_codec_and_compute_arguments_are_one_line_usage_errors(shards: Path, tmp_path: Path, capsys,
                                                                   args: list[str], message: str) -> None:
    out = tmp_path / "never"
    assert s2c(["analyze", f"{shards}/00000.tar", "--device", "cpu", "--no-progress", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and not out.exists()


def test_levels_and_a_target_together_are_refused(shards: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        s2c(["analyze", f"{shards}/00000.tar", "--qualities", "2", "--target-psnr", "30"])
    assert stopped.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_a_codec_that_is_not_installed_is_a_usage_error(shards: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """pillow-jxl-plugin made unimportable (as in an install without it): --codecs jxl stops before any
    work with one line; the default (auto) leaves it out and says so in the report."""
    monkeypatch.setitem(sys.modules, "pillow_jxl", None)
    out = tmp_path / "never"
    assert s2c(["analyze", f"{shards}/00000.tar", "--codecs", "jpeg,jxl", "--out", str(out)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("s2c analyze:")]
    assert len(lines) == 1 and "--codecs: jxl is not installed" in lines[0]
    assert "pip install pillow-jxl-plugin" in lines[0] and not out.exists()
    from s2c_pipeline.analysis.analyze import AnalyzeOptions, analyze
    from s2c_pipeline.analysis.sampling import SampleDesign
    from s2c_pipeline.cli.analysis_verbs import _codecs
    from s2c_pipeline.codec.image_codec import ImageCodec

    assert _codecs("auto") == ("jpeg", "webp", "avif", "jxl")  # analyze probes them and lists the missing
    result = analyze([f"{shards}/00000.tar"], ImageCodec.load(device="cpu"),
                     AnalyzeOptions(design=SampleDesign(images=1), qualities=(1.0,), codecs=("jpeg", "jxl"),
                                    replicates=50, show_progress=False))
    assert result.classical == ("jpeg",) and "pip install pillow-jxl-plugin" in result.classical_skipped["jxl"]


# --- s2c report --prices ----------------------------------------------------------------------------


def test_report_prices_a_finished_run(ours_truth, tmp_path: Path, capsys) -> None:
    from s2c_pipeline.analysis import default_prices

    prefix = ours_truth["prefix"]
    assert s2c(["report", prefix, "--out", str(tmp_path / "default")]) == 0
    report = json.loads((tmp_path / "default" / "report.json").read_text())
    source, output = report["bytes"]["source_shards"], report["bytes"]["output_shards"]
    assert output == ours_truth["output_bytes"]
    costs = {c["source"]["class_id"]: c for c in report["costs"]}
    standard = default_prices().by_id("s3-standard").storage_per_gb_month
    assert costs["s3-standard"]["source"]["storage_usd_month"] == pytest.approx(source / GIB * standard)
    assert costs["s3-standard"]["output"]["storage_usd_month"] == pytest.approx(output / GIB * standard)
    # Standard-IA bills each small shard as 128 KiB: the run's tars pay the minimum
    assert costs["s3-standard-ia"]["output"]["billable_gb"] >= SHARDS * 128 * 1024 / GIB
    assert "## Storage cost per month" in (tmp_path / "default" / "report.md").read_text()

    prices = tmp_path / "prices.yaml"
    prices.write_text("classes:\n  s3-standard: {storage_per_gb_month: 0.046}\n")
    assert s2c(["report", prefix, "--prices", str(prices), "--out", str(tmp_path / "own")]) == 0
    own = {c["source"]["class_id"]: c for c in json.loads((tmp_path / "own" / "report.json").read_text())["costs"]}
    assert own["s3-standard"]["output"]["storage_usd_month"] == pytest.approx(
        2 * costs["s3-standard"]["output"]["storage_usd_month"])

    prices.write_text("classes:\n  s3-standard: {storage_per_gb_month: -1}\n")
    assert s2c(["report", prefix, "--prices", str(prices), "--out", str(tmp_path / "bad")]) == 2
    assert "classes.s3-standard.storage_per_gb_month: expected a number >= 0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()

"""``s2c eval``: BD-rate known answers, classical codecs through Pillow, and one small real evaluation."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import statistics
import sys

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from s2c_pipeline.cli import eval_verb
from s2c_pipeline.cli.errors import DataError, UsageError
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.codec.weights import export_checkpoint
from s2c_pipeline.codec.zoo import create_model
from s2c_pipeline.evaluate import (
    CLASSICAL_NAMES,
    ImageSet,
    RDPoint,
    bd_rate,
    classical_codecs,
    load_image_set,
    load_photo_set,
    mean_curve,
    run_evaluation,
)
from s2c_pipeline.evaluate.bdrate import DROPPED_POINTS, NO_OVERLAP, SMALL_OVERLAP, TOO_FEW_POINTS
from s2c_pipeline.imaging import load_image
from s2c_pipeline.photos import evaluation_photos

CURVE = [(0.10, 28.0), (0.22, 31.0), (0.45, 34.0), (0.90, 37.0), (1.70, 40.0)]


def scaled(curve, factor):
    return [(r * factor, q) for r, q in curve]


# --- BD-rate ---------------------------------------------------------------------------------


def test_bd_rate_of_identical_curves_is_zero():
    result = bd_rate(CURVE, CURVE)
    assert result.value_pct == pytest.approx(0.0, abs=1e-9)
    assert result.overlap_db == (28.0, 40.0)
    assert result.flags == ()


@pytest.mark.parametrize(("factor", "expected"), [(0.5, -50.0), (2.0, 100.0), (0.8, -20.0)])
def test_bd_rate_of_a_constant_rate_factor(factor, expected):
    assert bd_rate(CURVE, scaled(CURVE, factor)).value_pct == pytest.approx(expected, abs=1e-9)
    # and the other way round: anchor and test are not interchangeable
    assert bd_rate(scaled(CURVE, factor), CURVE).value_pct == pytest.approx((1 / factor - 1) * 100, abs=1e-9)


def test_bd_rate_averages_log_rate_over_the_overlap_only():
    # ln r linear in quality, different slopes; PCHIP reproduces lines, so the answer is analytic:
    # over the overlap 32..40 dB the mean of (test - anchor) = -1 + 0.02 * 36 = -0.28.
    anchor = [(math.exp(-6 + 0.20 * q), q) for q in range(26, 41, 2)]
    test = [(math.exp(-7 + 0.22 * q), q) for q in range(32, 47, 2)]
    result = bd_rate(anchor, test)
    assert result.overlap_db == (32.0, 40.0)
    assert result.value_pct == pytest.approx(math.expm1(-0.28) * 100, abs=1e-9)
    assert SMALL_OVERLAP not in result.flags  # 8 dB, 57 % of each range


@pytest.mark.parametrize(
    ("shift_db", "flagged"),
    [(11.4, True), (7.0, True), (5.0, False)],  # overlap 0.6 dB; 5 dB (< 50 % of 12 dB); 7 dB
)
def test_bd_rate_flags_and_logs_a_small_overlap(caplog, shift_db, flagged):
    test = [(r, q + shift_db) for r, q in CURVE]
    with caplog.at_level(logging.WARNING, logger="s2c_pipeline.evaluate.bdrate"):
        result = bd_rate(CURVE, test, label="ours vs theirs")
    assert result.value_pct is not None
    assert (SMALL_OVERLAP in result.flags) is flagged
    assert ("ours vs theirs" in caplog.text and "small overlap" in caplog.text) is flagged
    assert (result.reason is not None) is flagged


def test_bd_rate_without_overlap_is_null_with_the_reason(caplog):
    with caplog.at_level(logging.WARNING, logger="s2c_pipeline.evaluate.bdrate"):
        result = bd_rate(CURVE, [(r, q + 20) for r, q in CURVE])
    assert result.value_pct is None
    assert NO_OVERLAP in result.flags
    assert "do not overlap" in result.reason and "48.00-60.00" in result.reason
    assert result.to_dict()["value_pct"] is None
    assert "no value" in caplog.text


def test_bd_rate_needs_two_points_per_curve():
    result = bd_rate(CURVE, [(0.5, 34.0), (0.6, math.inf)])  # lossless point: unusable
    assert result.value_pct is None
    assert TOO_FEW_POINTS in result.flags


def test_bd_rate_ignores_points_off_the_pareto_front():
    dipped = [*CURVE, (1.2, 36.5)]  # more bits than the 37 dB point, less quality: dominated
    result = bd_rate(CURVE, scaled(dipped, 0.5))
    assert result.value_pct == pytest.approx(-50.0, abs=1e-9)
    assert DROPPED_POINTS in result.flags


def test_mean_curve_averages_each_setting_over_images():
    def point(image, setting, num_bytes, psnr):
        return RDPoint(image, "x", setting, num_bytes, 100, 10, psnr, 0.9, 1.0, 2.0)

    points = [point("a", 1, 100, 30.0), point("b", 1, 300, 32.0), point("a", 2, 500, 40.0), point("b", 2, 700, 42.0)]
    curve = mean_curve(points, "x")
    assert [(p.setting, p.bpp, p.psnr, p.images) for p in curve] == [(1.0, 1.6, 31.0, 2), (2.0, 4.8, 41.0, 2)]
    assert curve[0].ms_ssim_db == pytest.approx(10.0)


# --- classical codecs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.coffee()[100:196, 200:328])  # 128x96 photo crop


@pytest.mark.parametrize("name", CLASSICAL_NAMES)
def test_classical_codec_decodes_and_spends_fewer_bits_at_lower_quality(name, crop):
    codecs, skipped = classical_codecs([name])
    assert skipped == {}, f"{name} should be available with this project's dependencies: {skipped}"
    codec = codecs[0]
    low, mid, high = codec.settings[0], codec.settings[len(codec.settings) // 2], codec.settings[-1]
    sizes, psnrs = [], []
    for setting in (low, mid, high):
        data = codec.encode(crop, setting)
        decoded = codec.decode(data)
        assert decoded.shape == crop.shape and decoded.dtype == np.uint8
        sizes.append(len(data))
        psnrs.append(float(10 * np.log10(255**2 / np.mean((decoded.astype(float) - crop) ** 2))))
    assert sizes[0] < sizes[1] < sizes[2], sizes
    assert psnrs[0] + 3 < psnrs[2], psnrs


@pytest.mark.parametrize("name", ["avif", "jxl"])
def test_a_codec_pillow_cannot_write_is_skipped_with_the_reason(monkeypatch, name):
    if name == "avif":
        monkeypatch.delitem(Image.SAVE, "AVIF")  # as a Pillow built without libavif
    else:
        monkeypatch.setitem(sys.modules, "pillow_jxl", None)  # as without pillow-jxl-plugin
    codecs, skipped = classical_codecs(["jpeg", name])
    assert [c.name for c in codecs] == ["jpeg"]
    assert name in skipped and ("pip install pillow-jxl-plugin" in skipped[name] if name == "jxl" else "AVIF" in skipped[name])


def test_unknown_classical_codec_is_refused():
    with pytest.raises(ValueError, match="unknown codec 'png'"):
        classical_codecs(["jpeg", "png"])


# --- inputs ----------------------------------------------------------------------------------


def test_image_set_from_eval_photos_and_from_a_folder(tmp_path, crop):
    photos = load_image_set([])
    assert [i.name for i in photos.images] == [p.name for p in evaluation_photos()]
    assert photos.name == "evaluation" and all(i.rgb.shape[2] == 3 for i in photos.images)
    assert load_image_set(["eval-photos"]).name == "evaluation"
    assert all(i.provenance["package"] and i.provenance["licence"] for i in photos.images)

    (tmp_path / "sub").mkdir()
    Image.fromarray(crop).save(tmp_path / "a.png")
    Image.fromarray(crop).convert("L").save(tmp_path / "sub" / "b.png")
    (tmp_path / "notes.txt").write_text("not an image")
    folder = load_image_set([str(tmp_path)])
    assert [i.name for i in folder.images] == ["a", "sub/b"]
    assert folder.images[1].rgb.shape == crop.shape


# --- s2c eval, end to end --------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    out = tmp_path_factory.mktemp("weights")
    paths = []
    for name in ("s2c-conv-small", "s2c-identity-small"):
        torch.manual_seed(0)
        paths.append(export_checkpoint(create_model(name), out, recipe={}).path)
    return paths


def s2c_eval(*argv):
    parser = argparse.ArgumentParser(prog="s2c")
    eval_verb.register(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(["eval", *map(str, argv)])
    return args.run(args)


def test_eval_writes_json_plot_and_page(tmp_path, weights, crop, capsys):
    image = tmp_path / "coffee.png"
    Image.fromarray(crop).save(image)
    out = tmp_path / "out"
    rc = s2c_eval(
        image, "--weights", weights[0], "--weights", weights[1], "--codecs", "jpeg,webp", "--qualities", "1,3,6",
        "--json", out / "eval.json", "--plot", out / "rd.png", "--markdown", out / "results.md", "--no-progress",
    )
    assert rc == 0
    record = json.loads((out / "eval.json").read_text())
    assert set(record) == {
        "schema", "command", "created", "environment", "conventions", "image_set", "codecs", "skipped_codecs",
        "mean_curves", "bd_rate", "points",
    }
    names = ["s2c-conv-small", "s2c-identity-small", "jpeg", "webp"]
    assert [c["name"] for c in record["codecs"]] == names
    assert [c["kind"] for c in record["codecs"]] == ["learned", "learned", "classical", "classical"]
    sha = hashlib.sha256(np.asarray(Image.open(image).convert("RGB")).tobytes()).hexdigest()
    assert record["image_set"]["images"] == [
        {"name": "coffee", "width": 128, "height": 96, "source": str(image), "sha256": sha}
    ]
    assert len(record["points"]) == 3 + 3 + 13 + 13
    assert {k: len(v) for k, v in record["mean_curves"].items()} == dict(zip(names, [3, 3, 13, 13], strict=True))

    # bpp is the size of the real .s2c file, as `s2c encode` writes it
    codec = ImageCodec.load(weights_file=weights[0], device="cpu")
    ours = [p for p in record["points"] if p["codec"] == "s2c-conv-small"]
    assert [p["setting"] for p in ours] == [1.0, 3.0, 6.0]
    for p in ours:
        data = codec.encode(load_image(image), p["setting"])
        assert p["num_bytes"] == len(data)
        assert p["bpp"] == pytest.approx(len(data) * 8 / (128 * 96))
        assert 0 < p["psnr"] < 60 and p["encode_ms"] > 0 and p["decode_ms"] > 0

    pairs = [(e["test"], e["anchor"], e["metric"]) for e in record["bd_rate"]]
    expected = [("s2c-conv-small", "jpeg"), ("s2c-conv-small", "webp"), ("s2c-identity-small", "jpeg"),
                ("s2c-identity-small", "webp"), ("s2c-identity-small", "s2c-conv-small")]
    assert pairs == [(t, a, m) for t, a in expected for m in ("psnr", "ms_ssim_db")]
    for entry in record["bd_rate"]:  # random weights: a number, or none with the reason
        bd = entry["mean_curve"]
        assert isinstance(bd["value_pct"], float) or (bd["reason"] and bd["flags"]), bd

    with Image.open(out / "rd.png") as plot:
        assert plot.format == "PNG" and plot.width >= 1000 and plot.height >= 400
        pixels = np.asarray(plot.convert("RGB")).astype(int)
    for colour in ((214, 39, 40), (31, 119, 180), (127, 127, 127), (44, 160, 44)):  # our two, JPEG, WebP
        assert (np.abs(pixels - colour).sum(axis=2) < 30).sum() > 100, f"no line drawn in {colour}"

    page = (out / "results.md").read_text()
    assert record["command"] in page and "](rd.png)" in page and "| test | anchor | BD-rate PSNR" in page

    printed = capsys.readouterr().out
    assert "BD-rate" in printed and "s2c-identity-small  s2c-conv-small" in printed
    assert "setting     bpp  PSNR dB" in printed


def test_eval_refine_steps_adds_the_refined_variant(tmp_path, weights, crop):
    image = tmp_path / "coffee.png"
    Image.fromarray(crop).save(image)
    rc = s2c_eval(image, "--weights", weights[0], "--codecs", "jpeg", "--qualities", "5,6", "--refine-steps", "2",
                  "--json", tmp_path / "eval.json", "--no-progress")
    assert rc == 0
    record = json.loads((tmp_path / "eval.json").read_text())
    assert [c["name"] for c in record["codecs"]] == ["s2c-conv-small", "s2c-conv-small+refine2", "jpeg"]
    assert "latents refined 2 steps" in record["codecs"][1]["description"]
    assert "--refine-steps 2" in record["command"]
    pairs = {(e["test"], e["anchor"]) for e in record["bd_rate"]}
    assert ("s2c-conv-small+refine2", "s2c-conv-small") in pairs and ("s2c-conv-small+refine2", "jpeg") in pairs
    refined = [p for p in record["points"] if p["codec"] == "s2c-conv-small+refine2"]
    assert [p["setting"] for p in refined] == [5.0, 6.0] and all(p["num_bytes"] > 0 for p in refined)
    with pytest.raises(UsageError, match="0 or more"):
        s2c_eval(image, "--weights", weights[0], "--codecs", "none", "--refine-steps", "-3")


def test_eval_reports_bad_inputs_as_usage_or_data_errors(tmp_path, weights):
    with pytest.raises(DataError, match="no such file"):
        s2c_eval(tmp_path / "missing.png", "--weights", weights[0], "--codecs", "none")
    with pytest.raises(UsageError, match=r"outside 1\.\.6"):
        s2c_eval("eval-photos", "--weights", weights[0], "--qualities", "0,7")
    with pytest.raises(UsageError, match="unknown codec 'gif'"):
        s2c_eval("eval-photos", "--weights", weights[0], "--codecs", "jpeg,gif")
    with pytest.raises(UsageError, match="no checkpoint"):
        s2c_eval("eval-photos", "--model", "s2c-attention")


# --- per-image spread, image sets ------------------------------------------------------------


def test_per_image_bd_statistics_of_a_real_run(tmp_path, capsys):
    """Bundled weights, two small photos, two levels, JPEG: the spread is that of the per-image list."""
    for name, box in (("coffee", (200, 100, 392, 228)), ("astronaut", (100, 40, 292, 168))):
        Image.fromarray(getattr(skimage.data, name)()).crop(box).save(tmp_path / f"{name}.png")
    rc = s2c_eval(
        tmp_path / "coffee.png", tmp_path / "astronaut.png", "--codecs", "jpeg", "--qualities", "4,8",
        "--json", tmp_path / "eval.json", "--markdown", tmp_path / "results.md", "--no-progress",
    )  # fmt: skip
    assert rc == 0
    record = json.loads((tmp_path / "eval.json").read_text())
    assert [i["name"] for i in record["image_set"]["images"]] == ["coffee", "astronaut"]
    page = (tmp_path / "results.md").read_text()
    printed = capsys.readouterr().out
    for entry in record["bd_rate"]:
        values = {k: v["value_pct"] for k, v in entry["per_image"].items() if v["value_pct"] is not None}
        assert len(values) == 2, entry["per_image"]  # trained weights overlap JPEG on both photos
        assert entry["per_image_count"] == 2
        assert entry["per_image_mean_pct"] == pytest.approx(statistics.fmean(values.values()), abs=1e-12)
        assert entry["per_image_std_pct"] == pytest.approx(statistics.stdev(values.values()), abs=1e-12)
        assert entry["per_image_std_pct"] > 0  # two different photos do not give the same BD-rate
        assert entry["per_image_min_pct"] == min(values.values()) < entry["per_image_max_pct"]
        assert entry["per_image_max_pct"] == max(values.values())
        assert values[entry["per_image_min_image"]] == entry["per_image_min_pct"]
        assert values[entry["per_image_max_image"]] == entry["per_image_max_pct"]
        assert isinstance(entry["mean_curve"]["value_pct"], float)
        spread = (
            f"{entry['per_image_mean_pct']:+.1f} % ± {entry['per_image_std_pct']:.1f} "
            f"[{entry['per_image_min_pct']:+.1f}, {entry['per_image_max_pct']:+.1f}] (2)"
        )
        assert spread in page and spread in printed


def test_evaluation_set_run_records_the_set_and_each_photo(tmp_path):
    evaluation = load_photo_set("evaluation")
    assert evaluation.name == "evaluation" and len(evaluation.images) >= 24
    crops = tuple(dataclasses.replace(i, rgb=i.rgb[:64, :96]) for i in evaluation.images[:2])
    small = ImageSet("evaluation", crops)
    jpeg, _ = classical_codecs(["jpeg"])
    record = run_evaluation(small, jpeg, progress=False).to_dict()
    assert record["image_set"]["name"] == "evaluation"
    for entry, image in zip(record["image_set"]["images"], small.images, strict=True):
        assert entry["sha256"] == hashlib.sha256(image.rgb.tobytes()).hexdigest()
        photo = next(p for p in evaluation_photos() if p.name == entry["name"])
        assert entry["provenance"] == photo.provenance()
        assert {"package", "version", "path", "licence", "credit", "original_size", "final_size"} <= set(
            entry["provenance"]
        )


def test_eval_set_validation_says_how_to_make_it_when_missing(tmp_path, weights):
    with pytest.raises(DataError, match=r"validation split is missing.*s2c_pipeline\.photos\.fetch"):
        s2c_eval("--set", "validation", "--photos-dir", tmp_path, "--weights", weights[0], "--codecs", "none")
    (tmp_path / "validation").mkdir()
    Image.fromarray(skimage.data.coffee()[:64, :96]).save(tmp_path / "validation" / "cup.png")
    validation = load_photo_set("validation", photos_dir=tmp_path)
    assert validation.name == "validation" and [i.name for i in validation.images] == ["cup"]
    with pytest.raises(UsageError, match="not both"):
        s2c_eval(tmp_path, "--set", "evaluation", "--weights", weights[0])
    with pytest.raises(UsageError, match="--photos-dir is for --set validation"):
        s2c_eval("--photos-dir", tmp_path, "--weights", weights[0])

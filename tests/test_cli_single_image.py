"""``s2c encode/decode/info/models`` as a user runs them: real photos, real files, exit codes."""

import json
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from s2c_pipeline.codec.weights import export_checkpoint
from s2c_pipeline.codec.zoo import create_model


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    return export_checkpoint(create_model("s2c-conv-small"), tmp_path_factory.mktemp("w"), recipe={}).path


def s2c(*args):
    return subprocess.run([sys.executable, "-m", "s2c_pipeline", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    rgb = Image.fromarray(skimage.data.coffee()[:200, :300])
    rgb.save(d / "coffee.png")
    rgb.convert("L").save(d / "grey.png")
    rgba = rgb.convert("RGBA")
    alpha = np.full((200, 300), 255, np.uint8)
    alpha[50:100, 50:150] = 0
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(d / "alpha.png")
    return d


def test_encode_decode_info_round_trip(tmp_path, weights, photos):
    out = tmp_path / "c.s2c"
    r = s2c("encode", photos / "coffee.png", out, "--weights", weights, "--quality", "2")
    assert r.returncode == 0, r.stderr
    assert "bpp" in r.stdout and "PSNR" in r.stdout
    r = s2c("decode", out, tmp_path / "c.png", "--weights", weights)
    assert r.returncode == 0, r.stderr
    decoded = Image.open(tmp_path / "c.png")
    assert decoded.size == (300, 200) and decoded.mode == "RGB"
    r = s2c("info", out)
    info = json.loads(r.stdout)
    assert info["width"] == 300 and info["height"] == 200 and info["quality"] == 2.0
    assert info["model_name"] == "s2c-conv-small"


@pytest.mark.parametrize(("name", "mode"), [("grey.png", "L"), ("alpha.png", "RGBA")])
def test_modes_come_back(tmp_path, weights, photos, name, mode):
    out = tmp_path / "x.s2c"
    assert s2c("encode", photos / name, out, "--weights", weights).returncode == 0
    assert s2c("decode", out, tmp_path / "x.png", "--weights", weights).returncode == 0
    decoded = Image.open(tmp_path / "x.png")
    assert decoded.mode == mode
    if mode == "RGBA":  # alpha is carried losslessly
        assert np.array_equal(np.asarray(decoded)[..., 3], np.asarray(Image.open(photos / name))[..., 3])


def test_bad_data_exits_1_with_one_line(tmp_path, weights, photos):
    bad = tmp_path / "bad.s2c"
    bad.write_bytes(b"hello")
    r = s2c("decode", bad, tmp_path / "o.png", "--weights", weights)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and str(bad) in r.stderr and "Traceback" not in r.stderr
    not_image = tmp_path / "notimage.png"
    not_image.write_bytes(b"\x89PNG but not really")
    r = s2c("encode", not_image, tmp_path / "o.s2c", "--weights", weights)
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_usage_errors_exit_2(tmp_path, weights, photos):
    assert s2c("encode").returncode == 2
    r = s2c("encode", photos / "coffee.png", tmp_path / "o.s2c", "--weights", weights, "--quality", "99")
    assert r.returncode == 2 and "--quality" in r.stderr
    r = s2c("encode", photos / "coffee.png", tmp_path / "o.s2c", "--model", "s2c-nope")
    assert r.returncode == 2


def test_decode_refuses_unknown_weights(tmp_path, weights, photos):
    out = tmp_path / "c.s2c"
    assert s2c("encode", photos / "coffee.png", out, "--weights", weights).returncode == 0
    r = s2c("decode", out, tmp_path / "c.png")  # the random weights are not bundled
    assert r.returncode == 1 and "unknown model" in r.stderr


def test_models_lists_the_zoo():
    r = s2c("models", "--json")
    rows = json.loads(r.stdout)
    names = {row["name"] for row in rows}
    assert {"s2c-hybrid", "s2c-conv-small", "s2c-identity", "s2c-attention-small"} <= names
    assert all(row["params"] > 1e6 for row in rows)


def test_target_psnr_and_bpp_pick_a_quality(weights, photos):
    from s2c_pipeline.codec.image_codec import ImageCodec
    from s2c_pipeline.codec.target import encode_to_target
    from s2c_pipeline.imaging import load_image

    codec = ImageCodec.load(weights_file=weights, device="cpu")
    image = load_image(photos / "coffee.png")
    low = encode_to_target(codec, image, target_bpp=0.0)  # unreachable: smallest quality, flagged
    assert not low.reached and low.quality == 1.0
    mid_bpp = encode_to_target(codec, image, target_bpp=1e9)
    assert mid_bpp.reached and mid_bpp.quality == codec.num_qualities
    # a PSNR target just under what quality 3 gives is met at quality <= 3, and the result really meets it
    _, dec3, _ = codec.encode_timed(image, 3.0)
    from s2c_pipeline.imaging import psnr

    goal = psnr(image.rgb, dec3.rgb) - 0.01
    hit = encode_to_target(codec, image, target_psnr=goal)
    assert hit.reached and hit.psnr >= goal and hit.quality <= 3.0
    assert hit.probes <= 8

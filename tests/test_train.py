"""``s2c train``: single process, resume, export, and Ray Train with two CPU workers (gloo)."""

import json
import os
import subprocess
import sys

import pytest
import skimage.data
import torch
from PIL import Image

from s2c_pipeline.codec.weights import load_checkpoint
from s2c_pipeline.train.config import load_train_config
from s2c_pipeline.train.datapack import build_datapack


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    d = tmp_path_factory.mktemp("pack")
    files = []
    for name in ("rocket", "retina", "hubble_deep_field"):  # training-only photos
        path = d / f"{name}.png"
        Image.fromarray(getattr(skimage.data, name)()).save(path)
        files.append(path)
    return build_datapack(files, d / "pack.tar", max_side=384)


def s2c(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "s2c_pipeline", *map(str, args)], capture_output=True, text=True, env=env
    )


def test_config_file_and_overrides(tmp_path):
    cfg_file = tmp_path / "t.yaml"
    cfg_file.write_text("model: s2c-identity-small\nsteps: 7\nlr: 0.001\n")
    cfg = load_train_config(cfg_file, ["steps=9", "lambdas=0.01,0.02"])
    assert (cfg.model, cfg.steps, cfg.lr, cfg.lambdas) == ("s2c-identity-small", 9, 0.001, (0.01, 0.02))
    with pytest.raises(ValueError, match="unknown training options: stepz"):
        load_train_config(None, ["stepz=3"])


def test_train_resume_and_export(tmp_path, pack):
    out = tmp_path / "run"
    common = ["--set", f"data={pack}", "--set", f"out={out}", "--set", "patch=64", "--set", "batch_size=2",
              "--set", "val_images=1", "--set", "val_every=2", "--set", "checkpoint_every=2", "--set", "threads=1",
              "--set", "lambdas=0.005,0.05"]
    r = s2c("train", *common, "--set", "steps=2")
    assert r.returncode == 0, r.stderr[-2000:]
    first = torch.load(out / "last.pt", weights_only=True)
    assert first["step"] == 2
    saved = (out / "config.yaml").read_text()
    assert "steps: 2" in saved and "patch: 64" in saved
    r = s2c("train", *common, "--set", "steps=4", "--export", tmp_path / "export")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed" in r.stderr
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [2, 4]
    assert len(history[-1]["val"]) == 2 and history[-1]["val"][0]["bpp"] > 0
    (exported,) = (tmp_path / "export").glob("s2c-conv-small-*.pt")
    model, recipe = load_checkpoint(exported)
    assert recipe["steps"] == 4 and recipe["data"]["file"] == "pack.tar"
    assert model.config.lambdas == (0.005, 0.05)
    # the exported model codes for real
    code = model.compress_latents(torch.rand(1, 3, 64, 64), 2.0)
    assert torch.equal(model.decode_y(code), code.y_hat)


def test_a_run_can_start_from_an_exported_checkpoint(tmp_path, pack):
    """init_from: the compact export (what fits on a GPU machine) starts a fresh run; another
    model's export is refused with a message."""
    from s2c_pipeline.codec.weights import export_checkpoint
    from s2c_pipeline.codec.zoo import create_model

    torch.manual_seed(3)
    source = export_checkpoint(create_model("s2c-conv-small"), tmp_path / "source", recipe={})
    common = ["--set", f"data={pack}", "--set", "patch=64", "--set", "batch_size=2", "--set", "val_images=1",
              "--set", "threads=1", "--set", f"init_from={source.path}"]
    # one step at learning rate 0: the exported weights must be the source's, not a fresh init
    r = s2c("train", *common, "--set", f"out={tmp_path / 'run'}", "--set", "steps=1", "--set", "lr=0",
            "--set", "aux_lr=0", "--export", tmp_path / "export")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "started from the weights of" in r.stderr
    (exported,) = (tmp_path / "export").glob("s2c-conv-small-*.pt")
    started, _ = load_checkpoint(exported)
    original, _ = load_checkpoint(source.path)
    fresh = create_model("s2c-conv-small")
    for name, value in original.state_dict().items():
        if name.endswith("context_prediction.weight"):  # the checkerboard conv zeroes its masked taps in forward
            value = value * (started.state_dict()[name] != 0)
        assert torch.equal(started.state_dict()[name], value), name
    assert not torch.equal(fresh.g_a[0].weight, original.g_a[0].weight)
    r = s2c("train", *common, "--set", f"out={tmp_path / 'other'}", "--set", "model=s2c-identity-small",
            "--set", "steps=1")
    assert r.returncode != 0 and "init_from needs the same model" in r.stderr


def test_missing_pack_is_a_usage_error(tmp_path):
    r = s2c("train", "--set", f"data={tmp_path}/nope.tar")
    assert r.returncode == 2 and "datapack" in r.stderr


@pytest.mark.slow
def test_ray_train_with_two_cpu_workers(tmp_path, pack):
    out = tmp_path / "ray-run"
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    r = s2c(
        "train", "--ray-workers", "2",
        "--set", f"data={pack}", "--set", f"out={out}", "--set", "patch=64", "--set", "batch_size=2",
        "--set", "val_images=1", "--set", "val_every=2", "--set", "checkpoint_every=2", "--set", "steps=2",
        "--set", "threads=1",
        env=env,
    )
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-4000:])
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["step"] == 2
    # DDP's wrapper must not leak into the checkpoint keys
    assert not any(k.startswith("module.") for k in ckpt["model"])


def test_bundling_a_newer_checkpoint_keeps_the_older_one_decodable(tmp_path):
    """A new bundle becomes the model's current checkpoint; the older one stays listed, so streams
    written with it still find their weights, but it is never picked for encoding."""
    from s2c_pipeline.codec.image_codec import ImageCodec, codec_for_bitstream
    from s2c_pipeline.codec.weights import bundled_weights, export_checkpoint, find_weights
    from s2c_pipeline.codec.zoo import create_model
    from s2c_pipeline.imaging import load_image
    from s2c_pipeline.train.export import bundle

    package = tmp_path / "weights"
    entries = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        entries.append(export_checkpoint(create_model("s2c-conv-small"), tmp_path / f"export{seed}", recipe={}))
    older, newer = entries
    bundle(older, default=True, directory=package)
    image = load_image(_png(48, 40))
    old_stream = ImageCodec(load_checkpoint(older.path, "cpu")[0], older, device="cpu").encode(image, 2.0)
    bundle(newer, default=True, directory=package)

    listed = bundled_weights(package)
    assert [(e.sha256, e.current, e.default) for e in listed] == [(newer.sha256, True, True), (older.sha256, False, False)]
    assert find_weights("s2c-conv-small", extra=listed).sha256 == newer.sha256
    assert find_weights(extra=listed).sha256 == newer.sha256
    codec = codec_for_bitstream(old_stream, source="old.s2c", extra_weights=[e.path for e in listed], device="cpu")
    assert codec.weights.sha256 == older.sha256
    assert codec.decode(old_stream).rgb.shape == (40, 48, 3)
    bundle(newer, default=True, directory=package)  # bundling again changes nothing
    assert [(e.sha256, e.current) for e in bundled_weights(package)] == [(newer.sha256, True), (older.sha256, False)]


def _png(width: int, height: int) -> bytes:
    import io

    import numpy as np

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()

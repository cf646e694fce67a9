"""``s2c train``: single process, resume, export, and Ray Train with two CPU workers (gloo)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from s2c_pipeline.codec.weights import file_sha256, load_checkpoint
from s2c_pipeline.train.config import load_train_config
from s2c_pipeline.train.datapack import build_datapack
from s2c_pipeline.train.loop import quality_sampling_weights


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


def test_a_time_boxed_run_drops_lr_by_the_clock_with_crops_made_on_threads(tmp_path, pack):
    """lr_drop_minutes: the lr falls tenfold once that much training time has passed, whatever the
    step count; loader_threads: the batches come from the background thread (the GPU path)."""
    out = tmp_path / "run"
    r = s2c("train", "--set", f"data={pack}", "--set", f"out={out}", "--set", "patch=64", "--set", "batch_size=2",
            "--set", "val_images=1", "--set", "val_every=1", "--set", "threads=1", "--set", "steps=3",
            "--set", "lr=0.0003", "--set", "lr_drop_minutes=0.0001", "--set", "loader_threads=2",
            "--set", "crop_candidates=2")
    assert r.returncode == 0, r.stderr[-2000:]
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["lr"] for h in history] == pytest.approx([3e-4, 3e-5, 3e-5])
    assert "lr 0.0003 -> 3e-05 at step 1" in r.stderr


def test_lr_warms_up_linearly_then_holds(tmp_path, pack):
    """lr_warmup_steps=4: steps 1-3 train at 1/4, 2/4 and 3/4 of lr, step 4 onwards at lr, with no
    'lr ->' message for the ramp itself; history records the lr each validated step used."""
    out = tmp_path / "run"
    r = s2c("train", "--set", f"data={pack}", "--set", f"out={out}", "--set", "patch=64", "--set", "batch_size=2",
            "--set", "val_images=1", "--set", "val_every=1", "--set", "threads=1", "--set", "steps=5",
            "--set", "lr=0.0004", "--set", "lr_warmup_steps=4")
    assert r.returncode == 0, r.stderr[-2000:]
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["lr"] for h in history] == pytest.approx([1e-4, 2e-4, 3e-4, 4e-4, 4e-4])
    assert "lr 0.0003 -> 0.0004" not in r.stderr


def test_crops_made_on_the_device_train_the_same_weights(tmp_path, pack):
    """crops_on_device: the same crops as the CPU thread's, so two runs end on identical weights."""
    common = ["--set", f"data={pack}", "--set", "patch=64", "--set", "batch_size=2", "--set", "val_images=1",
              "--set", "val_every=3", "--set", "threads=1", "--set", "steps=3", "--set", "crop_candidates=3"]
    weights = []
    for name, options in (("thread", ["--set", "loader_threads=2"]), ("device", ["--set", "crops_on_device=true"])):
        r = s2c("train", *common, *options, "--set", f"out={tmp_path / name}")
        assert r.returncode == 0, r.stderr[-2000:]
        weights.append(torch.load(tmp_path / name / "last.pt", weights_only=True)["model"])
    assert weights[0].keys() == weights[1].keys()
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name


def test_profile_steps_write_where_the_step_time_goes(tmp_path, pack):
    """profile_steps=2: after 10 unprofiled steps, 2 are profiled into profile.txt, with the loop's
    phases named; without it, no profile."""
    common = ["--set", f"data={pack}", "--set", "patch=64", "--set", "batch_size=2", "--set", "val_images=1",
              "--set", "val_every=100", "--set", "threads=1", "--set", "steps=13"]
    r = s2c("train", *common, "--set", f"out={tmp_path / 'run'}", "--set", "profile_steps=2")
    assert r.returncode == 0, r.stderr[-2000:]
    table = (tmp_path / "run" / "profile.txt").read_text()
    assert table.startswith("# 2 training steps after 10, on cpu")
    phases = {line.split()[0]: float(line.split()[1]) for line in table.split("\n\n")[1].splitlines()[1:]}
    assert set(phases) == {"crops", "forward", "backward", "optimizer"} and all(ms > 0 for ms in phases.values())
    assert "aten::convolution_backward" in table
    assert "profile of 2 steps written to" in r.stderr
    r = s2c("train", *common, "--set", f"out={tmp_path / 'plain'}", "--set", "steps=2")
    assert r.returncode == 0 and not (tmp_path / "plain" / "profile.txt").exists()


def test_phase_table_merges_the_host_and_gpu_events_of_a_label():
    """On a GPU the profiler returns each label twice (host range, then its GPU span with host time
    0); the table has one row per phase with both times, as the stage-8 lease's profile did not."""
    from types import SimpleNamespace

    from s2c_pipeline.train.profiling import phase_table

    def event(key, host_us, gpu_us):
        return SimpleNamespace(key=key, cpu_time_total=host_us, device_time_total=gpu_us)

    averages = [event("forward", 4000, 0), event("aten::mul", 9000, 9000), event("forward", 0, 5000),
                event("crops", 1000, 0), event("crops", 0, 200), event("backward", 6000, 0),
                event("optimizer", 1000, 0), event("optimizer", 0, 600)]
    header, *rows = phase_table(averages, steps=2, on_gpu=True)
    assert "GPU ms" in header
    assert [row.split() for row in rows] == [["crops", "0.5", "0.1"], ["forward", "2.0", "2.5"],
                                             ["backward", "3.0", "0.0"], ["optimizer", "0.5", "0.3"]]
    assert [row.split() for row in phase_table(averages, steps=2, on_gpu=False)[1:]][1] == ["forward", "2.0"]


def test_quality_weights_train_only_the_levels_they_name(tmp_path, pack):
    """quality_weights=0,1: every sample is drawn at level 2, so level 1's gains keep their
    initial values exactly (Adam moves nothing without a gradient) while level 2's move."""
    out = tmp_path / "run"
    common = ["--set", f"data={pack}", "--set", f"out={out}", "--set", "patch=64", "--set", "batch_size=2",
              "--set", "val_images=1", "--set", "val_every=2", "--set", "threads=1", "--set", "steps=2",
              "--set", "lambdas=0.005,0.05", "--set", "lr=0.001"]
    r = s2c("train", *common, "--set", "quality_weights=0,1")
    assert r.returncode == 0, r.stderr[-2000:]
    log_gain = torch.load(out / "last.pt", weights_only=True)["model"]["log_gain"]  # float32, unlike an export
    initial = torch.linspace(math.log(0.5), math.log(2.0), 2)
    assert torch.equal(log_gain[0], initial[0].expand(log_gain.shape[1]))
    assert (log_gain[1] - initial[1]).abs().max() > 1e-4
    r = s2c("train", *common, "--set", f"out={tmp_path / 'bad'}", "--set", "quality_weights=1,1,1")
    assert r.returncode != 0 and "quality_weights needs 2 non-negative weights" in r.stderr
    assert quality_sampling_weights((), 3) is None
    with pytest.raises(ValueError, match="positive sum"):
        quality_sampling_weights((0, 0), 2)


def test_threaded_crop_scoring_and_prefetching_keep_the_crops(pack):
    import itertools

    from s2c_pipeline.train.crops import CropSampler, DeviceCropSampler, Prefetcher
    from s2c_pipeline.train.datapack import DataPack

    loaded = DataPack(pack)
    inline = CropSampler(loaded, [0, 1], patch=64, seed=3, candidates=3)
    threaded = CropSampler(loaded, [0, 1], patch=64, seed=3, candidates=3, workers=2)
    on_device = DeviceCropSampler(loaded, [0, 1], patch=64, seed=3, candidates=3, device=torch.device("cpu"))
    prefetcher = Prefetcher(lambda: threaded.batch(4), depth=2)
    try:
        for _ in range(3):
            batch = inline.batch(4)
            assert torch.equal(batch, prefetcher.next())
            assert torch.equal(batch, on_device.batch(4))
    finally:
        prefetcher.close()
        threaded.close()
    plain = CropSampler(loaded, [0, 1], patch=64, seed=4)
    plain_on_device = DeviceCropSampler(loaded, [0, 1], patch=64, seed=4, candidates=1, device=torch.device("cpu"))
    assert torch.equal(plain.batch(5), plain_on_device.batch(5))
    counter = itertools.count()

    def failing() -> torch.Tensor:
        if next(counter) == 1:
            raise OSError("pack unreadable")
        return torch.zeros(1)

    prefetcher = Prefetcher(failing)
    assert torch.equal(prefetcher.next(), torch.zeros(1))
    with pytest.raises(OSError, match="pack unreadable"):
        prefetcher.next()
    prefetcher.close()


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


def test_an_export_starts_a_run_with_more_rate_points(tmp_path, pack):
    """init_from with other lambdas: shared rate points keep their trained gains, new ones start on
    the log-lambda line through the end points; NHWC and detail-picked crops run the same loop."""
    from s2c_pipeline.codec.config import PAPER_LAMBDAS
    from s2c_pipeline.codec.weights import export_checkpoint
    from s2c_pipeline.codec.zoo import create_model
    from s2c_pipeline.train.loop import remap_gains

    torch.manual_seed(4)
    source = export_checkpoint(create_model("s2c-conv-small"), tmp_path / "source", recipe={})
    lambdas = (0.0009, *PAPER_LAMBDAS, 0.0932)
    r = s2c("train", "--set", f"data={pack}", "--set", "patch=64", "--set", "batch_size=2", "--set", "val_images=1",
            "--set", "threads=1", "--set", f"init_from={source.path}", "--set", f"out={tmp_path / 'run'}",
            "--set", "steps=1", "--set", "lr=0", "--set", "aux_lr=0", "--set", "channels_last=true",
            "--set", "crop_candidates=3", "--set", "lambdas=" + ",".join(map(str, lambdas)),
            "--export", tmp_path / "export")
    assert r.returncode == 0, r.stderr[-2000:]
    (exported,) = (tmp_path / "export").glob("s2c-conv-small-*.pt")
    started, _ = load_checkpoint(exported)
    original, _ = load_checkpoint(source.path)
    assert started.config.lambdas == lambdas and started.config.num_qualities == 8
    for name in ("log_gain", "log_inverse_gain"):
        new, old = getattr(started, name).detach(), getattr(original, name).detach()
        assert torch.equal(new[1:7], old)
        assert torch.equal(new, remap_gains(old, PAPER_LAMBDAS, lambdas).half().float())
    # the top rate point quantises more finely than any trained one, the bottom one more coarsely
    assert bool((started.log_gain[7] > started.log_gain[6]).all()) and bool((started.log_gain[0] < started.log_gain[1]).all())
    assert torch.equal(started.g_s[0][0].weight, original.g_s[0][0].weight)


def test_a_run_from_an_export_keeps_the_layers_lower_bounds(tmp_path):
    """The fp16 export stores the likelihood bound 1e-9 as 0; a run started from it must still
    train with the bound, or a likelihood reaches 0 and the loss inf within a few steps."""
    from s2c_pipeline.codec.weights import export_checkpoint
    from s2c_pipeline.codec.zoo import create_model
    from s2c_pipeline.train.loop import init_weights, make_state

    source = export_checkpoint(create_model("s2c-conv-small"), tmp_path / "source", recipe={})
    state = make_state(load_train_config(None, []), torch.device("cpu"))
    init_weights(state, source.path)
    bounds = {n: b for n, b in state.model.state_dict().items() if n.endswith("likelihood_lower_bound.bound")}
    assert bounds and all(float(b) == pytest.approx(1e-9) for b in bounds.values())
    loaded, _ = load_checkpoint(source.path)
    assert all(float(loaded.state_dict()[n]) == 0 for n in bounds)  # what the file holds


def test_remap_gains_interpolates_and_extends_in_log_lambda():
    from s2c_pipeline.train.loop import remap_gains

    table = torch.tensor([[0.0, 1.0], [1.0, 3.0]])  # at lambdas 0.01 and 0.04
    out = remap_gains(table, (0.01, 0.04), (0.005, 0.02, 0.04, 0.16))
    torch.testing.assert_close(out, torch.tensor([[-0.5, 0.0], [0.5, 2.0], [1.0, 3.0], [2.0, 5.0]]))
    with pytest.raises(ValueError, match="increasing lambdas"):
        remap_gains(table, (0.04, 0.01), (0.02,))


def test_detail_picked_crops_are_more_detailed_and_seeded(tmp_path):
    """crop_candidates: half of the image is flat, half is noise; picking the most detailed of 4
    draws lands on the noise far more often than a plain draw, and a seed repeats the crops."""
    import numpy as np

    from s2c_pipeline.train.crops import CropSampler, detail

    rng = np.random.default_rng(0)
    image = np.full((256, 512, 3), 128, np.uint8)
    image[:, 256:] = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "half.png")
    pack = build_datapack([tmp_path / "half.png"], tmp_path / "pack.tar", max_side=512)
    from s2c_pipeline.train.datapack import DataPack

    loaded = DataPack(pack)

    def noisy_share(candidates: int) -> float:
        sampler = CropSampler(loaded, [0], patch=64, seed=1, candidates=candidates)
        return float(np.mean([detail(sampler.crop()) > 40 for _ in range(200)]))

    assert noisy_share(4) > noisy_share(1) + 0.2
    a, b = (CropSampler(loaded, [0], patch=64, seed=9, candidates=4).batch(3) for _ in range(2))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="crop_candidates"):
        CropSampler(loaded, [0], patch=64, seed=0, candidates=0)


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


def test_a_retired_checkpoint_leaves_the_package_but_its_streams_say_where_it_is(tmp_path):
    """retire: the file goes (the 40 MB cap), the index keeps the record, and a stream naming it
    fails with the command that brings the file back instead of a bare "unknown weights"."""
    from s2c_pipeline.codec.image_codec import ImageCodec, codec_for_bitstream
    from s2c_pipeline.codec.weights import WeightsNotFound, bundled_weights, export_checkpoint, find_weights
    from s2c_pipeline.codec.zoo import create_model
    from s2c_pipeline.imaging import load_image
    from s2c_pipeline.train.export import bundle, retire

    package = tmp_path / "weights"
    older, newer, newest = (
        export_checkpoint(create_model("s2c-conv-small", lambdas=(0.001 * s, 0.01)), tmp_path / f"e{s}", recipe={})
        for s in (1, 2, 3)
    )
    bundle(older, default=True, directory=package)
    old_stream = ImageCodec(load_checkpoint(older.path, "cpu")[0], older, device="cpu").encode(load_image(_png(40, 32)), 1.0)
    with pytest.raises(ValueError, match="is the current s2c-conv-small checkpoint"):
        retire(older.weights_id, commit="abc1234", left_in="test", directory=package)
    bundle(newer, default=True, directory=package)
    removed = retire(older.weights_id, commit="abc1234", left_in="v0.3", directory=package)
    assert not removed.exists() and removed.name == older.path.name
    assert [e.sha256 for e in bundled_weights(package)] == [newer.sha256]
    with pytest.raises(WeightsNotFound, match=rf"git show abc1234:s2c_pipeline/codec/weights/{older.path.name}"):
        find_weights("s2c-conv-small", older.weights_id, directory=package)
    # the record survives the next bundle, and the file named in the hint decodes the old stream
    bundle(newest, default=True, directory=package)
    with pytest.raises(WeightsNotFound, match=r"left the package in v0\.3"):
        find_weights(weights_id=older.weights_id, directory=package)
    codec = codec_for_bitstream(old_stream, source="old.s2c", extra_weights=[older.path], device="cpu")
    assert codec.decode(old_stream).rgb.shape == (32, 40, 3)


def _png(width: int, height: int) -> bytes:
    import io

    import numpy as np

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_fused_adam_trains_like_per_tensor_adam_and_lr_scales_with_the_batch(tmp_path, pack):
    """fused_adam is one kernel doing Adam's arithmetic: after 3 steps its weights match the per-tensor
    optimizer's to float32 rounding. lr_reference_batch=1 at batch 4 doubles the lr (sqrt rule)."""
    import dataclasses

    from s2c_pipeline.train.config import TrainConfig
    from s2c_pipeline.train.loop import train

    base = TrainConfig(data=str(pack), patch=64, batch_size=4, val_images=1, val_every=3, steps=3, threads=1,
                       lr=1e-4, lr_reference_batch=1)
    states = [train(dataclasses.replace(base, out=str(tmp_path / str(fused)), fused_adam=fused))
              for fused in (False, True)]
    history = [json.loads(line) for line in (tmp_path / "True" / "history.jsonl").read_text().splitlines()]
    assert history[-1]["lr"] == pytest.approx(2e-4)
    plain, fused = (s.model.state_dict() for s in states)
    for name, value in plain.items():
        if value.is_floating_point():
            torch.testing.assert_close(fused[name], value, rtol=1e-4, atol=1e-6, msg=name)
    start = TrainConfig(data=str(pack), patch=64, batch_size=4, val_images=1, steps=0, out=str(tmp_path / "s"))
    untrained = train(start).model.state_dict()
    assert any(not torch.equal(untrained[n], plain[n]) for n in plain if plain[n].is_floating_point())


def test_an_unknown_compile_mode_is_refused_before_training(tmp_path, pack):
    r = s2c("train", "--set", f"data={pack}", "--set", f"out={tmp_path}", "--set", "compile=fastest",
            "--set", "steps=1", "--set", "patch=64", "--set", "val_images=1")
    assert r.returncode != 0
    assert "compile must be empty or one of default, reduce-overhead, max-autotune" in r.stderr
    assert not (tmp_path / "last.pt").exists()


def test_validation_on_a_photo_split_trains_on_every_pack_image(tmp_path, pack):
    """validation=FOLDER validates on centre crops of FOLDER/validation/*.png (the split that
    chooses checkpoints), so val_images=0 is allowed; a folder without the split is a usage error
    that names the fetch command, and val_images=0 without it is refused."""
    photos = tmp_path / "photos"
    (photos / "validation").mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i, size in enumerate(((320, 256), (256, 384))):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(photos / "validation" / f"v{i}.png")
    common = ["--set", f"data={pack}", "--set", "patch=64", "--set", "batch_size=2", "--set", "val_images=0",
              "--set", "val_every=2", "--set", "threads=1", "--set", "steps=2"]
    r = s2c("train", *common, "--set", f"validation={photos}", "--set", f"out={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr[-2000:]
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [2] and len(history[0]["val"]) == 6
    # The split also picks the checkpoint: best.pt is the step with the lowest mean level loss, and
    # the export takes it, whichever step came last. The data option may be a glob of packs.
    r = s2c("train", *common[:-2], "--set", "steps=6", "--set", "lr=0.003", "--set", f"validation={photos}",
            "--set", f"data={pack.parent}/pack*.tar", "--set", f"out={tmp_path / 'run'}", "--export", tmp_path / "export")
    assert r.returncode == 0, r.stderr[-2000:]
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    scores = {h["step"]: sum(v["loss"] for v in h["val"]) / len(h["val"]) for h in history}
    best_step = min(scores, key=scores.get)
    assert json.loads((tmp_path / "run" / "best.json").read_text())["step"] == best_step
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=True)["step"] == best_step
    (exported,) = (tmp_path / "export").glob("s2c-conv-small-*.pt")
    _model, recipe = load_checkpoint(exported)
    assert recipe["checkpoint"] == "best.pt" and recipe["steps"] == best_step
    assert recipe["final_validation"]["step"] == best_step
    assert recipe["data"] == {"file": "pack.tar", "sha256": file_sha256(pack)}
    # Continuing an export: its own validation is step 0, the bar a later step must beat. At lr 0
    # no step beats it, so best.pt stays the starting weights.
    r = s2c("train", *common, "--set", f"validation={photos}", "--set", f"init_from={exported}",
            "--set", "lr=0", "--set", "aux_lr=0", "--set", f"out={tmp_path / 'continued'}")
    assert r.returncode == 0, r.stderr[-2000:]
    history = [json.loads(line) for line in (tmp_path / "continued" / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [0, 2]
    assert json.loads((tmp_path / "continued" / "best.json").read_text())["step"] == 0
    # The split may also come packed (what a GPU call carries): its images validate alike.
    split = build_datapack(sorted((photos / "validation").glob("*.png")), tmp_path / "validation-pack.tar")
    r = s2c("train", *common, "--set", f"validation={split}", "--set", f"out={tmp_path / 'packed'}")
    assert r.returncode == 0, r.stderr[-2000:]
    history = [json.loads(line) for line in (tmp_path / "packed" / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [2] and len(history[0]["val"]) == 6
    r = s2c("train", *common, "--set", f"validation={tmp_path / 'none.tar'}", "--set", f"out={tmp_path / 'd'}")
    assert r.returncode == 2 and "make device-packs" in r.stderr, r.stderr[-2000:]
    r = s2c("train", *common, "--set", f"validation={tmp_path / 'nowhere'}", "--set", f"out={tmp_path / 'b'}")
    assert r.returncode == 2 and "python -m s2c_pipeline.photos.fetch" in r.stderr, r.stderr[-2000:]
    r = s2c("train", *common, "--set", f"out={tmp_path / 'c'}")
    assert r.returncode == 2 and "val_images must be at least 1" in r.stderr, r.stderr[-2000:]


def test_train_throughput_benchmark_times_settings_side_by_side_and_reports_failures(tmp_path):
    """benchmarks/train_throughput.py: each rung a row with crops/s from its median step; a setting
    that cannot start (here an unknown model) is a row with the reason, not a crash."""
    out = tmp_path / "tt.json"
    cmd = [sys.executable, str(Path(__file__).parents[1] / "benchmarks" / "train_throughput.py"), "--device", "cpu", "--patch", "64", "--batch", "2",
           "--steps", "2", "--warmup", "1", "--crop-candidates", "1", "--settings", "eager,fused-adam",
           "--batch-multiples", "", "--json", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [row["setting"] for row in rows] == ["eager", "fused-adam"]
    assert all(row["steps"] == 2 and row["crops_per_s"] > 0 and math.isfinite(row["final_loss"]) for row in rows)
    r = subprocess.run([*cmd[:-2], "--model", "s2c-nonexistent", "--settings", "eager"], capture_output=True, text=True)
    assert r.returncode == 0 and "failed: KeyError" in r.stdout, r.stdout[-2000:]


def test_capacity_benchmark_compares_configs_at_equal_budget_on_the_validation_split(tmp_path, pack):
    """benchmarks/capacity.py: each config trains for the same timed budget, is validated three
    times on the validation split, and gets a lease projection; a config that cannot start is a row
    with the reason. Without packs it says which command makes them."""
    photos = tmp_path / "photos"
    (photos / "validation").mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (128, 160, 3), dtype=np.uint8)).save(photos / "validation" / f"v{i}.png")
    out = tmp_path / "capacity.json"
    script = str(Path(__file__).parents[1] / "benchmarks" / "capacity.py")
    cmd = [sys.executable, script, "--data", str(pack), "--photos", str(photos), "--minutes", "0.05", "--patch", "64",
           "--batch", "2", "--val-photos", "2", "--val-size", "64", "--models", "s2c-identity-small,s2c-nope",
           "--json", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(out.read_text())
    first, failed = result["rows"]
    assert first["model"] == "s2c-identity-small" and len(first["scores"]) == 3
    assert all(math.isfinite(s) and s > 0 for s in first["scores"])
    assert first["crops"] > 0 and first["crops"] % 2 == 0 and first["crops_per_s"] > 0
    one, five = first["projection"]["1_lease"]["crops"], first["projection"]["5_lease"]["crops"]
    assert one[0] == one[1] > 0 and five == [5 * n for n in one]
    assert failed["model"] == "s2c-nope" and "KeyError" in failed["error"]
    assert math.isfinite(result["bundled"]["score"]) and len(result["bundled"]["levels"]) == 8
    r = subprocess.run([*cmd[:2], "--data", str(tmp_path / "none-*.tar"), "--photos", str(photos)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "make packs" in r.stderr

"""The library face: ``s2c_pipeline.encode`` / ``decode`` / ``Codec``, reading output shards in a
PyTorch DataLoader, and an import that neither loads torch nor leaves a fake torchvision behind."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import s2c_pipeline
from s2c_pipeline.bitstream import decode_container
from s2c_pipeline.codec.encode_and_verify import EncodeSettings
from s2c_pipeline.codec.image_codec import ImageCodec, default_quality
from s2c_pipeline.codec.weights import BUNDLED_DIR
from s2c_pipeline.imaging import DEFAULT_MAX_PIXELS
from s2c_pipeline.imaging.metrics import psnr
from s2c_pipeline.pipeline.compress.shard_coder import compress_shard
from s2c_pipeline.shards import read_shard, split_name
from s2c_pipeline.webdataset_stage import S2CDecoder

REPO = Path(__file__).resolve().parents[1]
OLD_WEIGHTS = BUNDLED_DIR / "s2c-conv-small-ad47568a853be580.pt"
"""Bundled, no longer current weights (6 quality levels), kept so that old streams decode."""


@pytest.fixture(scope="module")
def codec() -> s2c_pipeline.Codec:
    return s2c_pipeline.Codec(device="cpu")


def _photo(photos, name: str, box=(0, 0, 96, 64)) -> Image.Image:
    """A small crop of a real photo: the codec's behaviour, at a fraction of the CPU time."""
    return dict(photos)[name].crop(box)


def _header(data: bytes):
    return decode_container(data, source="test").header


def test_encode_takes_pil_numpy_and_paths_with_the_models_default_quality(photos, codec, tmp_path):
    image = _photo(photos, "astronaut")
    data = s2c_pipeline.encode(image)

    assert isinstance(data, bytes)
    header = _header(data)
    assert (header.width, header.height) == (96, 64)
    assert header.quality == default_quality(codec.num_qualities) == codec.default_quality
    assert (header.model_name, header.weights_id) == (codec.model_name, codec.weights_id)
    decoded = s2c_pipeline.decode(data)
    assert isinstance(decoded, Image.Image)
    assert (decoded.mode, decoded.size) == ("RGB", (96, 64))
    assert psnr(np.asarray(image), np.asarray(decoded)) > 24

    path = tmp_path / "astronaut.png"
    image.save(path)
    assert s2c_pipeline.encode(np.asarray(image)) == data
    assert s2c_pipeline.encode(path) == data
    assert s2c_pipeline.encode(str(path)) == data
    assert codec.encode(image) == data


def test_grey_and_rgba_arrays_come_back_in_their_own_mode(photos, codec):
    grey = np.asarray(_photo(photos, "camera"))
    assert grey.ndim == 2
    decoded = codec.decode(codec.encode(grey))
    assert (decoded.mode, decoded.size) == ("L", (96, 64))
    assert psnr(grey, np.asarray(decoded)) > 24

    rgb = np.asarray(_photo(photos, "coffee"))
    alpha = np.tile(np.linspace(0, 255, 96).round().astype(np.uint8), (64, 1))
    decoded = codec.decode(codec.encode(np.dstack([rgb, alpha])))
    assert decoded.mode == "RGBA"
    assert np.array_equal(np.asarray(decoded)[..., 3], alpha)  # alpha is carried losslessly
    assert psnr(rgb, np.asarray(decoded)[..., :3]) > 24


def test_quality_chooses_the_rate(photos, codec):
    image = _photo(photos, "chelsea")
    low, high = codec.encode(image, quality=1), codec.encode(image, quality=codec.num_qualities)
    assert _header(low).quality == 1.0
    assert len(low) < len(high)
    with pytest.raises(ValueError, match=f"outside 1..{codec.num_qualities}"):
        codec.encode(image, quality=codec.num_qualities + 1)


def test_inputs_that_are_not_images_are_refused_with_what_to_do(codec):
    with pytest.raises(ValueError, match=r"uint8.*astype\(np.uint8\)"):
        codec.encode(np.zeros((64, 64, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(3, 64, 80\).*transpose\(1, 2, 0\)"):
        codec.encode(np.zeros((3, 64, 80), dtype=np.uint8))
    with pytest.raises(TypeError, match="not list"):
        codec.encode([[0, 1], [2, 3]])


def test_decode_loads_the_weights_a_stream_names(photos, codec, tmp_path):
    old = s2c_pipeline.Codec(weights=OLD_WEIGHTS, device="cpu")
    assert old.weights_id == "ad47568a853be580" != codec.weights_id
    image = _photo(photos, "coffee")
    data = old.encode(image)
    assert _header(data).quality == default_quality(6) == old.default_quality

    expected = np.asarray(old.decode(data))
    assert np.array_equal(np.asarray(codec.decode(data)), expected)
    path = tmp_path / "coffee.s2c"
    path.write_bytes(data)
    assert np.array_equal(np.asarray(s2c_pipeline.decode(path)), expected)
    assert psnr(np.asarray(image), expected) > 24


def _python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (nothing imported yet) and return the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_is_cheap_and_the_api_is_at_the_package_top():
    result = _python(
        "import importlib.util, json, sys\n"
        "import s2c_pipeline\n"
        "api = [s2c_pipeline.encode, s2c_pipeline.decode, s2c_pipeline.Codec]\n"
        "spec = importlib.util.find_spec('torchvision')\n"
        "print(json.dumps({'loaded': sorted(m for m in ('torch', 'compressai', 'torchvision') if m in sys.modules),"
        " 'callable': all(map(callable, api))}))\n"
    )
    assert result == {"loaded": [], "callable": True}


def test_the_torchvision_stand_in_does_not_outlive_compressais_import():
    result = _python(
        "import importlib.util, json, sys\n"
        "real = importlib.util.find_spec('torchvision') is not None\n"
        "import numpy as np\n"
        "from skimage import data\n"
        "import s2c_pipeline\n"
        "image = data.astronaut()[:64, :96]\n"
        "decoded = np.asarray(s2c_pipeline.decode(s2c_pipeline.encode(image)))\n"
        "try:\n"
        "    import torchvision.transforms\n"
        "    user_import = 'ok'\n"
        "except ModuleNotFoundError:\n"
        "    user_import = 'ModuleNotFoundError'\n"
        "print(json.dumps({'real': real, 'compressai': 'compressai' in sys.modules,\n"
        "    'spec': importlib.util.find_spec('torchvision') is not None,\n"
        "    'modules': sorted(m for m in sys.modules if m.split('.')[0] == 'torchvision'),\n"
        "    'user_import': user_import,\n"
        "    'error': float(np.abs(decoded.astype(float) - image).mean())}))\n"
    )
    assert result["compressai"]
    assert result["error"] < 8  # compressai's entropy coder still works: the photo comes back
    if result["real"]:  # a machine with torchvision: compressai uses it, untouched
        assert result["spec"] and result["user_import"] == "ok"
    else:
        assert result["spec"] is False
        assert result["modules"] == []
        assert result["user_import"] == "ModuleNotFoundError"


@pytest.fixture(scope="module")
def output_shards(sample_shard_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The pipeline's own output for the demo shards: ``compress_shard`` over each input shard."""
    codec = ImageCodec.load(device="cpu")
    settings = EncodeSettings(
        quality=default_quality(codec.num_qualities), max_pixels=DEFAULT_MAX_PIXELS, device="cpu"
    )
    out = tmp_path_factory.mktemp("output_shards")
    paths = []
    for shard in sorted(sample_shard_dir.glob("*.tar")):
        path = out / shard.name
        path.write_bytes(compress_shard(read_shard(str(shard)), codec, settings, output_url=str(path)).tar)
        paths.append(path)
    return paths


def _members(paths: list[Path]) -> dict[str, bytes]:
    members = {}
    for path in paths:
        with tarfile.open(path) as tar:
            for info in tar:
                members[info.name] = tar.extractfile(info).read()
    return members


def _tag_worker(sample: dict) -> dict:
    from torch.utils.data import get_worker_info

    return {**sample, "worker": get_worker_info().id}


def test_a_dataloader_with_two_workers_decodes_every_s2c_member_once(output_shards):
    import webdataset as wds
    from torch.utils.data import DataLoader

    members = _members(output_shards)
    s2c_keys = {name.removesuffix(".s2c") for name in members if name.endswith(".s2c")}
    all_keys = {split_name(name)[0] for name in members}
    assert s2c_keys == {"000000", "batch.v2/000001", "000002", "000003"}  # 000004 is not an image
    assert all_keys == s2c_keys | {"000004"}

    dataset = (
        wds.WebDataset([str(p) for p in output_shards], shardshuffle=False)
        .decode(S2CDecoder())
        .map(_tag_worker)
    )
    seen: Counter[str] = Counter()
    workers = set()
    for sample in DataLoader(dataset, num_workers=2, batch_size=None):
        key = sample["__key__"]
        seen[key] += 1
        workers.add(sample["worker"])
        assert ("s2c" in sample) == (key in s2c_keys)
        if key in s2c_keys:
            expected = s2c_pipeline.decode(members[f"{key}.s2c"])
            assert sample["s2c"].mode == expected.mode
            assert np.array_equal(np.asarray(sample["s2c"]), np.asarray(expected))
            # carried members pass through webdataset's own handlers
            assert sample["cls"] == int(key[-6:]) % 10
        else:
            assert sample["jpg"] == members[f"{key}.jpg"]  # a carried original stays bytes
    assert seen == Counter(dict.fromkeys(all_keys, 1))
    assert workers == {0, 1}


def test_the_decoder_gives_arrays_and_tensors_and_leaves_other_members(output_shards):
    import torch

    grey = _members(output_shards)["batch.v2/000001.s2c"]  # skimage's camera: a grey photo
    expected = s2c_pipeline.decode(grey)
    assert expected.mode == "L"

    as_array = S2CDecoder("numpy")(".s2c", grey)
    assert as_array.dtype == np.uint8
    assert np.array_equal(as_array, np.asarray(expected))
    handler = S2CDecoder("torch", mode="RGB")
    tensor = handler(".s2c", grey)
    assert tensor.dtype == torch.uint8
    assert tensor.shape == (3, expected.height, expected.width)
    assert np.array_equal(tensor.permute(1, 2, 0).numpy(), np.asarray(expected.convert("RGB")))
    assert handler(".json", b"{}") is None
    assert handler(".jpg", b"\xff\xd8") is None

    # picklable after use (a spawn-started DataLoader worker gets a copy and loads its own codec)
    copy = pickle.loads(pickle.dumps(handler))
    assert torch.equal(copy(".s2c", grey), tensor)
    with pytest.raises(ValueError, match="'pil', 'numpy' or 'torch'"):
        S2CDecoder("tensor")

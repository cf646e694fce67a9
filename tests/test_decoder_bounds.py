"""The decoder cannot be driven past its input: crafted streams with valid CRCs are refused cleanly,
every header check runs before any decoding work, and memory stays bounded by the tile size."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from s2c_pipeline.bitstream import BitstreamError, decode_container, encode_container
from s2c_pipeline.codec import create_model
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.codec.model import synthesis_margin
from s2c_pipeline.codec.rans import LatentStringError, _decode, ans, decode_symbols
from s2c_pipeline.imaging import load_image

FUZZ_SCRIPT = Path(__file__).parent / "fuzz" / "fuzz_decoder.py"


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def codec() -> ImageCodec:
    return ImageCodec.load(device="cpu")


@pytest.fixture(scope="module")
def stream(codec: ImageCodec, photos) -> bytes:
    _, astronaut = photos[0]
    return codec.encode(load_image(_png(astronaut.crop((160, 64, 288, 128)))), 2.0)


def resealed(data: bytes, **changes) -> bytes:
    """The file written again with some fields changed and every CRC valid: a crafted file."""
    f = decode_container(data)
    header_changes = {k: changes.pop(k) for k in list(changes) if k in ("width", "height", "colour")}
    return encode_container(
        dataclasses.replace(f, header=dataclasses.replace(f.header, **header_changes), **changes)
    )


def _with_string(data: bytes, k: int, string: bytes) -> bytes:
    strings = list(decode_container(data).latent_strings)
    strings[k] = string
    return resealed(data, latent_strings=tuple(strings))


def _refused_twice(codec: ImageCodec, data: bytes) -> str:
    messages = []
    for _ in range(2):
        with pytest.raises(BitstreamError) as caught:
            codec.decode(data, source="crafted.s2c")
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and "\n" not in messages[0] and messages[0].startswith("crafted.s2c: ")
    return messages[0]


def test_shortened_and_emptied_strings_with_valid_crcs_are_refused_every_time(codec, stream):
    strings = decode_container(stream).latent_strings
    for k, string in enumerate(strings):
        for cut in sorted({0, len(string) // 2, len(string) - 4}):
            if 0 <= cut < len(string):
                message = _refused_twice(codec, _with_string(stream, k, string[:cut]))
                assert "latent" in message, message


def test_random_strings_of_the_same_length_are_refused_or_decode_identically(codec, stream):
    rng = random.Random(30)
    strings = decode_container(stream).latent_strings
    refused = 0
    for trial in range(30):
        k = trial % len(strings)
        crafted = _with_string(stream, k, rng.randbytes(len(strings[k])))
        try:
            first = codec.decode(crafted).rgb
        except BitstreamError:
            refused += 1
            _refused_twice(codec, crafted)
            continue
        assert np.array_equal(first, codec.decode(crafted).rgb)
    assert refused >= 28  # an encoder's stream ends exactly, in its initial state: noise rarely does


def test_extra_bytes_after_the_last_symbol_are_refused(codec, stream):
    string = decode_container(stream).latent_strings[3]
    assert "left after its last symbol" in _refused_twice(codec, _with_string(stream, 3, string + bytes(4)))


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"colour": 0xE7}, "colour handling code 0xe7"),
        ({"alpha": b"x\x9c\x03\x00\x00\x00\x00\x01"}, "disagree"),
    ],
    ids=["unknown-colour-code", "alpha-without-its-flag"],
)
def test_header_checks_run_before_any_decoding_work(codec, stream, monkeypatch, change, reason):
    def no_work(*args, **kwargs):
        raise AssertionError("decoding started before every header check had run")

    crafted = resealed(stream, width=4096, height=4096, **change)
    monkeypatch.setattr(codec.model, "decompress_latents_batch", no_work)
    assert reason in _refused_twice(codec, crafted)


def test_alpha_plane_of_the_wrong_size_is_refused_before_decoding(codec, photos, monkeypatch):
    rgba = photos[0][1].crop((0, 0, 64, 48)).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((64, 48)))
    data = codec.encode(load_image(_png(rgba)), 2.0)
    monkeypatch.setattr(codec.model, "decompress_latents_batch", lambda *a, **k: pytest.fail("decoded"))
    assert "alpha plane inflates to" in _refused_twice(codec, resealed(data, width=60))


def test_tiny_stream_declaring_a_huge_image_is_refused_within_bounded_memory(stream, tmp_path):
    crafted = tmp_path / "huge.s2c"
    crafted.write_bytes(resealed(stream, width=5000, height=5000))
    assert crafted.stat().st_size < 1024
    script = textwrap.dedent(
        f"""
        import json, resource, sys
        from s2c_pipeline.bitstream import BitstreamError
        from s2c_pipeline.codec.image_codec import ImageCodec
        codec = ImageCodec.load(device="cpu")
        try:
            codec.decode(open({str(crafted)!r}, "rb").read(), source="huge.s2c")
            outcome = "decoded"
        except BitstreamError as exc:
            outcome = str(exc)
        # VmHWM: this process's own peak. ru_maxrss would also count the parent's peak, which a
        # vfork + exec carries over (a pytest process late in the suite holds 1.5 GB).
        hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
        peak_kb = int(hwm[0]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"outcome": outcome, "peak_mb": peak_kb / 1024}}))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["outcome"].startswith("huge.s2c: latent data does not decode"), result
    assert result["peak_mb"] < 1500, result  # before: past 8 GB, in 157 s


def _gaussian_tables(codec: ImageCodec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gc = next(m for m in codec.model.modules() if type(m).__name__ == "GaussianConditional")
    return gc._quantized_cdf.numpy(), gc._cdf_length.numpy(), gc._offset.numpy()


def test_bounded_decoder_gives_compressais_symbols_for_every_encoder_stream(codec):
    cdfs, sizes, offsets = _gaussian_tables(codec)
    rng = np.random.default_rng(7)
    n = 20_000
    indexes = rng.integers(0, cdfs.shape[0], n).astype(np.int32)
    symbols = np.round(rng.normal(0, 1, n) * (indexes + 1)).astype(np.int32)
    symbols[::97] = rng.integers(-(2**20), 2**20, symbols[::97].shape)  # bypass-coded values
    args = (indexes.tolist(), cdfs.tolist(), sizes.tolist(), offsets.tolist())
    string = ans.RansEncoder().encode_with_indexes(symbols.tolist(), *args)
    ours = decode_symbols(string, indexes, cdfs, sizes, offsets)
    assert np.array_equal(ours, symbols)
    assert np.array_equal(ours, ans.RansDecoder().decode_with_indexes(string, *args))
    # the same arithmetic without numba (the fallback where numba is not installed)
    plain = getattr(_decode, "py_func", _decode)
    out = np.empty(200, dtype=np.int64)
    short = ans.RansEncoder().encode_with_indexes(symbols[:200].tolist(), indexes[:200].tolist(), *args[1:])
    words = np.frombuffer(short, dtype="<u4").astype(np.int64)
    assert (
        plain(
            words,
            indexes[:200].astype(np.int64),
            cdfs.astype(np.int64),
            sizes.astype(np.int64),
            offsets.astype(np.int64),
            out,
        )[0]
        == 0
    )
    assert np.array_equal(out, symbols[:200])
    with pytest.raises(LatentStringError, match="ends at symbol"):
        decode_symbols(string[:-8], indexes, cdfs, sizes, offsets)


@pytest.mark.parametrize("name", ["s2c-conv-small", "s2c-attention-small"])
def test_tiled_synthesis_gives_the_pixels_of_one_pass(codec, name):
    model = codec.model if name == "s2c-conv-small" else create_model(name).double().eval()
    torch.manual_seed(0)
    y_hat = torch.randn(1, model.config.latent_channels, 12, 20, dtype=torch.float64) * 2
    whole = model.synthesize(y_hat, tile=64)
    tiled = model.synthesize(y_hat, tile=8)
    assert synthesis_margin(model.config) % 4 == 0
    assert torch.allclose(whole, tiled, atol=1e-9, rtol=0)
    assert torch.equal((whole * 255).round(), (tiled * 255).round())


def test_fuzz_script_smoke():
    run = subprocess.run(
        [sys.executable, str(FUZZ_SCRIPT), "--count", "300", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "0 uncaught exceptions, 0 decodes that differ" in run.stdout


def test_fuzz_script_fails_on_an_uncaught_exception(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("fuzz_decoder", FUZZ_SCRIPT)
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)

    def crash(codec, data):
        raise ValueError("decoder bug")

    monkeypatch.setattr(fuzz, "decode_outcome", crash)
    report = fuzz.run(10, workers=1, seed=0, max_rss_mb=1e9)
    assert report["failed"] and "decoder bug" in report["error"]


def test_overflowed_synthesis_values_become_defined_pixels():
    """float32 synthesis of a crafted stream's extreme latents can give inf or NaN; the pixels are
    then 255, 0 and 0, not whatever a NaN-to-integer cast happens to give."""
    import math

    import torch

    from s2c_pipeline.codec.image_codec import _to_uint8

    x = torch.tensor([math.inf, math.nan, -math.inf]).view(1, 3, 1, 1)
    assert _to_uint8(x).tolist() == [[[255, 0, 0]]]

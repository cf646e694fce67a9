"""The format-2 probability path is exact integer arithmetic: the same CDF indexes and latents under
any thread count, memory layout and batch size (and, by the same argument, on any device)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image

from s2c_pipeline.bitstream import BitstreamError, decode_container
from s2c_pipeline.codec import integer
from s2c_pipeline.codec.image_codec import ImageCodec, _pad, _to_tensor
from s2c_pipeline.codec.integer import ACT_LIMIT, EXACT_LIMIT, IntegerConv2d, IntegerNet, UnsupportedLayer
from s2c_pipeline.codec.model import FLOAT64_PATH, INTEGER_PATH, LatentCode
from s2c_pipeline.codec.zoo import create_model
from s2c_pipeline.imaging import load_image


@pytest.fixture(scope="module")
def codec() -> ImageCodec:
    return ImageCodec.load(device="cpu")


@pytest.fixture(scope="module")
def photo():
    return load_image(Image.fromarray(skimage.data.astronaut()).resize((256, 192), Image.LANCZOS))


@pytest.fixture
def threads():
    previous = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(previous)


def _exact_conv(conv: IntegerConv2d, x: torch.Tensor) -> torch.Tensor:
    """The same layer computed in Python integers (int64 has headroom: |acc| < 2**50)."""
    assert conv.groups == 1
    k = conv.weight.shape[-1]
    cols = F.unfold(x, k, padding=conv.padding, stride=conv.stride).long()  # exact: |x| <= 2**22
    acc = torch.einsum("ok,bkl->bol", conv.weight.flatten(1).long(), cols) + conv.bias.long()[None, :, None]
    shift = (-torch.log2(conv.inverse_scale.flatten())).long()
    out = torch.div(acc, (2**shift)[None, :, None], rounding_mode="floor").clamp(-ACT_LIMIT, ACT_LIMIT)
    h = (x.shape[2] + 2 * conv.padding - k) // conv.stride + 1
    return out.reshape(x.shape[0], -1, h, out.shape[-1] // h).double()


def test_every_layer_of_the_bundled_model_is_bounded_below_2_50(codec):
    bounds = [c.bound for net in codec.model.integer_coder().nets().values() for c in net.convs]
    assert len(bounds) == 3 + 3 * 4 + 5 + 3 * 5  # h_s, channel contexts, checkerboard, parameters
    assert max(bounds) < EXACT_LIMIT and min(bounds) > 2**40  # real work, not a degenerate layer


def test_integer_conv_equals_int64_arithmetic_even_at_its_worst_case_input(codec):
    conv = codec.model.integer_coder().channel_context[4].convs[0]
    torch.manual_seed(0)
    x = torch.randint(-ACT_LIMIT, ACT_LIMIT + 1, (2, conv.weight.shape[1], 12, 16)).double()
    # The input that reaches the bound for the layer's largest-L1 channel at one position.
    worst = int(conv.weight.abs().flatten(1).sum(1).argmax())
    x[1, :, 4:9, 4:9] = torch.sign(conv.weight[worst]) * ACT_LIMIT
    acc = F.conv2d(x, conv.weight, conv.bias, padding=conv.padding)
    assert acc.abs().max() > 2**45  # the test reaches the range where float32 would be far from exact
    assert torch.equal(conv(x), _exact_conv(conv, x))


def test_row_bands_sum_the_same_integers_as_one_convolution(codec, monkeypatch):
    """CPU convolutions run a band of output rows at a time when the im2col matrix would be large
    (``integer.IM2COL_BYTES``); small budgets force bands of one row and of five (13 = 5 + 5 + 3)."""
    conv = codec.model.integer_coder().channel_context[4].convs[0]
    assert conv.weight.shape[-1] == 5
    torch.manual_seed(2)
    x = torch.randint(-ACT_LIMIT, ACT_LIMIT + 1, (2, conv.weight.shape[1], 13, 20)).double()
    exact = _exact_conv(conv, x)
    assert torch.equal(conv(x), exact)  # one call: the matrix is under the default budget
    per_row = 2 * conv.weight.shape[1] * 25 * (20 + 4) * 8
    calls = []
    original = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda *args: calls.append(args[0].shape[2]) or original(*args))
    for budget, band_inputs in ((1, [5] * 13), (5 * per_row, [9, 9, 7])):  # input rows: band + 4
        calls.clear()
        monkeypatch.setattr(integer, "IM2COL_BYTES", budget)
        assert torch.equal(conv(x), exact)
        assert calls == band_inputs


def test_nets_give_identical_integers_for_threads_layout_and_batch(codec, threads):
    coder = codec.model.integer_coder()
    torch.manual_seed(1)
    for name, net in coder.nets().items():
        x = torch.randint(-(2**16), 2**16, (4, net.convs[0].weight.shape[1], 16, 24)).double()
        threads(1)
        reference = net(x)
        threads(2)
        assert torch.equal(net(x), reference), name
        assert torch.equal(net(x.contiguous(memory_format=torch.channels_last)), reference), name
        assert torch.equal(torch.cat([net(x[i : i + 1]) for i in range(4)]), reference), name


def test_float_networks_are_not_exact_where_the_integer_ones_are(codec, threads):
    """The counter-example: the same layer in float32 depends on the summation order."""
    net = codec.model.integer_coder().channel_context[4]
    conv = torch.nn.Conv2d(128, 64, 5, padding=2).double()
    x = torch.randn(4, 128, 16, 24, dtype=torch.float64) * 1000
    outs = []
    for layout in (torch.contiguous_format, torch.channels_last):
        outs.append(conv.float()(x.float().contiguous(memory_format=layout)))
    assert not torch.equal(outs[0], outs[1])  # float32: the layout changes the low bits
    assert torch.equal(net(x.round()), net(x.round().contiguous(memory_format=torch.channels_last)))


def test_stream_decodes_to_the_encoders_latents_under_1_and_2_threads(codec, photo, threads):
    x = _pad(_to_tensor(photo.rgb, torch.device("cpu")))
    code = codec.model.compress_latents(x, 4.0)
    assert code.path == INTEGER_PATH
    for n in (1, 2):
        threads(n)
        assert torch.equal(codec.model.decode_y(code), code.y_hat)
    # the latents are multiples of 2**-12 (fixed point), not float noise
    assert torch.equal(code.y_hat * 4096, (code.y_hat * 4096).round())


def test_integer_path_costs_little_rate_and_no_quality(codec, photo):
    sizes, psnrs = {}, {}
    for version in (1, 2):
        data = codec.encode(photo, 3.0, format_version=version)
        assert decode_container(data).header.format_version == version
        decoded = codec.decode(data)
        sizes[version] = len(data)
        mse = np.mean((decoded.rgb.astype(float) - photo.rgb.astype(float)) ** 2)
        psnrs[version] = 10 * np.log10(255**2 / mse)
    assert abs(sizes[2] / sizes[1] - 1) < 0.02
    assert abs(psnrs[2] - psnrs[1]) < 0.05


def test_float32_synthesis_is_within_one_level_of_float64(codec, photo):
    x = _pad(_to_tensor(photo.rgb, torch.device("cpu")))
    y = codec.model.decode_y(codec.model.compress_latents(x, 6.0)) * codec.model.gains(6.0)[1][:, None, None]
    fast = (codec.model.synthesize(y.float(), dtype=torch.float32) * 255).round()
    exact = (codec.model.synthesize(y, dtype=torch.float64) * 255).round()
    assert (fast - exact).abs().max() <= 1


def test_a_truncated_format_2_string_is_refused(codec, photo):
    x = _pad(_to_tensor(photo.rgb, torch.device("cpu")))
    code = codec.model.compress_latents(x, 3.0)
    strings = list(code.strings)
    strings[5] = strings[5][:-4]
    with pytest.raises(ValueError, match="latent string"):
        codec.model.decode_y(
            LatentCode(tuple(strings), code.padded_height, code.padded_width, path=INTEGER_PATH)
        )
    data = bytearray(codec.encode(photo, 3.0))
    data[-5] ^= 0xFF  # damage the last string's bytes, then the CRC catches it
    with pytest.raises(BitstreamError):
        codec.decode(bytes(data))


def test_a_model_without_an_exact_counterpart_keeps_format_1(monkeypatch):
    """...and learns that once: later encodes do not rebuild the integer coder to fail again."""
    from s2c_pipeline.codec import model as model_module

    builds = []
    real = model_module.IntegerEntropyCoder
    monkeypatch.setattr(model_module, "IntegerEntropyCoder", lambda *a: builds.append(1) or real(*a))
    torch.manual_seed(0)
    model = create_model("s2c-conv-small").eval()
    hyper = model.latent_codec.latent_codec["hyper"]
    hyper.h_s = torch.nn.Sequential(*hyper.h_s, torch.nn.Tanh())  # no exact counterpart
    model.update()
    with pytest.raises(UnsupportedLayer, match="Tanh"):
        IntegerNet(hyper.h_s)
    assert not model.supports_integer_path and model.default_path() == FLOAT64_PATH
    code = model.compress_latents(torch.rand(1, 3, 64, 64), 2.0)
    assert code.path == FLOAT64_PATH and torch.equal(model.decode_y(code), code.y_hat)
    assert model.default_path() == FLOAT64_PATH and len(builds) == 1


@pytest.mark.parametrize("name", ["s2c-conv-small", "s2c-hybrid-small"])
def test_s2c_blocks_in_h_s_are_exact_and_close_to_the_float_network(name, threads):
    """The paper-size configs have S2C blocks in h_s (hyper_depth=1): LayerNorm, GELU or GEGLU,
    LeakyReLU. Their fixed-point twins give identical integers for any threads, layout and batch,
    and stay close to the float network they replace."""
    torch.manual_seed(0)
    model = create_model(name, hyper_depth=1).eval()
    model.update()
    h_s = model.latent_codec.latent_codec["hyper"].h_s
    net = IntegerNet(h_s)
    z = torch.randint(-8, 9, (4, model.config.hyper_channels, 6, 5)).double()
    threads(1)
    reference = net(z * 4096)
    threads(2)
    assert torch.equal(net(z * 4096), reference)
    assert torch.equal(net((z * 4096).contiguous(memory_format=torch.channels_last)), reference)
    assert torch.equal(torch.cat([net(z[i : i + 1] * 4096) for i in range(4)]), reference)
    expected = h_s.double()(z)
    assert (reference / 4096 - expected).abs().max() < 0.01 * expected.abs().max()
    code = model.compress_latents(torch.rand(1, 3, 128, 128), 3.0)
    assert code.path == INTEGER_PATH and torch.equal(model.decode_y(code), code.y_hat)


def test_decode_check_accepts_pixel_differences_only_within_the_promise(codec, photo):
    """What decompress/verify do when the pixel hash differs (as a GPU's float32 g_s may)."""
    from dataclasses import replace

    from s2c_pipeline.archive.pairing import RowRef
    from s2c_pipeline.pipeline.decompress.decode_task import DecodeFailed, _check_within_promise

    data = codec.encode(photo, 3.0)
    image = codec.decode(data)
    ref = RowRef(0, "k", "ok", "k.s2c", 0, len(data), "0" * 64, (), latents_sha256=image.latents_sha256)

    def check(image, ref) -> None:
        _check_within_promise(codec, data, "k.s2c", 10**8, image, ref, "f" * 64)

    check(image, ref)  # another machine's pixel hash, same latents, pixels within one level
    moved = image.rgb.copy()
    moved[0, 0] = np.where(moved[0, 0] < 255, moved[0, 0] + 1, 254)
    check(replace(image, rgb=moved), ref)  # one level off: still the promise
    moved[5, 5] = (moved[5, 5].astype(int) + 128) % 256
    with pytest.raises(DecodeFailed, match="levels from a float64 synthesis"):
        check(replace(image, rgb=moved), ref)
    with pytest.raises(DecodeFailed, match="so do the decoded latents"):
        check(image, replace(ref, latents_sha256="1" * 64))
    with pytest.raises(DecodeFailed, match="bit-exactly"):
        check(image, replace(ref, latents_sha256=None))  # a row written before format 2
    old = codec.decode(codec.encode(photo, 3.0, format_version=1))
    with pytest.raises(DecodeFailed, match="bit-exactly"):
        check(old, replace(ref, latents_sha256=old.latents_sha256))  # format 1: pixels must match

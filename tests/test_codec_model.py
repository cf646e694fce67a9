"""The model family: blocks, registry, and bit-exact latent round trips at every quality."""

import subprocess
import sys

import pytest
import torch

from s2c_pipeline.codec.blocks import S2CBlock, WindowAttention
from s2c_pipeline.codec.zoo import create_model, get_config, model_names


@pytest.mark.parametrize("spatial", ["identity", "sepconv", "winattn"])
@pytest.mark.parametrize("ffn", ["mlp", "gated"])
def test_block_preserves_shape_and_is_residual(spatial, ffn):
    block = S2CBlock(64, spatial=spatial, ffn=ffn, ffn_ratio=2.0)
    x = torch.randn(2, 64, 13, 21)  # not a multiple of the window: attention pads and crops
    y = block(x)
    assert y.shape == x.shape
    assert not torch.allclose(y, x)  # the block changes its input (it is not a no-op)


def test_window_attention_is_local_to_windows():
    attn = WindowAttention(32, window=8).eval()
    x = torch.randn(1, 32, 16, 16)
    y1 = attn(x)
    x2 = x.clone()
    x2[:, :, 8:, 8:] += 5.0  # change only the bottom-right window
    y2 = attn(x2)
    assert torch.allclose(y1[:, :, :8, :8], y2[:, :, :8, :8], atol=1e-6)
    assert not torch.allclose(y1[:, :, 8:, 8:], y2[:, :, 8:, 8:])


def test_registry_names_and_overrides():
    names = model_names()
    for family in ("s2c-identity", "s2c-conv", "s2c-attention", "s2c-hybrid"):
        assert family in names and f"{family}-small" in names
    sizes = [
        sum(p.numel() for p in create_model(f"s2c-conv{size}").parameters())
        for size in ("-small", "-medium", "")
    ]
    assert sizes == sorted(sizes)  # small < medium < the paper's size
    cfg = get_config("s2c-hybrid")
    assert cfg.spatial == ("sepconv", "winattn", "winattn") and cfg.ffn == "gated"
    assert cfg.widths == (128, 192, 256) and cfg.latent_channels == 320 and cfg.hyper_channels == 192
    assert cfg.groups == (16, 16, 32, 64, 192)
    small = create_model("s2c-conv-small", lambdas=(0.01, 0.02))
    assert small.config.num_qualities == 2
    with pytest.raises(KeyError, match="unknown model"):
        create_model("s2c-nope")


def test_unknown_spatial_op_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown spatial operator"):
        create_model("s2c-conv-small", spatial=("sepconv", "conv", "sepconv"))


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    model = create_model("s2c-hybrid-small").eval()
    model.update()
    return model


def test_latents_round_trip_bit_exactly_at_every_quality(small_model):
    torch.manual_seed(1)
    x = torch.rand(1, 3, 128, 192)
    for q in range(1, small_model.config.num_qualities + 1):
        code = small_model.compress_latents(x, float(q))
        decoded = small_model.decode_y(code)
        assert torch.equal(decoded, code.y_hat), f"quality {q}: decoder rebuilt different latents"
    # a fractional quality interpolates the gains and still round-trips
    code = small_model.compress_latents(x, 2.5)
    assert torch.equal(small_model.decode_y(code), code.y_hat)


def test_quality_changes_rate(small_model):
    x = torch.rand(1, 3, 128, 128)
    sizes = [sum(map(len, small_model.compress_latents(x, float(q)).strings)) for q in (1, 6)]
    assert sizes[0] < sizes[1]


def test_quality_outside_range_is_refused(small_model):
    with pytest.raises(ValueError, match=r"outside 1\.\.6"):
        small_model.gains(7.0)


def test_unpadded_input_is_refused(small_model):
    with pytest.raises(ValueError, match="multiples of 64"):
        small_model.compress_latents(torch.rand(1, 3, 100, 128), 1.0)


_THREADS_SCRIPT = """
import hashlib, sys, torch
import s2c_pipeline
from s2c_pipeline.codec.zoo import create_model
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
m = create_model("s2c-conv-small").eval(); m.update()
torch.manual_seed(1)
x = torch.rand(1, 3, 192, 256)
code = m.compress_latents(x, 3.0)
y = m.decode_y(code)
assert torch.equal(y, code.y_hat)
print(hashlib.sha256(b"".join(code.strings)).hexdigest(), hashlib.sha256(y.numpy().tobytes()).hexdigest())
"""


def test_coding_is_identical_with_one_and_two_threads():
    outputs = [
        subprocess.run(
            [sys.executable, "-c", _THREADS_SCRIPT, str(n)], capture_output=True, text=True, check=True
        ).stdout
        for n in (1, 2)
    ]
    assert outputs[0] == outputs[1]

"""The banded float32 transforms on the CPU (``codec.banded``): format 2's g_s gives the same pixels
whatever the thread count, within one level of the float64 module path, for every kind of block;
the encoder's g_a gives the module's latents up to rounding."""

from __future__ import annotations

import pytest
import torch

from s2c_pipeline.codec import banded
from s2c_pipeline.codec.banded import BandedTransform
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.codec.zoo import create_model


@pytest.fixture
def threads():
    previous = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(previous)


def _model(name: str):
    if name == "s2c-conv-small":
        return ImageCodec.load(device="cpu").model  # the bundled weights
    torch.manual_seed(0)
    return create_model(name).eval()


# separable conv + MLP (bundled), window attention + gated FFN, attention + MLP, no spatial operator
@pytest.mark.parametrize(
    "name", ["s2c-conv-small", "s2c-hybrid-small", "s2c-attention-small", "s2c-identity-small"]
)
def test_pixels_do_not_depend_on_the_thread_count_and_stay_within_one_level(name, threads, monkeypatch):
    model = _model(name)
    # Bands of 256 positions: several bands a stage, and attention windows cut by the image's edge
    # (13 x 22 latents: 26 x 44 at the first stage, not a multiple of the 8-position window).
    monkeypatch.setattr(banded, "BAND_POSITIONS", 256)
    torch.manual_seed(1)
    y_hat = torch.randn(1, model.config.latent_channels, 13, 22) * 3
    levels = {}
    for n in (1, 2):
        threads(n)
        levels[n] = model.synthesize(y_hat, dtype=torch.float32) * 255
    assert torch.equal(levels[1], levels[2])
    reference = (model.synthesize(y_hat.double(), dtype=torch.float64) * 255).round()
    difference = (levels[1].round() - reference).abs()
    assert difference.max() <= 1
    assert difference.mean() < 0.05  # near-exact, not merely bounded


def test_a_batch_gets_the_pixels_of_lone_decodes():
    model = _model("s2c-hybrid-small")
    torch.manual_seed(2)
    y_hat = torch.randn(3, model.config.latent_channels, 8, 12) * 3
    batch = model.synthesize(y_hat, dtype=torch.float32)
    for i in range(3):
        assert torch.equal(batch[i : i + 1], model.synthesize(y_hat[i : i + 1], dtype=torch.float32))


def test_only_a_lone_float32_cpu_tensor_is_accepted():
    synthesis = BandedTransform(_model("s2c-conv-small")._decoding_synthesis(torch.float32))
    with pytest.raises(ValueError, match="one float32 CPU tensor"):
        synthesis(torch.zeros(2, 192, 4, 4))
    with pytest.raises(ValueError, match="one float32 CPU tensor"):
        synthesis(torch.zeros(1, 192, 4, 4, dtype=torch.float64))


def test_tiles_give_the_pixels_of_one_pass_within_float32_rounding():
    model = _model("s2c-hybrid-small")
    torch.manual_seed(3)
    y_hat = torch.randn(1, model.config.latent_channels, 12, 20) * 3
    whole = (model.synthesize(y_hat, dtype=torch.float32) * 255).round()
    tiled = (model.synthesize(y_hat, tile=8, dtype=torch.float32) * 255).round()
    assert (whole - tiled).abs().max() <= 1
    assert ((whole - tiled).abs() > 0).float().mean() < 1e-3


@pytest.mark.parametrize(
    "name", ["s2c-conv-small", "s2c-hybrid-small", "s2c-attention-small", "s2c-identity-small"]
)
def test_the_encoders_banded_analysis_gives_the_modules_latents_up_to_rounding(name, monkeypatch):
    model = _model(name)
    monkeypatch.setattr(banded, "BAND_POSITIONS", 256)
    torch.manual_seed(4)
    x = torch.rand(2, 3, 128, 192)
    with torch.no_grad():
        module, ours = model.g_a(x), model._analysis(x)
    assert ours.shape == module.shape
    assert (ours - module).abs().max() < 1e-5 * module.abs().max()
    with torch.enable_grad():  # training keeps the module, whose graph the loss needs
        assert model._analysis(x).grad_fn is not None

"""Registry of named model configurations, and ``create_model``."""

from __future__ import annotations

import dataclasses

from s2c_pipeline.codec.config import ModelConfig
from s2c_pipeline.codec.model import S2CFormer

_PAPER = {"widths": (128, 192, 256), "depths": (3, 3, 3), "latent_channels": 320, "hyper_channels": 192}
# Sized by measurement to train on 2 CPU cores and ship in git (see docs/benchmarks.md).
_SMALL = {
    "widths": (64, 96, 128),
    "depths": (1, 1, 1),
    "latent_channels": 192,
    "hyper_channels": 96,
    "hyper_depth": 0,
    "context_widths": (64, 64),
    "ffn_ratio": 2.0,
}
# One size up, for the capacity comparison of issue 18 (benchmarks/capacity.py, docs/weights.md):
# 1.5x the widths, two blocks a stage and a wider latent, still well under the paper's size. Only
# the convolutional family: window attention needs widths divisible by its 32-channel heads.
_MEDIUM = {
    **_SMALL,
    "widths": (96, 144, 192),
    "depths": (2, 2, 2),
    "latent_channels": 256,
    "hyper_channels": 128,
    "context_widths": (96, 96),
}

_VARIANTS = {
    "s2c-identity": {"spatial": ("identity",) * 3},
    "s2c-conv": {"spatial": ("sepconv",) * 3},
    "s2c-attention": {"spatial": ("winattn",) * 3},
    # Stage-wise mix: convolution at the high-resolution stage, attention at the low ones.
    "s2c-hybrid": {"spatial": ("sepconv", "winattn", "winattn"), "ffn": "gated"},
}

MODEL_CONFIGS: dict[str, ModelConfig] = {}
for _family, _fields in _VARIANTS.items():
    MODEL_CONFIGS[_family] = ModelConfig(name=_family, **_PAPER, **_fields)
    MODEL_CONFIGS[f"{_family}-small"] = ModelConfig(name=f"{_family}-small", **_SMALL, **_fields)


MODEL_CONFIGS["s2c-conv-medium"] = ModelConfig(name="s2c-conv-medium", **_MEDIUM, **_VARIANTS["s2c-conv"])


def model_names() -> list[str]:
    return sorted(MODEL_CONFIGS)


def get_config(name: str, **overrides: object) -> ModelConfig:
    try:
        config = MODEL_CONFIGS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(model_names())}") from None
    return dataclasses.replace(config, **overrides) if overrides else config


def create_model(name: str, **overrides: object) -> S2CFormer:
    """A randomly initialised model of a named config; ``overrides`` replace config fields."""
    return S2CFormer(get_config(name, **overrides))

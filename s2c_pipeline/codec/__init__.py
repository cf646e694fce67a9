"""The S2CFormer codec family: blocks, transforms, entropy model, zoo, weights."""

from __future__ import annotations

from s2c_pipeline import _compat  # noqa: F401  (imports compressai, torchvision or not: _compat.py)
from s2c_pipeline.codec.config import ModelConfig
from s2c_pipeline.codec.model import S2CFormer
from s2c_pipeline.codec.weights import bundled_weights
from s2c_pipeline.codec.zoo import MODEL_CONFIGS, create_model, get_config, model_names

__all__ = ["MODEL_CONFIGS", "ModelConfig", "S2CFormer", "create_model", "describe_models", "get_config", "model_names"]


def describe_models() -> list[dict]:
    """One row per zoo entry: parameter count and the bundled checkpoint, if any."""
    bundled = {e.model_name: e for e in bundled_weights() if e.current}
    rows = []
    for name in model_names():
        params = sum(p.numel() for p in create_model(name).parameters())
        entry = bundled.get(name)
        rows.append(
            {
                "name": name,
                "params": params,
                "params_m": params / 1e6,
                "bundled_qualities": entry.qualities if entry else None,
                "weights_sha256": entry.sha256 if entry else None,
                "default": bool(entry and entry.default),
            }
        )
    return rows

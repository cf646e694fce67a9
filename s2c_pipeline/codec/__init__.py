"""The S2CFormer codec family: blocks, transforms, entropy model, zoo, weights."""

from __future__ import annotations

from s2c_pipeline import _compat  # noqa: F401  (imports compressai, torchvision or not: _compat.py)
from s2c_pipeline.codec.config import ModelConfig
from s2c_pipeline.codec.model import S2CFormer
from s2c_pipeline.codec.zoo import MODEL_CONFIGS, create_model, get_config, model_names

__all__ = ["MODEL_CONFIGS", "ModelConfig", "S2CFormer", "create_model", "get_config", "model_names"]

"""s2c-pipeline: distributed batch image compression with S2CFormer learned codecs."""

from s2c_pipeline import _compat  # noqa: F401  (must run before anything imports compressai)

__version__ = "0.1.0"

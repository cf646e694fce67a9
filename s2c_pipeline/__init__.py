"""s2c-pipeline: distributed batch image compression with S2CFormer learned codecs.

As a library: ``encode`` (image to ``.s2c`` bytes), ``decode`` (back to a PIL image) and ``Codec``
(one loaded model, reused), from ``s2c_pipeline.api``; ``s2c_pipeline.webdataset_stage`` reads
output shards in a PyTorch DataLoader (docs/library.md). Importing the package stays cheap: torch
and compressai load on first use.
"""

from s2c_pipeline.api import Codec, decode, encode

__all__ = ["Codec", "__version__", "decode", "encode"]
__version__ = "0.1.0"

"""The `.s2c` container: one compressed image, its model id and carried metadata, with checksums.

The format is specified in `docs/bitstream.md`. Write with `encode_container`, read with
`decode_container`; a reader needs to catch only `BitstreamError`.
"""

from s2c_pipeline.bitstream.errors import BitstreamError
from s2c_pipeline.bitstream.format import FORMAT_VERSION, MAGIC, S2CFile, S2CHeader
from s2c_pipeline.bitstream.parser import decode_container
from s2c_pipeline.bitstream.summary import header_to_dict
from s2c_pipeline.bitstream.writer import encode_container

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "BitstreamError",
    "S2CFile",
    "S2CHeader",
    "decode_container",
    "encode_container",
    "header_to_dict",
]

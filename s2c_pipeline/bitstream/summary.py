"""A JSON-ready description of an `.s2c` file, for `s2c info` and for logs."""

from __future__ import annotations

import zlib

from s2c_pipeline.bitstream.format import S2CFile
from s2c_pipeline.bitstream.writer import encode_container


def header_to_dict(f: S2CFile) -> dict:
    """Header fields, each latent string's size and CRC32 (8 hex digits), chunk sizes, total bytes.

    total_bytes is the size of the file as this version writes it, and bits_per_pixel counts those
    bytes over the original width x height (container overhead included, unlike CompressAI's bpp).
    """
    h = f.header
    total = len(encode_container(f))
    return {
        "format_version": h.format_version,
        "model_name": h.model_name,
        "weights_id": h.weights_id,
        "model_id": h.model_id,
        "quality": h.quality,
        "width": h.width,
        "height": h.height,
        "source_mode": h.source_mode,
        "colour": h.colour,
        "latent_strings": [{"bytes": len(s), "crc32": f"{zlib.crc32(s):08x}"} for s in f.latent_strings],
        "chunks": {tag.decode("ascii"): {"bytes": len(data)} for tag, data in f.chunks()},
        "latent_bytes": sum(len(s) for s in f.latent_strings),
        "total_bytes": total,
        "bits_per_pixel": total * 8 / (h.width * h.height),
    }

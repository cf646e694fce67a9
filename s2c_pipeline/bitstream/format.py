"""Constants and records of the `.s2c` container, versions 1 and 2 (the spec is `docs/bitstream.md`).

Both versions have the same layout; the version tells the codec which decoder path the latent
strings need (1: the float64 probability path, 2: the exact fixed-point one).

The bounds live here once: the records check them on construction (so the codec cannot build a file
the parser would refuse), and the parser checks the same bounds by building the same records.
"""

from __future__ import annotations

import math
import numbers
import re
import struct
from dataclasses import dataclass

MAGIC = b"\x89S2C\r\n\x1a\n"
FORMAT_VERSION = 2
"""The version writers write unless told otherwise."""
READABLE_VERSIONS = (1, 2)
"""Every format version this code decodes. Readers keep all old versions forever (spec section 7)."""

PREFIX = struct.Struct(">8sHI")  # magic, format_version, header_length: fixed in every version
CRC = struct.Struct(">I")
FIXED_HEADER = struct.Struct(">HIIB8s")  # quality_q8, width, height, colour, weights_id
STRING_ENTRY = struct.Struct(">II")  # length, crc32
CHUNK_ENTRY = struct.Struct(">4sII")  # tag, length, crc32
COUNT = struct.Struct(">B")  # the u8 before each token and table

U32_MAX = 2**32 - 1
MAX_PIXELS = 2**34
QUALITY_SCALE = 256
MAX_MODEL_NAME = 64
MAX_SOURCE_MODE = 16
MAX_STRINGS = 64
MAX_CHUNKS = 16


def header_length(name_len: int, mode_len: int, n_strings: int, n_chunks: int) -> int:
    """Size in bytes of a header with these variable parts (spec section 3; versions 1 and 2)."""
    return (
        FIXED_HEADER.size
        + COUNT.size * 4
        + name_len
        + mode_len
        + n_strings * STRING_ENTRY.size
        + n_chunks * CHUNK_ENTRY.size
    )


MIN_HEADER_LENGTH = header_length(1, 1, 1, 0)
MAX_HEADER_LENGTH = header_length(MAX_MODEL_NAME, MAX_SOURCE_MODE, MAX_STRINGS, MAX_CHUNKS)

CHUNK_TAGS = {"icc_profile": b"iccp", "exif": b"exif", "alpha": b"ALPH"}
"""S2CFile field -> chunk tag, in the order writers emit them."""

_TOKEN = re.compile(r"[\x21-\x7e]+")
_WEIGHTS_ID = re.compile(r"[0-9a-f]{16}")
_TAG = re.compile(rb"[A-Za-z]{4}")


def is_valid_tag(tag: bytes) -> bool:
    return _TAG.fullmatch(tag) is not None


def is_critical_tag(tag: bytes) -> bool:
    """Bit 5 of the first byte clear (upper case) = critical: an unknown one must be refused."""
    return not tag[0] & 0x20


def _check_token(name: str, value: object, max_len: int) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a str, got {type(value).__name__}")
    if not 1 <= len(value) <= max_len:
        raise ValueError(f"{name} {value!r} must be 1..{max_len} characters, got {len(value)}")
    if _TOKEN.fullmatch(value) is None:
        raise ValueError(f"{name} {value!r} must be printable ASCII without spaces (0x21..0x7e)")


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} {value} is out of range {low}..{high}")
    return int(value)


def _as_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueError(f"{name} must be bytes, got {type(value).__name__}")
    data = bytes(value)
    if len(data) > U32_MAX:
        raise ValueError(f"{name} is {len(data)} bytes, more than a u32 length can hold")
    return data


@dataclass(frozen=True)
class S2CHeader:
    """What a decoder needs besides the latent strings. Raises ValueError if any field is invalid.

    quality is a multiple of 1/256 with 0 < quality < 256 (stored as u16 quality_q8); its meaning
    belongs to the model config. colour is the imaging module's colour-handling code, opaque here.
    weights_id is the first 8 bytes of the weights' sha256 as 16 lowercase hex characters.
    """

    model_name: str
    weights_id: str
    quality: float
    width: int
    height: int
    source_mode: str
    colour: int
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        _check_token("model_name", self.model_name, MAX_MODEL_NAME)
        if not isinstance(self.weights_id, str) or _WEIGHTS_ID.fullmatch(self.weights_id) is None:
            raise ValueError(f"weights_id {self.weights_id!r} must be 16 lowercase hex characters")
        object.__setattr__(self, "quality", _check_quality(self.quality))
        width = _check_int("width", self.width, 1, U32_MAX)
        height = _check_int("height", self.height, 1, U32_MAX)
        if width * height > MAX_PIXELS:
            raise ValueError(f"{width}x{height} is {width * height} pixels, more than the 2**34 limit")
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "height", height)
        _check_token("source_mode", self.source_mode, MAX_SOURCE_MODE)
        object.__setattr__(self, "colour", _check_int("colour", self.colour, 0, 255))
        version = _check_int("format_version", self.format_version, 1, 2**16 - 1)
        if version not in READABLE_VERSIONS:
            raise ValueError(f"format_version {version} is not one of {READABLE_VERSIONS}")
        object.__setattr__(self, "format_version", version)

    @property
    def quality_q8(self) -> int:
        """The quality as stored: an integer number of 1/256 steps."""
        return int(self.quality * QUALITY_SCALE)

    @property
    def model_id(self) -> str:
        """``name@weights_id``: how people and manifests refer to the model that made the file."""
        return f"{self.model_name}@{self.weights_id}"


def _check_quality(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"quality must be a number, got {type(value).__name__}")
    steps = float(value) * QUALITY_SCALE
    if not math.isfinite(steps) or not steps.is_integer() or not 1 <= steps < 2**16:
        raise ValueError(f"quality {value!r} must be a multiple of 1/{QUALITY_SCALE} with 0 < quality < 256")
    return float(value)


@dataclass(frozen=True)
class S2CFile:
    """One `.s2c` file: header, latent strings in the model's order, and carried metadata.

    Raises ValueError if any part is invalid. latent_strings may be given as a list; it is stored as a
    tuple of bytes. An empty latent string is legal and kept; an empty chunk carries nothing and is
    stored as None (absent). icc_profile, exif and alpha are opaque bytes owned by the imaging module.
    """

    header: S2CHeader
    latent_strings: tuple[bytes, ...]
    icc_profile: bytes | None = None
    exif: bytes | None = None
    alpha: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.header, S2CHeader):
            raise ValueError(f"header must be an S2CHeader, got {type(self.header).__name__}")
        if not isinstance(self.latent_strings, (tuple, list)):
            raise ValueError(
                f"latent_strings must be a tuple of bytes, got {type(self.latent_strings).__name__}"
            )
        if not 1 <= len(self.latent_strings) <= MAX_STRINGS:
            raise ValueError(f"need 1..{MAX_STRINGS} latent strings, got {len(self.latent_strings)}")
        strings = tuple(_as_bytes(f"latent string {i}", s) for i, s in enumerate(self.latent_strings))
        object.__setattr__(self, "latent_strings", strings)
        for field in CHUNK_TAGS:
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, _as_bytes(field, value) or None)

    def chunks(self) -> tuple[tuple[bytes, bytes], ...]:
        """(tag, data) of each chunk present, in the order writers emit them."""
        return tuple(
            (tag, getattr(self, field))
            for field, tag in CHUNK_TAGS.items()
            if getattr(self, field) is not None
        )

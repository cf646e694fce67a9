"""The `.s2c` container: round trips, the spec's worked example, and every refusal of spec section 6.

Hostile files are built byte by byte with `craft`, which follows docs/bitstream.md directly rather
than calling the writer, so a writer and parser that shared a mistake would still be caught.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from s2c_pipeline.bitstream import (
    FORMAT_VERSION,
    MAGIC,
    BitstreamError,
    S2CFile,
    S2CHeader,
    decode_container,
    encode_container,
    header_to_dict,
)

SPEC = Path(__file__).resolve().parents[1] / "docs" / "bitstream.md"
SRC = "shard-00012.tar/0042.s2c"
HEADER = S2CHeader("s2c-hybrid-small", "0123456789abcdef", 3.5, 640, 480, "RGB", 2)


def small_file(**chunks: bytes) -> S2CFile:
    return S2CFile(HEADER, (b"z-side", b"", b"y-main-string"), **chunks)


def craft(
    *,
    version: int = 1,
    quality_q8: int = 896,
    width: int = 4,
    height: int = 3,
    colour: int = 0,
    weights: bytes = bytes.fromhex("0123456789abcdef"),
    name: bytes = b"s2c-tiny",
    mode: bytes = b"RGB",
    strings: tuple[bytes, ...] = (b"abc",),
    chunks: tuple[tuple[bytes, bytes], ...] = (),
    string_table: bytes | None = None,
    counts: dict[str, int] | None = None,
    header_extra: bytes = b"",
    trailer: bytes = b"",
) -> bytes:
    """A file laid out by hand from spec section 2-4, with a correct header CRC unless tables lie."""
    counts = {"name": len(name), "mode": len(mode), "strings": len(strings), "chunks": len(chunks)} | (
        counts or {}
    )
    if string_table is None:
        string_table = b"".join(struct.pack(">II", len(s), zlib.crc32(s)) for s in strings)
    header = (
        struct.pack(">HIIB", quality_q8, width, height, colour)
        + weights
        + bytes([counts["name"]])
        + name
        + bytes([counts["mode"]])
        + mode
        + bytes([counts["strings"]])
        + string_table
        + bytes([counts["chunks"]])
        + b"".join(tag + struct.pack(">II", len(d), zlib.crc32(d)) for tag, d in chunks)
        + header_extra
    )
    head = MAGIC + struct.pack(">HI", version, len(header)) + header
    payload = b"".join(strings) + b"".join(d for _, d in chunks)
    return head + struct.pack(">I", zlib.crc32(head)) + payload + trailer


def reseal(data: bytes) -> bytes:
    """Recomputes the header CRC after a test has edited the header (spec section 2)."""
    end = 14 + struct.unpack_from(">I", data, 10)[0]
    return data[:end] + struct.pack(">I", zlib.crc32(data[:end])) + data[end + 4 :]


def refusal(data: bytes) -> str:
    """Decodes hostile data; returns the reason after checking the message's shape."""
    with pytest.raises(BitstreamError) as info:
        decode_container(data, source=SRC)
    err = info.value
    assert str(err) == f"{SRC}: {err.reason}"
    assert err.source == SRC and "\n" not in str(err)
    return err.reason


# ---- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "chunks",
    [
        {},
        {"icc_profile": b"\x00\x00\x02\x0cICC profile bytes"},
        {"exif": b"Exif\x00\x00MM\x00*"},
        {"alpha": zlib.compress(bytes(range(256)) * 4)},
        {"icc_profile": b"icc", "exif": b"exif", "alpha": b"alpha"},
    ],
    ids=["none", "icc", "exif", "alpha", "all"],
)
def test_round_trip_keeps_every_field_and_chunk(chunks: dict[str, bytes]) -> None:
    f = small_file(**chunks)
    data = encode_container(f)
    assert data.startswith(MAGIC)
    assert decode_container(data) == f
    assert encode_container(decode_container(data)) == data


def test_round_trip_at_the_bounds() -> None:
    header = S2CHeader("m" * 64, "f" * 16, 65535 / 256, 2**17, 2**17, "I;16B" + "x" * 11, 255)
    strings = tuple(bytes([i]) * i for i in range(64))
    f = S2CFile(header, strings, icc_profile=b"\xff" * 70_000)
    assert decode_container(encode_container(f)) == f
    smallest = S2CFile(S2CHeader("a", "0" * 16, 1 / 256, 1, 1, "L", 0), (b"",))
    data = encode_container(smallest)
    assert len(data) == 18 + 33
    assert decode_container(data) == smallest


def test_empty_latent_strings_are_legal() -> None:
    f = S2CFile(HEADER, (b"", b"", b""))
    assert decode_container(encode_container(f)).latent_strings == (b"", b"", b"")


def test_an_empty_chunk_is_stored_as_absent() -> None:
    f = small_file(icc_profile=b"", exif=bytearray(), alpha=b"A")
    assert (f.icc_profile, f.exif, f.alpha) == (None, None, b"A")
    assert decode_container(encode_container(f)) == f == small_file(alpha=b"A")


def test_input_may_be_a_list_and_bytes_like() -> None:
    f = S2CFile(HEADER, [bytearray(b"ab"), memoryview(b"cd")], exif=bytearray(b"e"))
    assert f.latent_strings == (b"ab", b"cd") and f.exif == b"e"
    data = encode_container(f)
    assert decode_container(bytearray(data)) == f
    assert decode_container(memoryview(data)) == f


def test_encoding_is_deterministic_and_in_chunk_order() -> None:
    f = small_file(alpha=b"A", exif=b"E", icc_profile=b"I")
    data = encode_container(f)
    assert data == encode_container(small_file(icc_profile=b"I", exif=b"E", alpha=b"A"))
    assert data.endswith(b"y-main-stringIEA")
    assert data.index(b"iccp") < data.index(b"exif") < data.index(b"ALPH")


def test_the_spec_example_decodes_and_re_encodes_byte_for_byte() -> None:
    block = SPEC.read_text().split("EXAMPLE-BEGIN", 1)[1].split("EXAMPLE-END", 1)[0]
    hex_runs = [m.group(1) for m in re.finditer(r"^((?:[0-9a-f]{2} )*[0-9a-f]{2})(?:  |$)", block, re.M)]
    data = bytes.fromhex(" ".join(hex_runs))
    f = decode_container(data, source="docs/bitstream.md")
    assert f == S2CFile(
        S2CHeader("s2c-tiny", "0123456789abcdef", 3.5, 4, 3, "RGB", 0, format_version=1),
        (b"\x00\x01\x02", b""),
        exif=b"Exif\x00\x00",
    )
    assert encode_container(f) == data
    assert craft(strings=(b"\x00\x01\x02", b""), chunks=((b"exif", b"Exif\x00\x00"),)) == data


def test_unknown_ancillary_chunk_is_checked_then_ignored(caplog: pytest.LogCaptureFixture) -> None:
    data = craft(chunks=((b"exif", b"E"), (b"zzzz", b"future"), (b"tIME", b"")))
    with caplog.at_level(logging.INFO, logger="s2c_pipeline.bitstream"):
        f = decode_container(data, source=SRC)
    assert f.exif == b"E" and f.latent_strings == (b"abc",)
    assert "ignoring unknown ancillary chunk 'zzzz'" in caplog.text
    damaged = data[:-1] + b"X"
    assert "chunk 'zzzz': CRC32 mismatch" in refusal(damaged)


def test_chunks_may_come_in_any_order() -> None:
    data = craft(chunks=((b"ALPH", b"a"), (b"iccp", b"i")))
    f = decode_container(data)
    assert (f.alpha, f.icc_profile, f.exif) == (b"a", b"i", None)


def test_header_to_dict_is_json_ready() -> None:
    f = small_file(exif=b"Exif")
    info = header_to_dict(f)
    assert json.loads(json.dumps(info)) == info
    assert info["model_id"] == "s2c-hybrid-small@0123456789abcdef"
    assert (info["quality"], info["width"], info["height"], info["colour"]) == (3.5, 640, 480, 2)
    assert info["latent_strings"][0] == {"bytes": 6, "crc32": f"{zlib.crc32(b'z-side'):08x}"}
    assert info["latent_strings"][1] == {"bytes": 0, "crc32": "00000000"}
    assert info["chunks"] == {"exif": {"bytes": 4}}
    assert info["total_bytes"] == len(encode_container(f))
    assert info["bits_per_pixel"] == pytest.approx(info["total_bytes"] * 8 / (640 * 480))


def test_error_is_one_line_and_survives_pickling() -> None:
    err = BitstreamError("dir/a\nb.s2c", "bad\r\nthing")
    assert str(err) == "dir/a\\nb.s2c: bad\\r\\nthing"
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, BitstreamError) and isinstance(again, ValueError)
    assert (again.source, again.reason, str(again)) == (err.source, err.reason, str(err))


def test_non_bytes_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        decode_container("\x89S2C")  # type: ignore[arg-type]


# ---- what the writer refuses (ValueError, raised when the record is built) ----------------------


@pytest.mark.parametrize(
    ("field", "value", "cause"),
    [
        ("model_name", "", "1..64"),
        ("model_name", "m" * 65, "1..64"),
        ("model_name", "s2c small", "printable ASCII"),
        ("model_name", "s2c-é", "printable ASCII"),
        ("model_name", b"s2c", "must be a str"),
        ("weights_id", "0123456789ABCDEF", "16 lowercase hex"),
        ("weights_id", "0123456789abcde", "16 lowercase hex"),
        ("weights_id", "0123456789abcdeg", "16 lowercase hex"),
        ("quality", 0, "0 < quality < 256"),
        ("quality", 256, "0 < quality < 256"),
        ("quality", -1.0, "0 < quality < 256"),
        ("quality", 0.1, "multiple of 1/256"),
        ("quality", float("nan"), "multiple of 1/256"),
        ("quality", float("inf"), "multiple of 1/256"),
        ("quality", True, "must be a number"),
        ("width", 0, "width 0 is out of range"),
        ("width", 2**32, "out of range"),
        ("height", 0, "height 0 is out of range"),
        ("height", 2.0, "must be an int"),
        ("width", 2**17 + 1, "2**34"),
        ("source_mode", "", "1..16"),
        ("source_mode", "R" * 17, "1..16"),
        ("colour", -1, "out of range 0..255"),
        ("colour", 256, "out of range 0..255"),
        ("format_version", 3, "format_version 3"),
        ("format_version", 0, "out of range"),
    ],
)
def test_invalid_header_fields_are_refused(field: str, value: object, cause: str) -> None:
    fields = {"model_name": "s2c-tiny", "weights_id": "0" * 16, "quality": 1.0, "width": 2**17,
              "height": 2**17, "source_mode": "RGB", "colour": 0} | {field: value}  # fmt: skip
    with pytest.raises(ValueError, match=re.escape(cause)):
        S2CHeader(**fields)


def test_largest_image_is_accepted() -> None:
    assert S2CHeader("m", "0" * 16, 1.0, 2**17, 2**17, "RGB", 0).width == 2**17


@pytest.mark.parametrize(
    ("kwargs", "cause"),
    [
        ({"latent_strings": ()}, "need 1..64 latent strings, got 0"),
        ({"latent_strings": (b"",) * 65}, "need 1..64 latent strings, got 65"),
        ({"latent_strings": (b"a", "b")}, "latent string 1 must be bytes"),
        ({"latent_strings": b"ab"}, "must be a tuple of bytes"),
        ({"icc_profile": "profile"}, "icc_profile must be bytes"),
        ({"header": "s2c-tiny"}, "header must be an S2CHeader"),
    ],
)
def test_invalid_files_are_refused(kwargs: dict[str, object], cause: str) -> None:
    fields: dict[str, object] = {"header": HEADER, "latent_strings": (b"a",)} | kwargs
    with pytest.raises(ValueError, match=re.escape(cause)):
        S2CFile(**fields)  # type: ignore[arg-type]


def test_encode_refuses_anything_but_an_s2c_file() -> None:
    with pytest.raises(ValueError, match="needs an S2CFile"):
        encode_container(HEADER)  # type: ignore[arg-type]


# ---- what the parser refuses (BitstreamError, naming the source and the cause) -----------------

VALID = craft(strings=(b"abc", b"", b"defg"), chunks=((b"exif", b"EXIF"),))


def test_the_crafted_file_is_valid() -> None:
    assert decode_container(VALID).latent_strings == (b"abc", b"", b"defg")


def test_empty_file() -> None:
    assert refusal(b"") == "empty file (0 bytes), not an .s2c file"


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n" + VALID[8:], b"hello", b"\x00" * 100, b"S2C"])
def test_wrong_magic(data: bytes) -> None:
    assert refusal(data).startswith("not an .s2c file (starts with ")


@pytest.mark.parametrize(
    "mangled",
    [VALID.replace(b"\r\n", b"\n", 1), VALID.replace(b"\x1a\n", b"\x1a\r\n", 1), bytes([0x09]) + VALID[1:]],
    ids=["crlf-to-lf", "lf-to-crlf", "7-bit"],
)
def test_text_mode_damage_is_named(mangled: bytes) -> None:
    assert "damaged magic bytes" in refusal(mangled) and "text mode" in refusal(mangled)


def test_too_short_for_the_magic_or_the_prefix() -> None:
    assert refusal(MAGIC[:5]) == "truncated: 5 bytes, the .s2c magic alone needs 8"
    assert refusal(VALID[:12]) == "truncated: 12 bytes, the fixed prefix needs 14"


def test_newer_version_asks_for_a_newer_s2c_pipeline() -> None:
    reason = refusal(craft(version=3))
    assert "format version 3 is newer" in reason and "(versions 1, 2)" in reason
    assert "a newer s2c-pipeline is needed" in reason
    assert "format version 65535 is newer" in refusal(craft(version=65535))


def test_version_zero_is_corrupt() -> None:
    assert refusal(craft(version=0)) == "invalid format version 0; the file is corrupt"


@pytest.mark.parametrize("length", [0, 32, 808, 2**32 - 1])
def test_header_length_out_of_bounds(length: int) -> None:
    forged = VALID[:10] + struct.pack(">I", length) + VALID[14:]
    assert (
        refusal(forged)
        == f"header length {length} is outside 33..807 allowed in format version 1; the file is corrupt"
    )


def test_truncated_header_says_expected_and_present() -> None:
    assert refusal(VALID[:40]) == f"truncated header: expected at least {len(VALID) - 11} bytes, file has 40"


def test_header_crc_mismatch() -> None:
    damaged = bytearray(VALID)
    damaged[16] ^= 0x01  # width's top byte
    assert re.fullmatch(
        r"header CRC32 mismatch \(stored [0-9a-f]{8}, computed [0-9a-f]{8}\); the header is corrupt",
        refusal(bytes(damaged)),
    )


def test_string_crc_mismatch_names_the_string() -> None:
    damaged = VALID[:-6] + b"X" + VALID[-5:]  # the "f" of string 2, "defg"
    assert refusal(damaged).startswith("latent string 2 of 3: CRC32 mismatch (stored ")


def test_chunk_crc_mismatch_names_the_chunk() -> None:
    assert refusal(VALID[:-1] + b"?").startswith("chunk 'exif': CRC32 mismatch")


def test_trailing_bytes() -> None:
    assert (
        refusal(VALID + b"\x00\x00\x00")
        == f"3 trailing bytes after the payload (expected {len(VALID)} bytes in all)"
    )
    assert "trailing bytes" in refusal(VALID + VALID)


def test_truncated_payload_says_expected_and_present() -> None:
    assert (
        refusal(VALID[:-3])
        == f"truncated payload: expected {len(VALID)} bytes in all, file has {len(VALID) - 3}"
    )


@pytest.mark.parametrize(
    ("kwargs", "cause"),
    [
        ({"quality_q8": 0}, "quality 0.0 must be a multiple of 1/256 with 0 < quality < 256"),
        ({"width": 0}, "width 0 is out of range"),
        ({"height": 0}, "height 0 is out of range"),
        ({"width": 2**32 - 1, "height": 5}, "pixels, more than the 2**34 limit"),
        ({"width": 2**17, "height": 2**17 + 1}, "131072x131073 is 17180000256 pixels"),
        ({"name": b"s2c-\xe9"}, "model_name 's2c-\xe9' must be printable ASCII"),
        ({"name": b"s2c tiny"}, "model_name 's2c tiny' must be printable ASCII"),
        ({"name": b"s2c\x00"}, "must be printable ASCII"),
        ({"name": b""}, "model_name length is 0, must be 1..64"),
        ({"name": b"n" * 65}, "model_name length is 65, must be 1..64"),
        ({"mode": b""}, "source_mode length is 0, must be 1..16"),
        ({"mode": b"R" * 17}, "source_mode length is 17, must be 1..16"),
        ({"mode": b"RG\nB"}, "source_mode 'RG\\nB' must be printable ASCII"),
        ({"strings": ()}, "string_count is 0, must be 1..64"),
        ({"strings": (b"",) * 65}, "string_count is 65, must be 1..64"),
        (
            {"chunks": tuple((bytes([65 + i]) * 4, b"x") for i in range(17))},
            "chunk_count is 17, must be 0..16",
        ),
        ({"header_extra": b"\x00"}, "1 bytes left over after the chunk table"),
        ({"counts": {"strings": 2}}, "string table entry 1 needs 8 bytes at header offset"),
        ({"counts": {"name": 60}}, "model_name needs 60 bytes at header offset 20, past the end of the"),
        ({"chunks": ((b"ex1f", b"x"),)}, "chunk 0 has tag b'ex1f', expected 4 ASCII letters"),
        ({"chunks": ((b"exif", b"x"), (b"exif", b"y"))}, "chunk 'exif' appears more than once"),
        ({"chunks": ((b"ALPH", b""),)}, "chunk 'ALPH' is empty"),
    ],
)
def test_invalid_header_fields_behind_a_good_crc(kwargs: dict, cause: str) -> None:
    reason = refusal(craft(**kwargs))
    assert reason.startswith("invalid header: ") and cause in reason


def test_unknown_critical_chunk_asks_for_a_newer_s2c_pipeline() -> None:
    reason = refusal(craft(chunks=((b"Tile", b"future layout"),)))
    assert reason == (
        "chunk 'Tile' is critical and unknown to this s2c-pipeline; a newer s2c-pipeline is needed to decode this file"
    )


@pytest.mark.parametrize(
    ("table", "cause"),
    [
        (
            struct.pack(">II", 2**32 - 1, 0),
            "latent string 0 of 1 declares 4294967295 bytes, more than the whole file",
        ),
        (struct.pack(">II", 10**6, 0), "latent string 0 of 1 declares 1000000 bytes"),
    ],
)
def test_absurd_string_length_is_refused_before_reading(table: bytes, cause: str) -> None:
    assert refusal(craft(strings=(b"abc",), string_table=table)).startswith(cause)


def test_absurd_chunk_length_is_refused_before_reading() -> None:
    data = craft(chunks=((b"exif", b"x"),))
    at = data.index(b"exif") + 4
    forged = reseal(data[:at] + struct.pack(">I", 2**32 - 1) + data[at + 4 :])
    assert refusal(forged).startswith("chunk 'exif' declares 4294967295 bytes, more than the whole file")


# ---- exhaustive damage to one small file ------------------------------------------------------

SMALL = encode_container(S2CFile(S2CHeader("s2c-tiny", "0123456789abcdef", 1.0, 32, 24, "RGB", 0),
                                 (b"z" * 2, b"", b"y" * 4), exif=b"Exif\x00\x00MM"))  # fmt: skip


def test_the_small_file_is_about_100_bytes() -> None:
    assert 90 <= len(SMALL) <= 110


def test_every_single_bit_flip_is_detected() -> None:
    for bit in range(len(SMALL) * 8):
        damaged = bytearray(SMALL)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(BitstreamError):
            decode_container(bytes(damaged), source=f"flip {bit}")


def test_every_truncation_is_detected() -> None:
    for n in range(len(SMALL)):
        with pytest.raises(BitstreamError, match=r"^cut: (empty|truncated)"):
            decode_container(SMALL[:n], source="cut")


def test_every_inserted_or_deleted_byte_is_detected() -> None:
    for at in range(len(SMALL) + 1):
        with pytest.raises(BitstreamError):
            decode_container(SMALL[:at] + b"\x00" + SMALL[at:])
        if at < len(SMALL):
            with pytest.raises(BitstreamError):
                decode_container(SMALL[:at] + SMALL[at + 1 :])


def test_format_version_constant() -> None:
    assert FORMAT_VERSION == 2 and MAGIC == b"\x89S2C\r\n\x1a\n" and HEADER.format_version == 2


def test_versions_1_and_2_share_the_layout_and_round_trip() -> None:
    """Version 2 changes only what the latent strings mean (the decoder path), so the same records
    written as version 1 and 2 differ in the version field and the header CRC, nowhere else."""
    v2 = encode_container(small_file(exif=b"E"))
    v1 = encode_container(
        S2CFile(replace(HEADER, format_version=1), (b"z-side", b"", b"y-main-string"), exif=b"E")
    )
    assert v2[8:10] == b"\x00\x02" and v1[8:10] == b"\x00\x01"
    crc_at = 14 + struct.unpack(">I", v1[10:14])[0]
    assert len(v1) == len(v2)
    assert {i for i in range(len(v1)) if v1[i] != v2[i]} <= {9, crc_at, crc_at + 1, crc_at + 2, crc_at + 3}
    assert decode_container(v1).header.format_version == 1
    assert decode_container(v2) == small_file(exif=b"E")

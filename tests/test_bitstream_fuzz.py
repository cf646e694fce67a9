"""Properties of the `.s2c` parser over generated inputs: whatever the bytes, decode_container returns
a valid S2CFile or raises BitstreamError, never anything else. The long fuzz run is a separate script
(tests/fuzz/fuzz_bitstream.py); here it gets a 2-second smoke test.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s2c_pipeline.bitstream import (
    MAGIC,
    BitstreamError,
    S2CFile,
    S2CHeader,
    decode_container,
    encode_container,
    header_to_dict,
)

FUZZ_SCRIPT = Path(__file__).parent / "fuzz" / "fuzz_bitstream.py"
_spec = importlib.util.spec_from_file_location("fuzz_bitstream", FUZZ_SCRIPT)
assert _spec is not None and _spec.loader is not None
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

PROPERTY = settings(deadline=None, max_examples=200)  # per test: no global profile for others' tests


def tokens(max_size: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=max_size)


@st.composite
def s2c_files(draw: st.DrawFn) -> S2CFile:
    width = draw(st.integers(1, 2**32 - 1))
    header = S2CHeader(
        model_name=draw(tokens(64)),
        weights_id=draw(st.binary(min_size=8, max_size=8)).hex(),
        quality=draw(st.integers(1, 2**16 - 1)) / 256,
        width=width,
        height=draw(st.integers(1, min(2**32 - 1, 2**34 // width))),
        source_mode=draw(tokens(16)),
        colour=draw(st.integers(0, 255)),
    )
    chunk = st.none() | st.binary(min_size=1, max_size=64)
    return S2CFile(
        header,
        tuple(draw(st.lists(st.binary(max_size=48), min_size=1, max_size=64))),
        icc_profile=draw(chunk),
        exif=draw(chunk),
        alpha=draw(chunk),
    )


def decode_or_refuse(data: bytes) -> S2CFile | None:
    """The decoded file, or None after a well-formed refusal; any other exception fails the test."""
    try:
        return decode_container(data, source="generated")
    except BitstreamError as e:
        assert str(e).startswith("generated: ") and "\n" not in str(e)
        return None


edits = st.lists(
    st.tuples(
        st.sampled_from(["flip", "set", "delete", "insert", "truncate", "append"]),
        st.integers(0, 4096),
        st.binary(min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=4,
)


def apply_edits(data: bytes, plan: list[tuple[str, int, bytes]]) -> bytes:
    buf = bytearray(data)
    for op, where, blob in plan:
        at = where % (len(buf) + 1)
        if op == "flip" and at < len(buf):
            buf[at] ^= blob[0] or 1
        elif op == "set":
            buf[at : at + len(blob)] = blob
        elif op == "delete":
            del buf[at : at + len(blob)]
        elif op == "insert":
            buf[at:at] = blob
        elif op == "truncate":
            del buf[at:]
        elif op == "append":
            buf += blob
    return bytes(buf)


@PROPERTY
@given(s2c_files())
def test_every_valid_file_round_trips(f: S2CFile) -> None:
    data = encode_container(f)
    assert decode_container(data) == f
    info = header_to_dict(f)
    assert json.loads(json.dumps(info)) == info and info["total_bytes"] == len(data)


@PROPERTY
@given(st.binary(max_size=1024))
def test_arbitrary_bytes_only_raise_bitstream_error(data: bytes) -> None:
    decode_or_refuse(data)
    decode_or_refuse(MAGIC + data)


@PROPERTY
@given(st.binary(min_size=33, max_size=807), st.binary(max_size=256))
def test_arbitrary_header_behind_a_valid_crc_only_raises_bitstream_error(
    header: bytes, payload: bytes
) -> None:
    head = MAGIC + struct.pack(">HI", 1, len(header)) + header
    decode_or_refuse(head + struct.pack(">I", zlib.crc32(head)) + payload)


@PROPERTY
@given(s2c_files(), edits, st.booleans())
def test_mutated_files_decode_consistently_or_are_refused(f: S2CFile, plan: list, reseal: bool) -> None:
    data = apply_edits(encode_container(f), plan)
    if reseal:
        data = fuzz.fix_header_crc(data)
    decoded = decode_or_refuse(data)
    if decoded is not None:
        assert decode_container(encode_container(decoded)) == decoded


@PROPERTY
@given(s2c_files(), st.integers(0, 2**32), st.integers(1, 255))
def test_any_changed_byte_is_refused(f: S2CFile, where: int, xor: int) -> None:
    data = bytearray(encode_container(f))
    data[where % len(data)] ^= xor
    with pytest.raises(BitstreamError):
        decode_container(bytes(data))


def test_fuzz_script_smoke() -> None:
    run = subprocess.run(
        [sys.executable, str(FUZZ_SCRIPT), "--seconds", "2", "--seed", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "all handled" in run.stdout and "refused with BitstreamError" in run.stdout


def test_fuzz_script_fails_on_any_other_exception(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def crash(data: bytes, *, source: str) -> S2CFile:
        raise IndexError("parser bug")

    monkeypatch.setattr(fuzz, "decode_container", crash)
    assert fuzz.run(0.05, seed=0) == 1
    assert "FAILED (seed 0)" in capsys.readouterr().err

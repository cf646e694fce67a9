"""Mutation fuzzer for the `.s2c` parser: every input must decode or raise BitstreamError.

    python tests/fuzz/fuzz_bitstream.py --seconds 30 [--seed N]

It mutates valid files (bit flips, interesting integers, deletions, insertions, splices, truncation),
and half the time repairs the header CRC afterwards, so that mutations reach the field checks behind
the checksum instead of all stopping at it. An input that decodes must re-encode to a file that
decodes to the same record. Any other exception prints the seed, the input and the traceback, and
exits 1. pytest runs a 2-second smoke test of this script (tests/test_bitstream_fuzz.py).
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import sys
import time
import traceback
import zlib

from s2c_pipeline.bitstream import BitstreamError, S2CFile, S2CHeader, decode_container, encode_container
from s2c_pipeline.bitstream.format import CRC, MAX_HEADER_LENGTH, PREFIX

_CATEGORY = re.compile(r"'[^']*'|\"[^\"]*\"|\d+x\d+|\b(?:[0-9a-f]{2} )+[0-9a-f]{2}\b|\b[0-9a-f]{8}\b|\b\d+\b")
_INTERESTING = (0, 1, 2, 0x20, 0x40, 0x41, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x10000, 2**31, 2**32 - 1)


def valid_samples() -> list[bytes]:
    """A few valid files that between them use every field and chunk."""
    header = S2CHeader("s2c-hybrid-small", "0123456789abcdef", 3.5, 640, 480, "RGB", 1)
    grey = S2CHeader("s2c-tiny", "ffffffffffffffff", 1 / 256, 1, 1, "L", 0)
    files = [
        S2CFile(header, (b"z-string", b"y-anchor", b"y-rest")),
        S2CFile(header, (b"", b"\x00" * 40), icc_profile=b"ICC" * 5, exif=b"Exif\x00\x00MM", alpha=b"x\x9c"),
        S2CFile(grey, tuple(bytes([i]) * (i % 3) for i in range(64)), alpha=b"\x01"),
    ]
    return [encode_container(f) for f in files]


def fix_header_crc(data: bytes) -> bytes:
    """Rewrites the header CRC where the (possibly mutated) header length still fits the data."""
    if len(data) < PREFIX.size:
        return data
    end = PREFIX.size + PREFIX.unpack_from(data)[2]
    if end + CRC.size > len(data):
        return data
    return data[:end] + CRC.pack(zlib.crc32(data[:end])) + data[end + CRC.size :]


def mutate(data: bytes, rng: random.Random, samples: list[bytes]) -> bytes:
    """One to four random edits; half of them aimed at the header, where the parsing logic is."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            buf += rng.randbytes(rng.randint(1, 16))
            continue
        header_end = min(len(buf), PREFIX.size + MAX_HEADER_LENGTH)
        pos = (
            rng.randrange(8, header_end) if rng.random() < 0.5 and header_end > 8 else rng.randrange(len(buf))
        )
        op = rng.randrange(8)
        if op == 0:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos] = rng.randrange(256)
        elif op == 2:
            width = rng.choice((1, 2, 4))
            value = rng.choice(_INTERESTING) % (1 << (8 * width))
            buf[pos : pos + width] = value.to_bytes(width, "big")
        elif op == 3:
            del buf[pos : pos + rng.randint(1, 16)]
        elif op == 4:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif op == 5:
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start : start + rng.randint(1, 32)]
        elif op == 6:
            del buf[rng.randrange(len(buf)) :]
        else:
            other = rng.choice(samples)
            buf = buf[:pos] + other[rng.randrange(len(other)) :]
    out = bytes(buf)
    return fix_header_crc(out) if rng.random() < 0.5 else out


def check_one(data: bytes) -> str:
    """'decoded', or the refusal's reason with numbers and names blanked (a category for the report)."""
    try:
        decoded = decode_container(data, source="fuzz")
    except BitstreamError as e:
        return "refused: " + _CATEGORY.sub("_", e.reason)
    again = decode_container(encode_container(decoded), source="fuzz re-encoded")
    if again != decoded:
        raise AssertionError(f"re-encoding changed the record: {decoded!r} -> {again!r}")
    return "decoded"


def run(seconds: float, seed: int) -> int:
    rng = random.Random(seed)
    samples = valid_samples()
    outcomes: collections.Counter[str] = collections.Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(200):
            data = mutate(rng.choice(samples), rng, samples)
            try:
                outcomes[check_one(data)] += 1
            except Exception:
                print(f"FAILED (seed {seed}) on input {data.hex()}", file=sys.stderr)
                traceback.print_exc()
                return 1
    tried = sum(outcomes.values())
    print(f"fuzz_bitstream: tried {tried} inputs in {seconds:g} s (seed {seed}); all handled:")
    print(f"  {outcomes['decoded']} decoded, {tried - outcomes['decoded']} refused with BitstreamError")
    for outcome, count in outcomes.most_common():
        print(f"  {count:8d}  {outcome}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to fuzz (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time-based)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    sys.exit(run(args.seconds, seed))


if __name__ == "__main__":
    main()

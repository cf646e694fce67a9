"""Mutation fuzzer for the whole decoder: every input decodes the same way twice, or is refused.

    python tests/fuzz/fuzz_decoder.py --count 1000000 --workers 2 [--seed N] [--json out.json]

Streams of small real images (RGB, grey, alpha, odd sizes) coded with the bundled weights are
mutated in two ways, half each:
- raw: bit flips, byte writes, deletions, insertions, splices and truncations anywhere in the file,
  as tests/fuzz/fuzz_bitstream.py does; the CRCs stay as they were, so most stop at a checksum;
- resealed: a latent string or a header field is changed (shortened, emptied, extended, replaced by
  random bytes of the same length, swapped with another stream's, bits flipped; size, colour code,
  quality, alpha plane) and the file is written again with every CRC recomputed, which is what a
  crafted file looks like. These reach the rANS decoder and the header checks.
Each input goes through ``ImageCodec.decode``. A BitstreamError is a clean refusal. A decode is run
a second time and must give the same pixels. Anything else (another exception, differing pixels,
memory above ``--max-rss-mb``) prints the seed, the input and the traceback, and exits 1. The
report counts outcomes by kind and gives the peak resident memory of every worker.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import io
import json
import multiprocessing
import random
import re
import resource
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from s2c_pipeline.bitstream import BitstreamError, decode_container, encode_container
from s2c_pipeline.codec.image_codec import ImageCodec
from s2c_pipeline.imaging import load_image

sys.path.insert(0, str(Path(__file__).parent))
from fuzz_bitstream import mutate

_CATEGORY = re.compile(
    r"'[^']*'|\"[^\"]*\"|\d+x\d+|\b0x[0-9a-f]+\b|\b[0-9a-f]{8,}\b|\b\d+(\.\d+)?\b|"
    r"\b[A-Z_]+(\|[A-Z_]+)*\b|\((?:present|absent)\)|(?:\b[0-9a-f]{2} )+[0-9a-f]{2}\b"
)
_INTERESTING_SIZES = (0, 1, 63, 64, 65, 4096, 5000, 65535, 2**20, 2**32 - 1)


def seed_streams(codec: ImageCodec) -> list[bytes]:
    """Small real images of every colour kind the decoder restores, coded at a few qualities."""
    rng = np.random.default_rng(2026)
    y, x = np.mgrid[0:80, 0:96]
    smooth = np.stack([x * 2, y * 3, (x + y) * 1.5], axis=-1) % 256
    rgb = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
    rgba = np.dstack([rgb[:64, :64], (np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8)])
    images = [
        (Image.fromarray(rgb), 3.0),
        (Image.fromarray(rgb[:64, :64]).convert("L"), 6.0),
        (Image.fromarray(rgba, "RGBA"), 1.5),
        (Image.fromarray(rgb[:17, :70]), 8.0),
    ]
    streams = []
    for image, quality in images:
        png = io.BytesIO()
        image.save(png, format="PNG")
        streams.append(codec.encode(load_image(png.getvalue()), quality))
    return streams


def _mutated_string(string: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    op = rng.randrange(8)
    if op == 0:
        return b""
    if op == 1:
        return string[: rng.randrange(len(string) + 1)]
    if op == 2:
        return string[: rng.randrange(len(string) + 1) & ~3]  # whole words: reaches the symbol loop
    if op == 3:
        return string + rng.randbytes(rng.choice((1, 4, 8, 64)))
    if op == 4:
        return rng.randbytes(len(string))
    if op == 5:
        return rng.choice(others)
    buf = bytearray(string or b"\x00")
    for _ in range(rng.randint(1, 4)):
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)


def resealed(data: bytes, rng: random.Random, streams: list[bytes]) -> bytes:
    """A crafted file: one part changed, every CRC valid."""
    f = decode_container(data)
    header, strings = f.header, list(f.latent_strings)
    op = rng.randrange(10)
    try:
        if op < 6:
            others = [s for stream in streams for s in decode_container(stream).latent_strings]
            for _ in range(1 if op < 5 else rng.randint(2, len(strings))):
                k = rng.randrange(len(strings))
                strings[k] = _mutated_string(strings[k], rng, others)
            if rng.random() < 0.1:
                del strings[rng.randrange(len(strings))]
        elif op == 6:
            header = dataclasses.replace(
                header, width=rng.choice(_INTERESTING_SIZES) or 1, height=rng.choice(_INTERESTING_SIZES) or 1
            )
        elif op == 7:
            header = dataclasses.replace(header, colour=rng.randrange(256))
        elif op == 8:
            header = dataclasses.replace(header, quality=rng.randint(1, 2**16 - 1) / 256)
        else:
            alpha = rng.choice(
                (None, b"", rng.randbytes(rng.randint(1, 64)), decode_container(streams[2]).alpha)
            )
            f = dataclasses.replace(f, alpha=alpha or None)
        return encode_container(dataclasses.replace(f, header=header, latent_strings=tuple(strings)))
    except ValueError:  # a record the writer itself refuses (e.g. no strings left): mutate raw instead
        return data[: rng.randrange(len(data))]


def decode_outcome(codec: ImageCodec, data: bytes) -> str:
    """'decoded' (twice, identically), or the refusal's reason with numbers blanked."""
    try:
        first = codec.decode(data, source="fuzz")
    except BitstreamError as exc:
        assert "\n" not in str(exc), f"multi-line error: {exc}"
        return "refused: " + _CATEGORY.sub("_", exc.reason)[:110]
    second = codec.decode(data, source="fuzz")
    if not np.array_equal(first.rgb, second.rgb) or first.image.tobytes() != second.image.tobytes():
        raise AssertionError("two decodes of one input gave different pixels")
    return "decoded"


def _peak_rss_mb() -> float:
    """This process's own peak (VmHWM). ru_maxrss would also count the peak of whatever started it,
    which a vfork + exec carries over (a pytest process late in the suite holds 1.5 GB)."""
    with open("/proc/self/status") as status:
        hwm = [line.split()[1] for line in status if line.startswith("VmHWM:")]
    return (int(hwm[0]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def fuzz_worker(args: tuple[int, int, float]) -> dict:
    seed, count, max_rss_mb = args
    torch.set_num_threads(1)
    rng = random.Random(seed)
    codec = ImageCodec.load(device="cpu")
    streams = seed_streams(codec)
    outcomes: collections.Counter[str] = collections.Counter()
    for i in range(count):
        kind = "raw" if i % 2 == 0 else "resealed"
        source = rng.choice(streams)
        data = mutate(source, rng, streams) if kind == "raw" else resealed(source, rng, streams)
        try:
            outcomes[f"{kind} {decode_outcome(codec, data)}"] += 1
        except Exception:
            return {
                "failed": True,
                "seed": seed,
                "index": i,
                "input": data.hex(),
                "error": traceback.format_exc(),
            }
        if i % 1000 == 0 and _peak_rss_mb() > max_rss_mb:
            return {
                "failed": True,
                "seed": seed,
                "index": i,
                "input": data.hex(),
                "error": "memory bound exceeded",
            }
        if (i + 1) % max(1, count // 20) == 0:
            print(
                f"worker {seed}: {i + 1}/{count} mutations, peak {_peak_rss_mb():.0f} MB",
                file=sys.stderr,
                flush=True,
            )
    return {"failed": False, "seed": seed, "outcomes": dict(outcomes), "peak_rss_mb": _peak_rss_mb()}


def run(count: int, workers: int, seed: int, max_rss_mb: float) -> dict:
    shares = [count // workers + (w < count % workers) for w in range(workers)]
    jobs = [(seed + w, n, max_rss_mb) for w, n in enumerate(shares)]
    start = time.monotonic()
    if workers == 1:
        results = [fuzz_worker(jobs[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = pool.map(fuzz_worker, jobs)
    total: collections.Counter[str] = collections.Counter()
    for result in results:
        if result["failed"]:
            return {**result, "seconds": time.monotonic() - start}
        total.update(result["outcomes"])
    return {
        "failed": False,
        "seed": seed,
        "mutations": sum(total.values()),
        "resealed": sum(n for k, n in total.items() if k.startswith("resealed")),
        "decoded": sum(n for k, n in total.items() if k.endswith(" decoded")),
        "uncaught_exceptions": 0,
        "decodes_that_differ": 0,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "seconds": time.monotonic() - start,
        "outcomes": dict(total.most_common()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="mutations in all (default 2000)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time-based)")
    parser.add_argument("--max-rss-mb", type=float, default=2048, help="memory bound per worker (MB)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here too")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    report = run(args.count, args.workers, seed, args.max_rss_mb)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if report["failed"]:
        print(
            f"FAILED (seed {report['seed']}, mutation {report['index']}) on input {report['input']}",
            file=sys.stderr,
        )
        print(report["error"], file=sys.stderr)
        sys.exit(1)
    print(
        f"fuzz_decoder: {report['mutations']} mutations ({report['resealed']} resealed with valid CRCs) "
        f"in {report['seconds']:.0f} s, seed {seed}: 0 uncaught exceptions, 0 decodes that differ, "
        f"{report['decoded']} decoded, peak memory {report['peak_rss_mb']:.0f} MB per worker"
    )
    for outcome, n in report["outcomes"].items():
        print(f"  {n:9d}  {outcome}")


if __name__ == "__main__":
    main()

"""``s2c demo``: the main job on the embedded defaults.

Sample shards are built from the evaluation photos (pip packages, offline), compressed on a local
Ray runtime with the bundled weights, decoded back to PNG with every hash checked, and verified.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from s2c_pipeline.cli.errors import EXIT_BAD_DATA, EXIT_OK
from s2c_pipeline.cli.output import progress_wanted, report

COMMANDS = {"demo": "compress, decompress and verify the bundled sample shards on local Ray"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help=COMMANDS["demo"], description=COMMANDS["demo"])
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="working folder (default out/demo)")
    p.add_argument("--quality", type=float, default=None)
    p.add_argument("--actors", type=int, default=None, help="CPU actors (default: one per core)")
    p.set_defaults(run=run_demo)


def build_demo_shards(folder: Path) -> list[Path]:
    """The sample shards: one sample per evaluation photo, plus one deliberately bad member."""
    from s2c_pipeline.photos import evaluation_photos
    from s2c_pipeline.shards.samples import build_sample_shards

    existing = sorted(folder.glob("*.tar"))
    if existing:
        return existing
    photos = [(p.name, p.load()) for p in evaluation_photos()]
    return build_sample_shards(folder, photos, shards=3, bad_member=True, max_side=512)


def run_demo(args: argparse.Namespace) -> int:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # local Ray on 127.0.0.1 only
    from s2c_pipeline.pipeline import DecodeConfig, RunConfig, compress, decompress, format_summary, verify

    shards = build_demo_shards(args.out / "input")
    compressed, decoded = args.out / "compressed", args.out / "decoded"
    for folder in (compressed, decoded):  # the demo shows a full run each time
        shutil.rmtree(folder, ignore_errors=True)
    progress = progress_wanted(args)
    decode_config = DecodeConfig(actors=args.actors, show_progress=progress)
    report(args, f"== compress {len(shards)} sample shards from {args.out / 'input'} -> {compressed}")
    summary = compress(
        [str(p) for p in shards],
        str(compressed),
        RunConfig(quality=args.quality, actors=args.actors, show_progress=progress),
    )
    report(args, format_summary(summary), problem=not summary.ok)
    report(
        args,
        f"\n== decompress {compressed} -> {decoded} (PNG, each decoded image checked against the manifest)",
    )
    unpacked = decompress(str(compressed), str(decoded), config=decode_config)
    report(args, unpacked.format(), problem=not unpacked.ok)
    report(args, f"\n== verify {compressed}")
    checked = verify(str(compressed), config=decode_config)
    report(args, checked.format(), problem=not checked.ok)
    ok = summary.ok and unpacked.ok and checked.ok
    report(
        args,
        f"\ndemo {'finished' if ok else 'FAILED'}: manifests in {compressed}/manifest/, PNGs in {decoded}/",
        problem=not ok,
    )
    return EXIT_OK if ok else EXIT_BAD_DATA

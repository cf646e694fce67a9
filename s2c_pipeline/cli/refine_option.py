"""``--refine-steps``: the one encoder-effort flag that ``encode``, ``compress`` and ``eval`` share."""

from __future__ import annotations

import argparse

from s2c_pipeline.cli.errors import UsageError

REFINE_HELP = (
    "encoder effort: refine each latent for N steps against its own rate-distortion cost "
    "(fewer bits for the same PSNR, 1.1 %% on the earlier 8 evaluation photos at 30 steps: "
    "benchmarks/results/eval-8photos.json; "
    "at the top levels it buys PSNR with a little more rate; decoding unchanged; each step costs "
    "about one decode, "
    "so 30 steps make a CPU encode about 60 times slower; default 0: off)"
)


def add_refine_argument(parser: argparse.ArgumentParser, help_text: str = REFINE_HELP) -> None:
    parser.add_argument("--refine-steps", type=int, default=0, metavar="N", help=help_text)


def refine_settings(args: argparse.Namespace):
    """The ``RefineSettings`` for ``--refine-steps``, or None when it is 0."""
    from s2c_pipeline.codec.refine import RefineSettings

    if args.refine_steps < 0:
        raise UsageError(f"--refine-steps must be 0 or more, got {args.refine_steps}")
    return RefineSettings(args.refine_steps) if args.refine_steps else None

"""The options several verbs share, each defined once: the same flag means the same everywhere.

Values that need a heavy import (``--device``, ``--max-pixels``, ``--refine-steps``) are resolved
when the verb runs, not when the parser is built, so that building a parser imports neither torch
nor the imaging package (``s2c --help`` and ``s2c info`` start without them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from s2c_pipeline.cli.errors import UsageError


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default=None, help="cpu, cuda or cuda:N (default: cuda when torch can use it, else cpu)"
    )


def checked_device(args: argparse.Namespace) -> str | None:
    """``--device`` when torch can use it here (None: choose automatically); UsageError otherwise,
    before any model is loaded."""
    name = args.device
    if name is None:
        return None
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name}: not a device name torch knows; use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return name
    if device.type != "cuda":
        raise UsageError(f"--device {name}: s2c runs on cpu or cuda")
    if not torch.cuda.is_available():
        raise UsageError(
            f"--device {name}: this torch ({torch.__version__}) cannot use CUDA here (a CPU-only build, "
            "or no GPU or driver); use --device cpu or leave --device out"
        )
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise UsageError(f"--device {name}: this machine has {count} CUDA device(s), numbered from 0")
    return name


MAX_PIXELS_HELP = (
    "largest width x height handled; larger images are refused (default: the library's "
    "DEFAULT_MAX_PIXELS, 25 million: docs/imaging.md)"
)


def add_max_pixels_argument(parser: argparse.ArgumentParser, help_text: str = MAX_PIXELS_HELP) -> None:
    parser.add_argument("--max-pixels", type=int, default=None, metavar="N", help=help_text)


def max_pixels(args: argparse.Namespace) -> int:
    """``--max-pixels``, or the library's default when it is not given."""
    if args.max_pixels is not None:
        return args.max_pixels
    from s2c_pipeline.imaging import DEFAULT_MAX_PIXELS

    return DEFAULT_MAX_PIXELS


REFINE_HELP = (
    "encoder effort: refine each latent for N steps against its own rate-distortion cost "
    "(fewer bits for the same PSNR, 1.1 %% on the earlier 8 evaluation photos at 30 steps: "
    "benchmarks/results/eval-8photos.json; "
    "at the top levels it buys PSNR with a little more rate; decoding unchanged; each step costs "
    "about one decode, "
    "so 30 steps make a CPU encode about 60 times slower; default 0: off)"
)


def add_refine_argument(parser: argparse.ArgumentParser, help_text: str = REFINE_HELP) -> None:
    """``--refine-steps``: the encoder-effort flag of ``encode``, ``compress`` and ``eval``."""
    parser.add_argument("--refine-steps", type=int, default=0, metavar="N", help=help_text)


def refine_settings(args: argparse.Namespace):
    """The ``RefineSettings`` for ``--refine-steps``, or None when it is 0."""
    from s2c_pipeline.codec.refine import RefineSettings

    if args.refine_steps < 0:
        raise UsageError(f"--refine-steps must be 0 or more, got {args.refine_steps}")
    return RefineSettings(args.refine_steps) if args.refine_steps else None


def add_inputs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="shard URLs, globs, brace ranges or @list.txt"
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model`` and ``--weights``: which one model codes (``eval`` takes several instead)."""
    parser.add_argument("--model", default=None, help="model name (default: the bundled default model)")
    parser.add_argument(
        "--weights", type=Path, default=None, help="a checkpoint file instead of bundled weights"
    )


def add_extra_weights_argument(parser: argparse.ArgumentParser) -> None:
    """``--weights``, repeatable, for the decoding verbs: bitstreams name the weights they need."""
    parser.add_argument(
        "--weights", type=Path, action="append", default=[], help="extra checkpoint files to search"
    )


def add_rate_arguments(parser: argparse.ArgumentParser, *, psnr_help: str, bpp_help: str) -> None:
    """``--quality``, or a per-image ``--target-psnr`` / ``--target-bpp`` (one of the three)."""
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument(
        "--quality", type=float, default=None, help="1 (smallest) .. number of levels; default: middle"
    )
    rate.add_argument("--target-psnr", type=float, default=None, metavar="DB", help=psnr_help)
    rate.add_argument("--target-bpp", type=float, default=None, metavar="BPP", help=bpp_help)


def add_actor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--actors`` and ``--cpus-per-actor``: the size of a Ray actor pool."""
    parser.add_argument(
        "--actors", type=int, default=None, help="actors (default: one per GPU, or CPUs / --cpus-per-actor)"
    )
    parser.add_argument("--cpus-per-actor", type=int, default=1, help="CPU cores per actor (default 1)")


def add_s3_endpoint_argument(parser: argparse.ArgumentParser) -> None:
    """Credentials are never flags: S3 keys come from the environment or the AWS config files."""
    parser.add_argument(
        "--s3-endpoint", default=None, help="S3-compatible endpoint URL; keys come from the environment"
    )


def add_no_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (there is none off a terminal)"
    )

"""``--device`` and ``--max-pixels``: the options of every verb that runs a model in this process.

Both are resolved when the verb runs, not when the parser is built, so that building the parser
imports neither torch nor the imaging package (``s2c --help`` and ``s2c info`` start without them).
"""

from __future__ import annotations

import argparse

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


def add_max_pixels_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        metavar="N",
        help="largest width x height handled; larger images are refused (default: the library's "
        "DEFAULT_MAX_PIXELS, 25 million: docs/imaging.md)",
    )


def max_pixels(args: argparse.Namespace) -> int:
    """``--max-pixels``, or the library's default when it is not given."""
    if args.max_pixels is not None:
        return args.max_pixels
    from s2c_pipeline.imaging import DEFAULT_MAX_PIXELS

    return DEFAULT_MAX_PIXELS

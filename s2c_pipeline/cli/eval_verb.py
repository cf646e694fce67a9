"""``s2c eval``: rate-distortion of our models against JPEG, WebP, AVIF and JPEG XL, with BD-rates."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from s2c_pipeline.cli.errors import DataError, UsageError
from s2c_pipeline.cli.options import (
    add_device_argument,
    add_max_pixels_argument,
    add_no_progress_argument,
    add_refine_argument,
    checked_device,
    max_pixels,
    refine_settings,
)
from s2c_pipeline.cli.output import progress_wanted, report

if TYPE_CHECKING:
    from s2c_pipeline.codec.image_codec import ImageCodec
    from s2c_pipeline.evaluate.images import ImageSet

DEFAULT_CODECS = "jpeg,webp,avif,jxl"
COMMANDS = {"eval": "RD curves and BD-rates of our codec against the classical codecs"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help=COMMANDS["eval"], description=COMMANDS["eval"])
    p.add_argument(
        "images",
        nargs="*",
        metavar="IMAGES",
        help="image files or folders to evaluate on, instead of --set (the word eval-photos means "
        "--set evaluation)",
    )
    p.add_argument(
        "--set",
        dest="image_set",
        choices=("evaluation", "validation"),
        default=None,
        help="a photo set: evaluation (default; 26 photos from pip packages, for the results page, "
        "never for choosing) or validation (the split for every choice; made by "
        "python -m s2c_pipeline.photos.fetch)",
    )
    p.add_argument(
        "--photos-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the fetch command put the photos, for --set validation (default data-cache/photos)",
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="a model with bundled weights (repeatable; default: the bundled default model)",
    )
    p.add_argument(
        "--weights",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a checkpoint file to evaluate (repeatable); with --model, both are evaluated",
    )
    p.add_argument(
        "--codecs", default=DEFAULT_CODECS, help=f"classical codecs, or 'none' (default {DEFAULT_CODECS})"
    )
    p.add_argument(
        "--qualities",
        default=None,
        metavar="LIST",
        help="our quality levels, e.g. 1,2,3,4,5,6 or 1,1.5,2 (default: every level 1..N)",
    )
    add_refine_argument(
        p,
        help_text="also evaluate each model at encoder effort N (latent refinement steps, "
        "docs/codec.md) as a variant of its own, NAME+refineN (default 0: plain only)",
    )
    p.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="write every measurement and BD-rate"
    )
    p.add_argument("--plot", type=Path, default=None, metavar="OUT.png", help="write the RD plot")
    p.add_argument("--markdown", type=Path, default=None, metavar="OUT.md", help="write the results page")
    p.add_argument(
        "--note",
        default=None,
        metavar="TEXT",
        help="a paragraph for the results page (which weights, and why)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for torch, AVIF and JPEG XL (default 1, so that times compare)",
    )
    add_device_argument(p)
    add_max_pixels_argument(p)
    add_no_progress_argument(p)
    p.set_defaults(run=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from s2c_pipeline.evaluate import EvalInputError, LearnedContender, classical_codecs
    from s2c_pipeline.evaluate.plot import plot_rd
    from s2c_pipeline.evaluate.report import markdown_report, terminal_report
    from s2c_pipeline.evaluate.run import run_evaluation

    if args.threads < 1:
        raise UsageError("--threads must be at least 1")
    checked_device(args)
    torch.set_num_threads(args.threads)
    names = (
        []
        if args.codecs.strip().lower() in ("", "none")
        else [c.strip().lower() for c in args.codecs.split(",")]
    )
    try:
        classical, skipped = classical_codecs(names, threads=args.threads)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    qualities = _parse_qualities(args.qualities)
    refine = refine_settings(args)
    try:
        learned = []
        for codec, label in _load_codecs(args):
            learned.append(LearnedContender(codec, label, qualities))
            if refine:  # the same weights at encoder effort N, as a variant of their own
                learned.append(LearnedContender(codec, f"{label}+refine{refine.steps}", qualities, refine))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        image_set = _image_set(args)
    except EvalInputError as exc:
        raise DataError(str(exc)) from None

    result = run_evaluation(
        image_set, [*learned, *classical], skipped=skipped, progress=progress_wanted(args)
    )
    command = _command(args)
    report(args, terminal_report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.to_dict(command), indent=1, allow_nan=False) + "\n")
        report(args, f"wrote {args.json}")
    if args.plot:
        report(args, f"wrote {plot_rd(result, args.plot)}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(
            markdown_report(
                result, command=command, plot=args.plot, markdown_path=args.markdown, note=args.note
            )
        )
        report(args, f"wrote {args.markdown}")
    return 0


def _image_set(args: argparse.Namespace) -> ImageSet:
    """Image files and folders, or a photo set (--set; the evaluation set when neither is given)."""
    from s2c_pipeline.evaluate.images import DEFAULT_PHOTOS_DIR, EVALUATION, load_image_set, load_photo_set

    if args.images and args.image_set:
        raise UsageError("give image files or folders, or --set, not both")
    if args.photos_dir is not None and args.image_set != "validation":
        raise UsageError("--photos-dir is for --set validation")
    if args.images:
        return load_image_set(args.images, max_pixels=max_pixels(args))
    return load_photo_set(
        args.image_set or EVALUATION,
        photos_dir=args.photos_dir or DEFAULT_PHOTOS_DIR,
        max_pixels=max_pixels(args),
    )


def _parse_qualities(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(q) for q in text.split(",") if q.strip()]
    except ValueError:
        raise UsageError(f"--qualities takes numbers separated by commas, e.g. 1,2,3; got {text!r}") from None
    if not values:
        raise UsageError("--qualities is empty")
    return values


def _load_codecs(args: argparse.Namespace) -> list[tuple[ImageCodec, str]]:
    """(codec, label) per model: label is the model name, with the weights id if a name repeats."""
    from s2c_pipeline.codec.image_codec import ImageCodec
    from s2c_pipeline.codec.weights import WeightsNotFound

    try:
        codecs = [ImageCodec.load(m, device=args.device) for m in args.model]
        codecs += [ImageCodec.load(weights_file=w, device=args.device) for w in args.weights]
        if not codecs:
            codecs = [ImageCodec.load(device=args.device)]
    except (WeightsNotFound, KeyError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    except OSError as exc:
        raise UsageError(f"cannot read weights: {exc}") from None
    names = [c.model_name for c in codecs]
    labelled = []
    for codec in codecs:
        unique = names.count(codec.model_name) == 1
        labelled.append(
            (codec, codec.model_name if unique else f"{codec.model_name}@{codec.weights.weights_id[:8]}")
        )
    if len({label for _, label in labelled}) < len(labelled):
        raise UsageError("the same weights are given twice")
    return labelled


def _command(args: argparse.Namespace) -> str:
    """The canonical command line for this run, which the JSON and the results page record."""
    words = ["s2c", "eval", *args.images]
    if args.image_set:
        words += ["--set", args.image_set]
    if args.photos_dir is not None:
        words += ["--photos-dir", str(args.photos_dir)]
    for name in args.model:
        words += ["--model", name]
    for path in args.weights:
        words += ["--weights", str(path)]
    if args.codecs != DEFAULT_CODECS:
        words += ["--codecs", args.codecs]
    if args.refine_steps:
        words += ["--refine-steps", str(args.refine_steps)]
    for flag, value in (
        ("--qualities", args.qualities),
        ("--json", args.json),
        ("--plot", args.plot),
        ("--markdown", args.markdown),
        ("--device", args.device),
        ("--note", args.note),
    ):
        if value is not None:
            words += [flag, str(value)]
    if args.threads != 1:
        words += ["--threads", str(args.threads)]
    if args.max_pixels is not None:
        words += ["--max-pixels", str(args.max_pixels)]
    return shlex.join(words)

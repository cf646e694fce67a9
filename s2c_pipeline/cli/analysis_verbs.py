"""``s2c analyze`` and ``s2c report``: storage-cost analysis before a run, and the summary of one.

Logic lives in s2c_pipeline.analysis; this module parses, loads, calls and prints. As for the
pipeline verbs, S3 credentials come from the environment and only the endpoint is a flag.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

from s2c_pipeline.archive.status import Status
from s2c_pipeline.cli.errors import DataError, UsageError
from s2c_pipeline.cli.options import (
    add_device_argument,
    add_inputs_argument,
    add_max_pixels_argument,
    add_model_arguments,
    add_no_progress_argument,
    add_s3_endpoint_argument,
    checked_device,
    max_pixels,
)
from s2c_pipeline.cli.output import progress_wanted, report

DEFAULT_SAMPLE = 200
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgtpe]?)(i?)b?\s*$", re.IGNORECASE)
COMMANDS = {
    "analyze": "estimate a dataset's compressed size and storage cost from a sample",
    "report": "summarise an `s2c compress` output prefix (finished or partial)",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help=COMMANDS["analyze"], description=COMMANDS["analyze"])
    add_inputs_argument(p)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--sample", type=int, default=None, metavar="N", help="images to code (default 200)")
    size.add_argument(
        "--fraction",
        type=float,
        default=None,
        metavar="F",
        help="code this fraction of the dataset's (projected) images instead",
    )
    p.add_argument(
        "--shards",
        type=int,
        default=None,
        metavar="K",
        help="shards to read and spread the sample over (default: sample size / 10)",
    )
    level = p.add_mutually_exclusive_group()
    level.add_argument(
        "--qualities",
        default=None,
        metavar="Q,Q,...",
        help="quality levels, comma-separated, or 'all' (default: lowest, middle, highest); each classical "
        "codec is matched to our mean PSNR at each level",
    )
    level.add_argument(
        "--target-psnr",
        type=float,
        default=None,
        metavar="DB",
        help="instead of levels: every codec, per image, at the smallest setting reaching this PSNR",
    )
    p.add_argument(
        "--codecs",
        default="auto",
        metavar="NAME,...",
        help="classical codecs coded next to ours: jpeg,webp,avif,jxl; 'auto' (default): those installed; "
        "'none': ours only",
    )
    p.add_argument(
        "--group-by",
        default="cls",
        metavar="FIELD",
        help="label for the per-group table: a member extension such as cls (default), or a field of the "
        "sample's .json (dots for nested keys)",
    )
    p.add_argument(
        "--prices",
        type=Path,
        default=None,
        metavar="FILE",
        help="a YAML or JSON price table overriding the built-in one (docs/analysis.md)",
    )
    p.add_argument(
        "--assume-size",
        default=None,
        metavar="SIZE",
        help="price a dataset of SIZE (e.g. 500TB) made of shards like these",
    )
    p.add_argument(
        "--cpu-hour-price",
        type=float,
        default=None,
        metavar="USD",
        help="price of one CPU core-hour (default: the dated list price in docs/analysis.md)",
    )
    p.add_argument(
        "--gpu-hour-price",
        type=float,
        default=None,
        metavar="USD",
        help="price of one GPU-hour (default: the dated list price in docs/analysis.md)",
    )
    p.add_argument(
        "--gpu-images-per-s",
        type=float,
        default=None,
        metavar="R",
        help="our codec's throughput on one GPU for images like these (default: a committed GPU benchmark)",
    )
    p.add_argument(
        "--reads-per-month",
        type=float,
        default=0.0,
        metavar="N",
        help="images decoded per month once stored, priced as decode compute (default 0)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling and bootstrap seed (default 0)")
    p.add_argument("--replicates", type=int, default=2000, help="bootstrap replicates (default 2000)")
    p.add_argument(
        "--out", type=Path, default=Path("out/analysis"), help="report folder (default out/analysis)"
    )
    add_model_arguments(p)
    add_device_argument(p)
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes coding the sample on CPU, one torch thread each (default 1: this process)",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads with --workers 1 (default: torch's)"
    )
    add_max_pixels_argument(p)
    add_s3_endpoint_argument(p)
    add_no_progress_argument(p)
    p.set_defaults(run=run_analyze, default_of=p.get_default)

    p = sub.add_parser("report", help=COMMANDS["report"], description=COMMANDS["report"])
    p.add_argument("prefix", metavar="PREFIX", help="local folder or s3://bucket/prefix")
    p.add_argument("--out", type=Path, default=Path("out/report"), help="report folder (default out/report)")
    p.add_argument(
        "--prices",
        type=Path,
        default=None,
        metavar="FILE",
        help="a YAML or JSON price table over the built-in one, for the $ figures (docs/analysis.md)",
    )
    add_s3_endpoint_argument(p)
    p.set_defaults(run=run_report, default_of=p.get_default)


def parse_size(text: str) -> float:
    """``500TB`` -> 5e14 bytes, ``2TiB`` -> 2 * 2**40; a bare number is bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size such as 800GB, 500TB or 2PiB")
    number, unit, binary = match.groups()
    power = "kmgtpe".find(unit.lower()) + 1 if unit else 0
    return float(number) * (1024 if binary else 1000) ** power


def _qualities(text: str | None, num_qualities: int) -> tuple[float, ...] | None:
    if text is None:
        return None
    if text.strip().lower() == "all":
        return tuple(float(q) for q in range(1, num_qualities + 1))
    try:
        return tuple(float(q) for q in text.split(",") if q.strip())
    except ValueError:
        raise UsageError(f"--qualities {text!r}: expected numbers separated by commas, or 'all'") from None


def _codecs(text: str) -> tuple[str, ...]:
    """``auto``: every classical codec this install can write; a list: exactly those, each usable."""
    from s2c_pipeline.evaluate import CLASSICAL_NAMES, classical_codecs

    words = [c.strip().lower() for c in text.split(",") if c.strip()]
    if words in ([], ["none"]):
        return ()
    if words == ["auto"]:  # the ones not installed are listed in the report as left out
        return CLASSICAL_NAMES
    unknown = [c for c in words if c not in CLASSICAL_NAMES]
    if unknown:
        raise UsageError(f"--codecs: unknown codec {', '.join(unknown)}; known: {', '.join(CLASSICAL_NAMES)}")
    _, skipped = classical_codecs(words)
    if skipped:
        name, why = next(iter(skipped.items()))
        raise UsageError(f"--codecs: {name} is not installed ({why}); or leave it out of --codecs")
    return tuple(words)


def _compute_options(args: argparse.Namespace):
    from s2c_pipeline.analysis.compute_prices import CPU_HOUR, GPU_HOUR, ComputeOptions, given_price

    for flag, value in (
        ("--cpu-hour-price", args.cpu_hour_price),
        ("--gpu-hour-price", args.gpu_hour_price),
        ("--reads-per-month", args.reads_per_month),
    ):
        if value is not None and not (value >= 0 and value < float("inf")):
            raise UsageError(f"{flag} {value:g}: expected a number >= 0")
    if args.gpu_images_per_s is not None and not 0 < args.gpu_images_per_s < float("inf"):
        raise UsageError(f"--gpu-images-per-s {args.gpu_images_per_s:g}: expected a number > 0")
    return ComputeOptions(
        cpu=CPU_HOUR if args.cpu_hour_price is None else given_price(args.cpu_hour_price, CPU_HOUR.unit),
        gpu=GPU_HOUR if args.gpu_hour_price is None else given_price(args.gpu_hour_price, "GPU-hour"),
        gpu_images_per_s=args.gpu_images_per_s,
        reads_per_month=args.reads_per_month,
    )


def _storage_options(endpoint: str | None) -> dict:
    if endpoint is None:
        return {}
    from s2c_pipeline.shards.storage import s3_storage_options

    return s3_storage_options(endpoint)


def _command(verb: str, args: argparse.Namespace) -> str:
    """The command line that reproduces this run: positionals, then every option not at its default."""
    skip = {"run", "default_of", "verb", "verbose", "quiet", "inputs", "prefix", "no_progress"}
    words = ["s2c", verb, *getattr(args, "inputs", []), *([args.prefix] if hasattr(args, "prefix") else [])]
    for name, value in vars(args).items():
        if name in skip or value == args.default_of(name):
            continue
        words += [f"--{name.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return shlex.join(words)


def run_analyze(args: argparse.Namespace) -> int:
    from s2c_pipeline.analysis import PriceFileError, load_prices
    from s2c_pipeline.analysis.sampling import SampleDesign

    try:  # everything a typo can break is checked before the heavy imports and the first image
        prices = load_prices(args.prices)
        priced = parse_size(args.assume_size) if args.assume_size else None
        images = args.sample if args.sample is not None or args.fraction is not None else DEFAULT_SAMPLE
        design = SampleDesign(images=images, fraction=args.fraction, shards=args.shards, seed=args.seed)
    except (PriceFileError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.target_psnr is not None and not 0 < args.target_psnr < 100:
        raise UsageError(f"--target-psnr {args.target_psnr:g}: expected a PSNR in dB between 0 and 100")
    codecs = _codecs(args.codecs)
    compute = _compute_options(args)

    import torch

    from s2c_pipeline.analysis.analysis_report import write_analysis_report
    from s2c_pipeline.analysis.analyze import AnalyzeOptions, analyze
    from s2c_pipeline.analysis.sampling import SampleError
    from s2c_pipeline.codec.image_codec import ImageCodec
    from s2c_pipeline.codec.weights import WeightsNotFound

    device = checked_device(args)
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    try:
        codec = ImageCodec.load(args.model, weights_file=args.weights, device=device)
    except (WeightsNotFound, KeyError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    options = AnalyzeOptions(
        design=design,
        qualities=_qualities(args.qualities, codec.num_qualities),
        target_psnr=args.target_psnr,
        codecs=codecs,
        group_by=args.group_by or None,
        max_pixels=max_pixels(args),
        workers=max(1, args.workers),
        replicates=args.replicates,
        show_progress=progress_wanted(args),
        storage_options=_storage_options(args.s3_endpoint),
    )
    try:
        analysis = analyze(args.inputs, codec, options)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    except (SampleError, OSError) as exc:
        raise DataError(str(exc)) from None
    paths = write_analysis_report(
        analysis, prices, args.out, command=_command("analyze", args), priced_bytes=priced, compute=compute
    )
    report(args, _analysis_summary(analysis, paths))
    return 0


def _analysis_summary(analysis, paths: list[Path]) -> str:
    from s2c_pipeline.analysis.codec_report import verdict
    from s2c_pipeline.analysis.document import fmt_bytes

    d = analysis.dataset_bytes
    lines = [
        f"{len(analysis.shard_sizes)} shards, {fmt_bytes(d)}; sampled {len(analysis.results)} images from "
        f"{len(analysis.tallies)} shards in {analysis.seconds:.0f} s; {analysis.model_name} ({analysis.weights_id})",
        f"{'codec':<16} {'setting':<22} {'bpp':>7} {'PSNR dB':>8}  {'projected output [95% interval]':<34} "
        f"{'saved':>6}",
    ]
    for index in range(len(analysis.per_quality)):
        for q in analysis.rows(index):
            out = q.projection.output_bytes
            interval = f"{fmt_bytes(out.value)} [{fmt_bytes(out.low)}, {fmt_bytes(out.high)}]"
            lines.append(
                f"{q.codec:<16} {q.setting.removeprefix('per image: '):<22} {q.bpp.mean:>7.3f} "
                f"{q.psnr.mean:>8.2f}  {interval:<34} "
                f"{100 * q.projection.savings_bytes.value / d:>5.1f}%"
            )
    lines.append(verdict(analysis).replace("**", ""))
    lines.append(f"report: {paths[1]} (also {', '.join(p.name for p in paths if p != paths[1])})")
    return "\n".join(lines)


def run_report(args: argparse.Namespace) -> int:
    from s2c_pipeline.analysis import PriceFileError, load_prices
    from s2c_pipeline.analysis.run_report import write_run_report
    from s2c_pipeline.analysis.run_summary import summarize_prefix

    try:
        prices = load_prices(args.prices)
    except PriceFileError as exc:
        raise UsageError(str(exc)) from None
    try:
        summary = summarize_prefix(args.prefix, storage_options=_storage_options(args.s3_endpoint))
    except FileNotFoundError as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    except OSError as exc:
        raise DataError(f"{args.prefix}: {exc}") from None
    paths = write_run_report(summary, args.out, command=_command("report", args), prices=prices)
    ok = summary.statuses.get(Status.OK, 0)
    report(
        args,
        f"{summary.prefix}: {len(summary.shards)} committed shards, {summary.samples} samples ({ok} ok), "
        f"saved {summary.saved_bytes} of {summary.source_shard_bytes} bytes\n"
        f"report: {paths[1]} (also {', '.join(p.name for p in paths if p != paths[1])})",
    )
    return 0

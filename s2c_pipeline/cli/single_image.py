"""``s2c encode``, ``decode``, ``info``, ``models``: the cwebp/dwebp experience for one image.

``-`` as a file name is stdin or stdout; the statistics line then goes to stderr. torch and the
codec are imported inside the verbs that use them, so that ``info`` starts without them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import pickle
from collections.abc import Iterator
from pathlib import Path

from s2c_pipeline.cli.errors import DataError, UsageError
from s2c_pipeline.cli.options import (
    add_device_argument,
    add_extra_weights_argument,
    add_max_pixels_argument,
    add_model_arguments,
    add_rate_arguments,
    add_refine_argument,
    checked_device,
    max_pixels,
    refine_settings,
)
from s2c_pipeline.cli.output import (
    check_writable,
    is_stdio,
    progress_wanted,
    read_input,
    report,
    write_output,
)

log = logging.getLogger(__name__)

COMMANDS = {
    "encode": "compress one image into a .s2c file",
    "decode": "decompress a .s2c file into a PNG, WebP, TIFF or PPM file (by its extension)",
    "info": "print a .s2c header as JSON",
    "models": "list the model zoo and the bundled weights",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help=COMMANDS["encode"], description=COMMANDS["encode"])
    p.add_argument("image", type=Path, help="the image to compress; - reads it from stdin")
    p.add_argument("output", type=Path, help="the .s2c file to write; - writes it to stdout")
    add_model_arguments(p)
    add_rate_arguments(
        p,
        psnr_help="use the lowest quality whose PSNR reaches DB",
        bpp_help="use the highest quality whose size stays within BPP bits per pixel",
    )
    add_refine_argument(p)
    add_max_pixels_argument(p)
    add_device_argument(p)
    p.set_defaults(run=run_encode)

    p = sub.add_parser("decode", help=COMMANDS["decode"], description=COMMANDS["decode"])
    p.add_argument("input", type=Path, help="the .s2c file; - reads it from stdin")
    p.add_argument(
        "output",
        type=Path,
        help="the image to write, lossless, in the format its extension names: .png, .webp, .tif/.tiff, "
        ".ppm/.pnm; - writes a PNG to stdout",
    )
    add_extra_weights_argument(p)
    add_max_pixels_argument(p)
    add_device_argument(p)
    p.set_defaults(run=run_decode)

    p = sub.add_parser("info", help=COMMANDS["info"], description=COMMANDS["info"])
    p.add_argument("input", type=Path, help="the .s2c file; - reads it from stdin")
    p.set_defaults(run=run_info)

    p = sub.add_parser("models", help=COMMANDS["models"], description=COMMANDS["models"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_models)


def _source(path: Path) -> str:
    return "<stdin>" if is_stdio(path) else str(path)


def _destination(path: Path) -> str:
    return "<stdout>" if is_stdio(path) else str(path)


def run_encode(args: argparse.Namespace) -> int:
    from s2c_pipeline.codec.image_codec import ImageCodec, default_quality
    from s2c_pipeline.codec.target import encode_to_target
    from s2c_pipeline.codec.weights import WeightsNotFound
    from s2c_pipeline.imaging import ImageRejected, load_image, metrics

    refine = refine_settings(args)
    device = checked_device(args)
    check_writable(args.output)
    try:
        codec = ImageCodec.load(args.model, weights_file=args.weights, device=device)
    except WeightsNotFound as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    except (OSError, ValueError, KeyError, RuntimeError, pickle.UnpicklingError) as exc:
        if args.weights is None:
            raise  # the bundled weights failing to load is a broken installation, not the user's doing
        raise DataError(f"--weights {args.weights}: not a usable s2c-pipeline checkpoint ({exc})") from None
    quality = args.quality if args.quality is not None else default_quality(codec.num_qualities)
    if not 1 <= quality <= codec.num_qualities:
        raise UsageError(f"--quality must be within 1..{codec.num_qualities} for {codec.model_name}")
    try:
        image = load_image(read_input(args.image), max_pixels=max_pixels(args))
    except ImageRejected as exc:
        raise DataError(f"{_source(args.image)}: {exc}") from None
    note = ""
    search = args.target_psnr is not None or args.target_bpp is not None
    with _refine_progress(args, refine, search=search) as refine:
        if search:
            result = encode_to_target(
                codec, image, target_psnr=args.target_psnr, target_bpp=args.target_bpp, refine=refine
            )
            data, decoded, quality = result.data, result.decoded, result.quality
            note = f", target {'reached' if result.reached else 'NOT reached'} in {result.probes} probes"
        else:
            data, decoded, _ = codec.encode_timed(image, quality, refine)
    write_output(args.output, data)
    bpp = len(data) * 8 / (image.width * image.height)
    report(
        args,
        f"{_source(args.image)} -> {_destination(args.output)}: {len(data)} bytes, {bpp:.4f} bpp, "
        f"PSNR {metrics.psnr(image.rgb, decoded.rgb):.2f} dB, quality {quality:g}, "
        f"{codec.model_name} ({codec.weights.weights_id}){note}"
        + (f", refined {refine.steps} steps" if refine else ""),
        to_stderr=is_stdio(args.output),
    )
    return 0


@contextlib.contextmanager
def _refine_progress(args: argparse.Namespace, refine, *, search: bool) -> Iterator:
    """``refine`` with a progress bar over its steps on a terminal (a target search refines each of
    its probes, a number not known in advance)."""
    if refine is None or not progress_wanted(args):
        yield refine
        return
    from tqdm import tqdm

    with tqdm(total=None if search else refine.steps, desc="refine", unit="step", leave=False) as bar:
        yield dataclasses.replace(refine, on_step=bar.update)


def run_decode(args: argparse.Namespace) -> int:
    from s2c_pipeline.bitstream import BitstreamError, decode_container
    from s2c_pipeline.codec.image_codec import codec_for_bitstream
    from s2c_pipeline.imaging.output_formats import PNG, format_for

    device = checked_device(args)
    try:
        fmt = PNG if is_stdio(args.output) else format_for(args.output)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    check_writable(args.output)
    data, source = read_input(args.input), _source(args.input)
    try:
        parsed = decode_container(data, source=source)
        header = parsed.header
        try:
            fmt.check(
                _destination(args.output),
                width=header.width,
                height=header.height,
                alpha=parsed.alpha is not None,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        codec = codec_for_bitstream(data, source=source, extra_weights=args.weights, device=device)
        decoded = codec.decode(data, source=source, max_pixels=max_pixels(args))
    except BitstreamError as exc:
        raise DataError(str(exc)) from None
    write_output(args.output, fmt.encode(decoded.image, _destination(args.output)))
    report(
        args,
        f"{source} -> {_destination(args.output)}: {header.width}x{header.height} {decoded.image.mode} {fmt.name}, "
        f"{header.model_name} q{header.quality:g}",
        to_stderr=is_stdio(args.output),
    )
    return 0


def run_info(args: argparse.Namespace) -> int:
    from s2c_pipeline.bitstream import BitstreamError, decode_container, header_to_dict

    data = read_input(args.input)
    try:
        parsed = decode_container(data, source=_source(args.input))
    except BitstreamError as exc:
        raise DataError(str(exc)) from None
    print(json.dumps(header_to_dict(parsed), indent=2))
    return 0


def run_models(args: argparse.Namespace) -> int:
    from s2c_pipeline.catalogue import describe_models  # JSON only: no torch

    rows = describe_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<22} {'params':>9} {'levels':>6}  {'bundled weights (sha256)':<64}")
    for r in rows:
        weights = r["weights_sha256"] or "-"
        levels = str(r["bundled_qualities"] or "-")
        print(
            f"{r['name']:<22} {r['params_m']:>8.2f}M {levels:>6}  {weights}{' (default)' if r['default'] else ''}"
        )
    return 0

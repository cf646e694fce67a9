"""``s2c encode``, ``decode``, ``info``, ``models``: the cwebp/dwebp experience for one image."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from s2c_pipeline.bitstream import BitstreamError, decode_container, header_to_dict
from s2c_pipeline.cli.errors import DataError, UsageError
from s2c_pipeline.cli.refine_option import add_refine_argument, refine_settings
from s2c_pipeline.codec import describe_models
from s2c_pipeline.codec.image_codec import ImageCodec, codec_for_bitstream, default_quality
from s2c_pipeline.codec.target import encode_to_target
from s2c_pipeline.codec.weights import WeightsNotFound
from s2c_pipeline.imaging import DEFAULT_MAX_PIXELS, ImageRejected, image_to_png_bytes, load_image, metrics


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="compress one image into a .s2c file")
    p.add_argument("image", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--model", default=None, help="model name (default: the bundled default model)")
    p.add_argument("--weights", type=Path, default=None, help="a checkpoint file instead of bundled weights")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--quality", type=float, default=None, help="1 (smallest) .. number of levels; default: middle")
    target.add_argument("--target-psnr", type=float, default=None, metavar="DB",
                        help="use the lowest quality whose PSNR reaches DB")
    target.add_argument("--target-bpp", type=float, default=None, metavar="BPP",
                        help="use the highest quality whose size stays within BPP bits per pixel")
    add_refine_argument(p)
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.set_defaults(run=run_encode)

    p = sub.add_parser("decode", help="decompress a .s2c file into a PNG")
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--weights", type=Path, action="append", default=[], help="extra checkpoint files to search")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    p.add_argument("--device", default=None)
    p.set_defaults(run=run_decode)

    p = sub.add_parser("info", help="print a .s2c header as JSON")
    p.add_argument("input", type=Path)
    p.set_defaults(run=run_info)

    p = sub.add_parser("models", help="list the model zoo and the bundled weights")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_models)


def _read(path: Path) -> bytes:

    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def run_encode(args: argparse.Namespace) -> int:
    refine = refine_settings(args)
    try:
        codec = ImageCodec.load(args.model, weights_file=args.weights, device=args.device)
    except (WeightsNotFound, KeyError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    quality = args.quality if args.quality is not None else default_quality(codec.num_qualities)
    if not 1 <= quality <= codec.num_qualities:
        raise UsageError(f"--quality must be within 1..{codec.num_qualities} for {codec.model_name}")
    try:
        image = load_image(_read(args.image), max_pixels=args.max_pixels)
    except ImageRejected as exc:
        raise DataError(f"{args.image}: {exc}") from None
    note = ""
    if args.target_psnr is not None or args.target_bpp is not None:
        result = encode_to_target(
            codec, image, target_psnr=args.target_psnr, target_bpp=args.target_bpp, refine=refine
        )
        data, decoded, quality = result.data, result.decoded, result.quality
        note = f", target {'reached' if result.reached else 'NOT reached'} in {result.probes} probes"
    else:
        data, decoded, _ = codec.encode_timed(image, quality, refine)
    args.output.write_bytes(data)
    bpp = len(data) * 8 / (image.width * image.height)
    print(
        f"{args.image} -> {args.output}: {len(data)} bytes, {bpp:.4f} bpp, "
        f"PSNR {metrics.psnr(image.rgb, decoded.rgb):.2f} dB, quality {quality:g}, "
        f"{codec.model_name} ({codec.weights.weights_id}){note}"
        + (f", refined {refine.steps} steps" if refine else "")
    )
    return 0


def run_decode(args: argparse.Namespace) -> int:

    data = _read(args.input)
    try:
        codec = codec_for_bitstream(data, source=str(args.input), extra_weights=args.weights, device=args.device)
        decoded = codec.decode(data, source=str(args.input), max_pixels=args.max_pixels)
    except BitstreamError as exc:
        raise DataError(str(exc)) from None
    args.output.write_bytes(image_to_png_bytes(decoded.image))
    h = decoded.header
    print(f"{args.input} -> {args.output}: {h.width}x{h.height} {decoded.image.mode}, {h.model_name} q{h.quality:g}")
    return 0


def run_info(args: argparse.Namespace) -> int:

    data = _read(args.input)
    try:
        parsed = decode_container(data, source=str(args.input))
    except BitstreamError as exc:
        raise DataError(str(exc)) from None
    print(json.dumps(header_to_dict(parsed), indent=2))
    return 0


def run_models(args: argparse.Namespace) -> int:
    rows = describe_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<22} {'params':>9} {'levels':>6}  {'bundled weights (sha256)':<64}")
    for r in rows:
        weights = r["weights_sha256"] or "-"
        levels = str(r["bundled_qualities"] or "-")
        print(f"{r['name']:<22} {r['params_m']:>8.2f}M {levels:>6}  {weights}{' (default)' if r['default'] else ''}")
    return 0

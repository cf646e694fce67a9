"""``s2c compress``, ``decompress``, ``verify``: the pipeline's thin face (logic in s2c_pipeline.pipeline).

Credentials are never flags: S3 keys come from the environment or the standard AWS config files,
and only the endpoint is given here (``--s3-endpoint``). Exit codes: 0 ok, 1 failed shards / bad
data / verification problems, 2 usage.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from s2c_pipeline.cli.errors import EXIT_BAD_DATA, EXIT_OK, DataError, UsageError
from s2c_pipeline.cli.options import (
    add_actor_arguments,
    add_extra_weights_argument,
    add_inputs_argument,
    add_max_pixels_argument,
    add_model_arguments,
    add_no_progress_argument,
    add_rate_arguments,
    add_refine_argument,
    add_s3_endpoint_argument,
    max_pixels,
)
from s2c_pipeline.cli.output import progress_wanted, report

COMMANDS = {
    "compress": "compress WebDataset shards on Ray into .s2c shards with manifests",
    "decompress": "decode a compressed prefix into PNG files or WebDataset shards",
    "verify": "check markers, tars, manifests and bitstream CRCs of a prefix",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Imports the shards package for its defaults: only ``s2c compress``, ``decompress`` and
    ``verify`` build these parsers (cli/main.py)."""
    from s2c_pipeline.shards import DEFAULT_MAX_MEMBER_BYTES

    p = sub.add_parser("compress", help=COMMANDS["compress"], description=COMMANDS["compress"])
    add_inputs_argument(p)
    p.add_argument("output_prefix", metavar="OUTPUT_PREFIX", help="local folder or s3://bucket/prefix")
    add_model_arguments(p)
    add_rate_arguments(
        p,
        psnr_help="per image, the lowest quality whose PSNR reaches DB",
        bpp_help="per image, the highest quality within BPP bits per pixel",
    )
    add_actor_arguments(p)
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images of one padded size per pass on the device (default: 8 on a GPU, 1 on a CPU)",
    )
    add_refine_argument(p)
    p.add_argument("--max-attempts", type=int, default=3, help="tries per shard before it is reported failed")
    add_max_pixels_argument(
        p, help_text="larger images are not coded: skipped_too_large (default: the library's 25 million)"
    )
    p.add_argument(
        "--max-member-bytes",
        type=int,
        default=DEFAULT_MAX_MEMBER_BYTES,
        metavar="BYTES",
        help=f"larger tar members are not read: images skipped_too_large (default {DEFAULT_MAX_MEMBER_BYTES})",
    )
    p.add_argument(
        "--retry-failed", action="store_true", help="redo only the samples not coded in earlier runs"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list the shards to do and the ones done, then stop"
    )
    _cluster_arguments(p)
    p.set_defaults(run=run_compress)

    p = sub.add_parser("decompress", help=COMMANDS["decompress"], description=COMMANDS["decompress"])
    p.add_argument("prefix", metavar="PREFIX")
    p.add_argument("output", metavar="OUTPUT", help="folder (or URL) to write into")
    p.add_argument("--keys", type=Path, default=None, help="file with one sample key per line")
    p.add_argument(
        "--where", default=None, help='manifest filter, e.g. "bpp > 0.5" or "psnr < 30 and status == \'ok\'"'
    )
    p.add_argument("--format", choices=("png", "webdataset"), default="png")
    _decode_arguments(p)
    p.set_defaults(run=run_decompress)

    p = sub.add_parser("verify", help=COMMANDS["verify"], description=COMMANDS["verify"])
    p.add_argument("prefix", metavar="PREFIX")
    p.add_argument("--decode", action="store_true", help="also decode every bitstream and compare hashes")
    _decode_arguments(p)
    p.set_defaults(run=run_verify)


def _cluster_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address", default=None, help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)"
    )
    add_s3_endpoint_argument(p)
    add_no_progress_argument(p)


def _decode_arguments(p: argparse.ArgumentParser) -> None:
    add_extra_weights_argument(p)
    add_actor_arguments(p)
    add_max_pixels_argument(p)
    _cluster_arguments(p)


def _local_ray_on_loopback(args: argparse.Namespace) -> None:
    """A Ray started here serves this machine only: bind it to 127.0.0.1 (must precede `import ray`)."""
    if not args.address and not os.environ.get("RAY_ADDRESS"):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def run_compress(args: argparse.Namespace) -> int:
    """Usage errors (exit 2) are those of the arguments, found before any work: RunConfig's checks,
    --model/--weights/--quality, a prefix written with other settings, inputs that match nothing.
    Anything raised once the work has started is exit 1, one line."""
    _local_ray_on_loopback(args)
    from s2c_pipeline.codec.weights import WeightsNotFound
    from s2c_pipeline.pipeline import ResumeRefused, RunConfig, SchedulerError, compress, format_summary
    from s2c_pipeline.pipeline.compress.weights_spec import resolve_codec, resolve_quality
    from s2c_pipeline.shards.storage import s3_storage_options

    weights = None if args.weights is None else str(args.weights)
    try:
        config = RunConfig(
            model=args.model,
            weights=weights,
            quality=args.quality,
            target=_target(args),
            actors=args.actors,
            cpus_per_actor=args.cpus_per_actor,
            batch_size=args.batch_size,
            refine_steps=args.refine_steps,
            max_attempts=args.max_attempts,
            max_pixels=max_pixels(args),
            max_member_bytes=args.max_member_bytes,
            retry_failed=args.retry_failed,
            dry_run=args.dry_run,
            address=args.address,
            show_progress=progress_wanted(args),
            storage_options=s3_storage_options(args.s3_endpoint),
        )
        codec = resolve_codec(args.model, weights)
        resolve_quality(args.quality, codec)  # as compress will
    except (ValueError, WeightsNotFound) as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    except OSError as exc:
        raise UsageError(f"--weights {args.weights}: cannot read ({exc.strerror or exc})") from None
    try:
        summary = compress(args.inputs, args.output_prefix, config, codec=codec)
    except (ResumeRefused, FileNotFoundError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    except (SchedulerError, OSError, ValueError, KeyError) as exc:
        raise DataError(str(exc).strip("'\"")) from None
    report(args, format_summary(summary), problem=bool(summary.failed))
    if args.dry_run:
        for shard_id in summary.todo:
            print(f"to do: {shard_id}")
    return EXIT_BAD_DATA if summary.failed else EXIT_OK


def _decode_config(args: argparse.Namespace):
    from s2c_pipeline.pipeline import DecodeConfig
    from s2c_pipeline.shards.storage import s3_storage_options

    return DecodeConfig(
        actors=args.actors,
        cpus_per_actor=args.cpus_per_actor,
        max_pixels=max_pixels(args),
        address=args.address,
        show_progress=progress_wanted(args),
        extra_weights=tuple(str(w) for w in args.weights),
        storage_options=s3_storage_options(args.s3_endpoint),
    )


def run_decompress(args: argparse.Namespace) -> int:
    _local_ray_on_loopback(args)
    from s2c_pipeline.pipeline import SchedulerError, SelectionError, decompress
    from s2c_pipeline.pipeline.decompress.selection import read_key_file

    keys = None
    if args.keys is not None:
        try:
            keys = read_key_file(args.keys.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"--keys {args.keys}: cannot read ({exc.strerror or exc})") from None
    try:
        summary = decompress(
            args.prefix,
            args.output,
            keys=keys,
            where=args.where,
            format=args.format,
            config=_decode_config(args),
        )
    except (SelectionError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    except (SchedulerError, OSError, ValueError) as exc:
        raise DataError(str(exc)) from None
    report(args, summary.format(), problem=not summary.ok)
    return EXIT_OK if summary.ok else EXIT_BAD_DATA


def run_verify(args: argparse.Namespace) -> int:
    _local_ray_on_loopback(args)
    from s2c_pipeline.pipeline import SchedulerError, verify

    try:
        checked = verify(args.prefix, decode=args.decode, config=_decode_config(args))
    except (SchedulerError, OSError) as exc:
        raise DataError(str(exc)) from None
    report(args, checked.format(), problem=not checked.ok)
    return EXIT_OK if checked.ok else EXIT_BAD_DATA


def _target(args: argparse.Namespace):
    from s2c_pipeline.codec.target import RateTarget

    if args.target_psnr is not None:
        return RateTarget("psnr", args.target_psnr)
    if args.target_bpp is not None:
        return RateTarget("bpp", args.target_bpp)
    return None

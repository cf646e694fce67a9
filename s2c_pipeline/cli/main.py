"""``s2c``: one argparse parser, one module per verb. Exit codes: 0 ok, 1 bad data or unreachable
storage, 2 bad usage."""

from __future__ import annotations

import argparse
import logging
import sys

from s2c_pipeline import __version__
from s2c_pipeline.cli import analysis_verbs, demo, eval_verb, pipeline_verbs, single_image, train
from s2c_pipeline.cli.errors import EXIT_BAD_DATA, EXIT_OK, EXIT_USAGE, DataError, UsageError

VERBS = (single_image, pipeline_verbs, analysis_verbs, train, eval_verb, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2c", description="Learned image compression at scale (S2CFormer)."
    )
    parser.add_argument("--version", action="version", version=f"s2c-pipeline {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    for module in VERBS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.verbose:
        # Only our own loggers: botocore's DEBUG output includes request headers (access key ids).
        logging.getLogger("s2c_pipeline").setLevel(logging.DEBUG)
    try:
        return int(args.run(args) or EXIT_OK)
    except UsageError as exc:
        print(f"s2c {args.verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DataError as exc:
        print(f"s2c {args.verb}: {exc}", file=sys.stderr)
        return EXIT_BAD_DATA
    except KeyboardInterrupt:
        print(f"s2c {args.verb}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # A storage server that does not answer surfaces from deep in s3fs/botocore, in any verb,
        # as ~150 lines of traceback; it is not a bug, so it gets one line. Anything else propagates.
        from s2c_pipeline.shards.storage import unreachable_endpoint_message

        message = unreachable_endpoint_message(exc)
        if message is None:
            raise
        print(f"s2c {args.verb}: {message}", file=sys.stderr)
        return EXIT_BAD_DATA

"""``s2c``: one argparse parser, one module per group of verbs.

Exit codes: 0 ok; 1 the work failed (bad data, a file that cannot be read or written, unreachable
storage, failed shards); 2 bad usage, meaning the arguments as checked before any work starts.

Start-up: a first parse that knows only the verbs' names (each module's ``COMMANDS``) finds the
verb, then only that verb's module adds its options, and verb modules import torch, Ray and the
rest inside the functions that use them. So ``s2c --help``, ``--version`` and ``info`` start in a
fraction of a second; ``-v`` and ``-q`` go before or after the verb.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from types import ModuleType

from s2c_pipeline import __version__
from s2c_pipeline.cli import analysis_verbs, demo, eval_verb, pipeline_verbs, single_image, train
from s2c_pipeline.cli.errors import EXIT_BAD_DATA, EXIT_OK, EXIT_USAGE, DataError, UsageError

VERBS = (single_image, pipeline_verbs, analysis_verbs, train, eval_verb, demo)
"""Each has ``COMMANDS`` (verb name -> one-line summary) and ``register(subparsers)``."""


class VerbParser(argparse.ArgumentParser):
    """A verb's parser: it takes ``-v``/``-q`` too, so that they also work after the verb."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        _add_verbosity(self, default=argparse.SUPPRESS)  # absent: the top level's value stands


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="DEBUG log lines from s2c-pipeline's own modules (other libraries stay at INFO), and "
        "the Ray dashboard's address when a local Ray starts",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="only warnings and errors: no INFO lines, progress bars or summaries (a summary that "
        "reports a problem is still printed)",
    )


def _top_level() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(
        prog="s2c", description="Learned image compression at scale (S2CFormer)."
    )
    parser.add_argument("--version", action="version", version=f"s2c-pipeline {__version__}")
    _add_verbosity(parser, default=False)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND", parser_class=VerbParser)
    return parser, sub


def build_parser(modules: Sequence[ModuleType] | None = None) -> argparse.ArgumentParser:
    """The parser with every option of the verbs of ``modules`` (default: all verbs)."""
    parser, sub = _top_level()
    for module in VERBS if modules is None else modules:
        module.register(sub)
    return parser


def _module_of_verb(argv: list[str]) -> ModuleType:
    """The module of the verb in ``argv``, found by a parser that knows every verb's name and none
    of their options; it also answers ``--help`` and ``--version`` and refuses unknown verbs."""
    parser, sub = _top_level()
    owner = {}
    for module in VERBS:
        for name, summary in module.COMMANDS.items():
            sub.add_parser(name, help=summary, add_help=False)
            owner[name] = module
    known, _ = parser.parse_known_args(argv)
    return owner[known.verb]


@contextlib.contextmanager
def _log_levels(args: argparse.Namespace) -> Iterator[None]:
    """``-v``: DEBUG from our own loggers only, because botocore's DEBUG lines include request
    headers (access key ids among them); ``-q``: WARNING and above from everyone. The levels are
    restored afterwards, for callers that run ``main`` in their own process."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ours, root = logging.getLogger("s2c_pipeline"), logging.getLogger()
    saved = ours.level, root.level
    if args.verbose:
        ours.setLevel(logging.DEBUG)
    elif args.quiet:
        ours.setLevel(logging.WARNING)
        root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        ours.setLevel(saved[0])
        root.setLevel(saved[1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser([_module_of_verb(argv)]).parse_args(argv)
    if args.verbose and args.quiet:
        print(f"s2c {args.verb}: -v and -q ask for opposite things; give one of them", file=sys.stderr)
        return EXIT_USAGE
    with _log_levels(args):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
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
    except BrokenPipeError:  # `s2c decode x.s2c - | head`: the reader left; nothing more to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BAD_DATA
    except Exception as exc:
        # A storage server that does not answer surfaces from deep in s3fs/botocore, in any verb,
        # as ~150 lines of traceback; it is not a bug, so it gets one line. Anything else propagates.
        from s2c_pipeline.shards.storage import unreachable_endpoint_message

        message = unreachable_endpoint_message(exc)
        if message is None:
            raise
        print(f"s2c {args.verb}: {message}", file=sys.stderr)
        return EXIT_BAD_DATA

"""Where a verb's output goes: summaries, progress bars, and ``-`` for stdin and stdout.

A summary (what a run did) goes to stdout, or to stderr when stdout carries the data a verb writes
(``s2c encode photo.png - > photo.s2c``); ``-q`` keeps it back unless it reports a problem. Progress
bars are drawn only on a terminal: in a pipe or a job's log a bar is noise. Files are checked
before any work, so that an output that cannot be written fails in a second, not after the encode.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from s2c_pipeline.cli.errors import DataError, UsageError

STDIO = "-"


def is_stdio(path: Path | str) -> bool:
    return str(path) == STDIO


def quiet(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quiet", False))


def progress_wanted(args: argparse.Namespace) -> bool:
    """A progress bar only on a terminal, and never with ``--no-progress`` or ``-q``."""
    return not getattr(args, "no_progress", False) and not quiet(args) and sys.stderr.isatty()


def report(args: argparse.Namespace, text: str, *, problem: bool = False, to_stderr: bool = False) -> None:
    """Print a verb's summary; with ``-q`` only when it reports a problem."""
    if quiet(args) and not problem:
        return
    print(text, file=sys.stderr if to_stderr else sys.stdout)


def read_input(path: Path) -> bytes:
    """The bytes of ``path``, or of stdin for ``-``; DataError (exit 1) when it cannot be read."""
    if is_stdio(path):
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def check_writable(path: Path) -> None:
    """Refuse, before any work, an output that cannot be written (``-``: stdout, not a terminal)."""
    if is_stdio(path):
        if sys.stdout.isatty():
            raise UsageError("not writing binary data to a terminal: redirect stdout or name an output file")
        return
    if path.is_dir():
        raise DataError(f"{path}: is a directory; name the output file")
    folder = path.parent
    if not folder.is_dir():
        raise DataError(f"{path}: the folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise DataError(f"{path}: cannot write here (permission denied)")


def write_output(path: Path, data: bytes) -> None:
    """``data`` into ``path``, or onto stdout for ``-``; DataError when the write fails."""
    if is_stdio(path):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise DataError(f"{path}: cannot write ({exc.strerror or exc})") from None

"""Names from archives turned into output paths, refusing any that would leave the output folder.

A name must first pass ``shards.names.check_relative_name`` (the one rule for names that become
files, which ``compress`` also applies before coding); on local output it is also refused when any
folder on its way, or the file itself, is a symbolic link (a link planted in OUTPUT must not
redirect a write).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from s2c_pipeline.shards.names import UnsafeName, check_relative_name


def safe_local_path(root: Path, name: str) -> Path:
    """``root / name`` after checking the name and that no link on the way leads elsewhere."""
    check_relative_name(name)
    root = root.resolve()
    target = root.joinpath(*name.split("/"))
    probe = root
    for part in name.split("/"):
        probe = probe / part
        if probe.is_symlink():
            raise UnsafeName(f"{name!r}: {probe} is a symbolic link; refusing to write through it")
    if os.path.commonpath([root, target.parent.resolve()]) != str(root):
        raise UnsafeName(f"{name!r} resolves outside {root}")
    return target


def join_url(prefix: str, name: str) -> str:
    """``prefix/name`` for object-store outputs (no links there), after checking the name."""
    return posixpath.join(prefix.rstrip("/"), check_relative_name(name))

"""Names from archives turned into output paths, refusing any that would leave the output folder.

Keys and member names come from tars written by someone else. A name is refused when it is
absolute, has a ``..``, empty or ``.`` component, a backslash, a drive letter, a control character
or a component longer than file systems allow; on local output it is also refused when any folder
on its way, or the file itself, is a symbolic link (a link planted in OUTPUT must not redirect a
write). ``compress`` applies the same rule before coding (``sample_names``).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

MAX_COMPONENT_BYTES = 255
"""The longest file or folder name most file systems take (NAME_MAX on Linux, ext4, APFS, NTFS)."""


class UnsafeName(ValueError):
    """A key or member name that would write outside the output folder, or cannot be a file name."""


def check_relative_name(name: str) -> str:
    """``name`` if it is a safe relative POSIX path, else UnsafeName saying what is wrong."""
    if not name:
        raise UnsafeName("empty name")
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in name):
        raise UnsafeName(f"{name!r} contains control characters")
    if "\\" in name:
        raise UnsafeName(f"{name!r} contains a backslash")
    if "::" in name:  # fsspec reads "::" as a chain of URLs ("a/::.png" would be written to "a")
        raise UnsafeName(f"{name!r} contains '::', which fsspec reads as a chained URL")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeName(f"{name!r} is an absolute path")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafeName(f"{name!r} has an empty, '.' or '..' path component")
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT_BYTES for part in parts):
        raise UnsafeName(f"{name!r} has a path component over {MAX_COMPONENT_BYTES} bytes")
    return name


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

"""Which tar member names are safe to use: the rules, written once.

Names in a tar come from someone else. Two questions are asked of them, each with its own rule:

* Can it be a tar member at all? (``member_name_problem``) No when it is empty, absolute, has a
  ``..`` component, ends with ``/`` (a folder's name) or is not valid UTF-8: whoever extracts such a
  member writes outside their folder, or nowhere. ``read_shard`` skips these members (a problem
  line each) and ``TarShardWriter`` refuses to write them.
* Can it become a file under an output folder? (``check_relative_name``) The member rule, and no
  backslash, control character, ``::`` (fsspec's URL chaining), drive letter, empty or ``.`` path
  component, nor a component longer than file systems allow. ``compress`` asks before coding (a
  sample whose names fail is carried verbatim as ``bad_name``) and ``decompress`` before writing.
"""

from __future__ import annotations

MAX_COMPONENT_BYTES = 255
"""The longest file or folder name most file systems take (NAME_MAX on Linux, ext4, APFS, NTFS)."""


class UnsafeName(ValueError):
    """A key or member name that would write outside the output folder, or cannot be a file name."""


def member_name_problem(name: str) -> str | None:
    """Why no tar member may have ``name`` (``has an absolute path``), or None when it may."""
    if not name:
        return "has an empty name"
    if name.startswith("/"):
        return "has an absolute path"
    if ".." in name.split("/"):
        return "has a '..' path component"
    if name.endswith("/"):
        return "ends with '/', which names a folder, not a file"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "has a name that is not valid UTF-8"
    return None


def file_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a file under an output folder, or None when it can."""
    problem = member_name_problem(name)
    if problem is not None:
        return problem
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in name):
        return "contains control characters"
    if "\\" in name:
        return "contains a backslash"
    if "::" in name:  # fsspec reads "::" as a chain of URLs ("a/::.png" would be written to "a")
        return "contains '::', which fsspec reads as a chained URL"
    if len(name) > 1 and name[1] == ":":
        return "is an absolute path (a drive letter)"
    parts = name.split("/")
    if any(part in ("", ".") for part in parts):
        return "has an empty or '.' path component"
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT_BYTES for part in parts):
        return f"has a path component over {MAX_COMPONENT_BYTES} bytes"
    return None


def check_relative_name(name: str) -> str:
    """``name`` if it can be a file under an output folder, else UnsafeName saying what is wrong."""
    problem = file_name_problem(name)
    if problem is not None:
        raise UnsafeName(f"{name!r} {problem}")
    return name

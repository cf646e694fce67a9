"""Turn what a user typed (URLs, globs, brace ranges, list files) into a checked list of shard URLs.

Brace ranges are expanded before storage is touched, so ``s3://b/train-{00000..09999}.tar`` costs
one listing per directory, not a request per shard. Missing shards are an error up front: a job that
silently skips a typo'd shard range is worse than one that refuses to start.
"""

from __future__ import annotations

import itertools
import logging
import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable

from s2c_pipeline.shards.storage import filesystem, to_url

logger = logging.getLogger(__name__)

MAX_EXPANSION = 1_000_000  # a brace pattern that expands further is almost surely a typo
MAX_MISSING_NAMED = 10
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$")
_GLOB_CHARS = re.compile(r"[*?\[]")


def expand_inputs(inputs: Iterable[str], *, storage_options: dict | None = None) -> list[str]:
    """Every shard URL that ``inputs`` names: unique, sorted, each checked to exist.

    Each input is a local path, ``file://`` or ``s3://``/``gs://`` URL, and may contain brace
    ranges (``train-{00000..00999}.tar``, zero padding kept; ``{a,b}`` lists; nested) and globs
    (``*``, ``?``, ``[...]``, expanded by the filesystem). An input that starts with ``@`` or ends in
    ``.txt`` is a list file: one URL or pattern per line, blank lines and ``#`` lines ignored.
    Local results are absolute paths; remote ones keep their protocol (``s3://bucket/key``).

    Raises:
        ValueError: no inputs, or a brace pattern that expands to more than a million URLs.
        FileNotFoundError: some inputs match nothing (up to 10 of them are named).
    """
    patterns: list[str] = []
    for item in inputs:
        text = str(item).strip()
        if text.startswith("@") or text.endswith(".txt"):
            patterns.extend(_read_url_list(text.removeprefix("@"), storage_options))
        elif text:
            patterns.append(text)
    if not patterns:
        raise ValueError(
            "no input shards given: pass at least one URL, glob (s3://b/train-*.tar), brace range "
            "(s3://b/train-{00000..00099}.tar) or list file (@shards.txt)"
        )
    candidates: list[str] = []
    for pattern in patterns:
        candidates.extend(expand_braces(pattern))
    found, missing = _resolve(candidates, storage_options)
    if missing:
        missing.sort()
        named = ", ".join(missing[:MAX_MISSING_NAMED])
        more = f" and {len(missing) - MAX_MISSING_NAMED} more" if len(missing) > MAX_MISSING_NAMED else ""
        raise FileNotFoundError(f"{len(missing)} input shard(s) not found: {named}{more}")
    return sorted(set(found))


def expand_braces(pattern: str) -> list[str]:
    """Shell-style brace expansion, in order: ``a{1..3}`` -> a1 a2 a3, ``{x,y}z`` -> xz yz.

    Numeric ranges keep zero padding (``{08..10}`` -> 08 09 10) and may step (``{0..10..5}``) or run
    down (``{3..1}``). Braces with neither a comma nor a range are left as they are, like bash does.
    """
    expanded = _expand(pattern)
    if len(expanded) > MAX_EXPANSION:
        raise ValueError(f"{pattern}: brace expansion gives {len(expanded)} URLs, more than {MAX_EXPANSION}")
    return expanded


def _expand(pattern: str) -> list[str]:
    start, end = _first_brace_group(pattern)
    if start < 0:
        return [pattern]
    head, body, tail = pattern[:start], pattern[start + 1 : end], pattern[end + 1 :]
    alternatives = _alternatives(body)
    if alternatives is None:  # not an expansion: keep the braces literally, expand what follows
        return [head + "{" + body + "}" + rest for rest in _expand(tail)]
    tails = _expand(tail)
    out: list[str] = []
    for alternative in alternatives:
        for middle, rest in itertools.product(_expand(alternative), tails):
            out.append(head + middle + rest)
            if len(out) > MAX_EXPANSION:
                raise ValueError(f"{pattern}: brace expansion gives more than {MAX_EXPANSION} URLs")
    return out


def _first_brace_group(pattern: str) -> tuple[int, int]:
    """Indices of the first top-level ``{`` and its matching ``}``, or (-1, -1)."""
    depth, start = 0, -1
    for index, char in enumerate(pattern):
        if char == "{":
            if depth == 0:
                start = index
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                return start, index
    return -1, -1


def _alternatives(body: str) -> list[str] | None:
    match = _RANGE.match(body)
    if match:
        return _numeric_range(*match.groups())
    parts, depth, current = [], 0, []
    for char in body:
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current))
    return parts if len(parts) > 1 else None


def _numeric_range(first: str, last: str, step: str | None) -> list[str]:
    low, high = int(first), int(last)
    stride = abs(int(step)) if step else 1
    if stride == 0:
        raise ValueError(f"brace range {{{first}..{last}..{step}}}: the step must not be 0")
    if (high - low) // stride + 1 > MAX_EXPANSION:
        raise ValueError(f"brace range {{{first}..{last}}} has more than {MAX_EXPANSION} values")
    padded = any(len(text.lstrip("-")) > 1 and text.lstrip("-").startswith("0") for text in (first, last))
    width = max(len(first), len(last)) if padded else 0
    values = range(low, high + 1, stride) if low <= high else range(low, high - 1, -stride)
    return [f"{value:0{width}d}" for value in values]


def _read_url_list(url: str, storage_options: dict | None) -> list[str]:
    fs, path = filesystem(url, storage_options)
    with fs.open(path, "rt", encoding="utf-8") as handle:
        lines = [line.strip() for line in handle]
    patterns = [line for line in lines if line and not line.startswith("#")]
    logger.debug("%s: %d URL patterns", url, len(patterns))
    return patterns


def _resolve(candidates: list[str], storage_options: dict | None) -> tuple[list[str], list[str]]:
    """(found URLs, descriptions of missing ones). Globs go to the filesystem; plain URLs are checked
    with one listing per parent directory instead of one request each."""
    found: list[str] = []
    missing: list[str] = []
    by_parent: dict[tuple[int, str], list[tuple[str, str]]] = defaultdict(list)
    filesystems = {}
    for url in dict.fromkeys(candidates):
        fs, path = filesystem(url, storage_options)
        if _GLOB_CHARS.search(path):
            matches = [p for p, info in fs.glob(path, detail=True).items() if info.get("type") == "file"]
            found.extend(to_url(fs, match) for match in matches)
            if not matches:
                missing.append(f"{url} (glob matches no file)")
            continue
        filesystems[id(fs)] = fs
        by_parent[(id(fs), posixpath.dirname(path.rstrip("/")))].append((url, path))
    for (fs_id, parent), entries in by_parent.items():
        fs = filesystems[fs_id]
        try:
            listing = {info["name"].rstrip("/"): info.get("type") for info in fs.ls(parent, detail=True)}
        except FileNotFoundError:
            listing = {}
        for url, path in entries:
            kind = listing.get(path.rstrip("/"))
            if kind == "file":
                found.append(to_url(fs, path))
            elif kind is None:
                missing.append(url)
            else:
                missing.append(f"{url} (a {kind}, not a file: use a glob such as {url.rstrip('/')}/*.tar)")
    return found, missing

"""A report as a list of blocks, rendered to Markdown and to one self-contained HTML file.

Both reports (``analyze`` and ``report``) are built once as blocks, so the Markdown and the HTML
cannot disagree. Text may use `code` and **bold**, nothing else; the HTML embeds the PNGs as data
URIs, so the file can be mailed or attached to a ticket on its own.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right_aligned: tuple[int, ...] = ()
    """Column indexes to align right (numbers)."""


@dataclass(frozen=True)
class Figure:
    file_name: str
    """A PNG next to the report."""
    caption: str


Block = Heading | Paragraph | Bullets | Table | Figure


def to_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            rule = ["---:" if i in block.right_aligned else "---" for i in range(len(block.headers))]
            lines = [block.headers, tuple(rule), *block.rows]
            out.append("\n".join("| " + " | ".join(_cell(c) for c in line) + " |" for line in lines))
        elif isinstance(block, Figure):
            out.append(f"![{block.caption}]({block.file_name})\n\n*{block.caption}*")
    return "\n\n".join(out) + "\n"


def to_html(blocks: Sequence[Block], folder: Path, title: str) -> str:
    """One HTML page; figures are read from ``folder`` and embedded."""
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{_inline(h)}</th>" for h in block.headers)
            rows = "".join(
                "<tr>" + "".join(
                    f"<td class=\"num\">{_inline(c)}</td>" if i in block.right_aligned else f"<td>{_inline(c)}</td>"
                    for i, c in enumerate(row)
                ) + "</tr>"
                for row in block.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Figure):
            data = base64.b64encode((folder / block.file_name).read_bytes()).decode()
            body.append(f"<figure><img alt=\"{html.escape(block.caption)}\" src=\"data:image/png;base64,{data}\">"
                        f"<figcaption>{_inline(block.caption)}</figcaption></figure>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
        "table{border-collapse:collapse;margin:1em 0;font-size:.92em}"
        "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}td.num{text-align:right}"
        "th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3;padding:0 .2em}"
        "figcaption{color:#555;font-style:italic}"
    )
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(folder: Path, data: dict[str, Any], blocks: Sequence[Block], title: str) -> list[Path]:
    """report.json, report.md and report.html into ``folder`` (figures must already be there)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "report.json", folder / "report.md", folder / "report.html"]
    paths[0].write_text(json.dumps(json_safe(data), indent=1, sort_keys=False) + "\n", encoding="utf-8")
    paths[1].write_text(to_markdown(blocks), encoding="utf-8")
    paths[2].write_text(to_html(blocks, folder, title), encoding="utf-8")
    return paths


def json_safe(value: Any) -> Any:
    """NaN and infinities become null: they are not JSON, and a reader must not trip on them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    return value


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _inline(text: str) -> str:
    escaped = html.escape(str(text))
    escaped = _CODE.sub(r"<code>\1</code>", escaped)
    return _BOLD.sub(r"<strong>\1</strong>", escaped)


def fmt_bytes(n: float) -> str:
    """Decimal units, as storage bills and listings show them (1 GB = 10**9 bytes here)."""
    if not math.isfinite(n):
        return "-"
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def fmt_usd(x: float) -> str:
    """Whole dollars from $100, else three significant digits, never in exponent notation."""
    if not math.isfinite(x):
        return "-"
    if x < 0:
        return "-" + fmt_usd(-x)
    if x >= 100 or x == 0:
        return f"${x:,.0f}"
    digits = max(2, 2 - math.floor(math.log10(x)))
    return f"${x:.{digits}f}"


def fmt_count(x: float) -> str:
    return f"{x:,.0f}" if math.isfinite(x) else "-"


def fmt_number(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if math.isfinite(x) else "-"

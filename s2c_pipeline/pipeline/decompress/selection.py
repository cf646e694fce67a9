"""Choosing manifest rows for a decode job: all, a key list, or a filter expression.

A filter such as ``psnr < 30 and status == 'ok'`` is parsed with ``ast`` and checked against a
whitelist before pandas evaluates it: names must be manifest columns, values literals, operators
comparisons, boolean logic and arithmetic. Calls, attributes, subscripts and pandas' ``@variable``
references are refused, so an expression cannot run code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

import pandas as pd


class SelectionError(ValueError):
    """A filter expression or key list that cannot be used; the message says why."""


_ALLOWED_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.List,
    ast.Tuple,
)


def check_where(expr: str, columns: Iterable[str]) -> None:
    """Raise SelectionError unless ``expr`` uses only whitelisted syntax and known columns."""
    known = set(columns)
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise SelectionError(f"--where {expr!r} is not a valid expression ({exc.msg})") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise SelectionError(
                f"--where {expr!r}: {type(node).__name__} is not allowed; use comparisons of "
                "manifest columns with literals joined by and/or/not"
            )
        if isinstance(node, ast.Name) and node.id not in known:
            raise SelectionError(
                f"--where {expr!r}: unknown column {node.id!r}; columns are {', '.join(sorted(known))}"
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool)):
            raise SelectionError(f"--where {expr!r}: literal {node.value!r} is not allowed")


def select_rows(
    table: pd.DataFrame, *, keys: Iterable[str] | None = None, where: str | None = None
) -> pd.DataFrame:
    """The rows of ``table`` (a manifest DataFrame) chosen by ``keys`` and/or ``where``.

    Keys are matched exactly (source keys are verbatim); a key absent from the manifest raises
    SelectionError naming up to five of them, because a silent partial decode looks like success.
    """
    selected = table
    if keys is not None:
        wanted = list(dict.fromkeys(k for k in keys if k))
        missing = sorted(set(wanted) - set(table["key"]))
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise SelectionError(f"{len(missing)} requested key(s) are not in the manifests: {shown}")
        selected = selected[selected["key"].isin(wanted)]
    if where:
        check_where(where, table.columns)
        try:
            mask = selected.eval(where.strip(), engine="python")
        except (TypeError, ValueError) as exc:
            raise SelectionError(f"--where {where!r} cannot be evaluated on the manifest: {exc}") from None
        if not (isinstance(mask, pd.Series) and mask.dtype == bool):
            raise SelectionError(f"--where {where!r} must be a true/false condition, not a value")
        selected = selected[mask]
    return selected


def read_key_file(text: str) -> list[str]:
    """One key per line; blank lines and lines starting with '#' are ignored."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]

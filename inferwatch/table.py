"""Decoded payload tables.

A table is a plain ``dict`` of column name -> list of per-row values, all columns the
same length. It is what codecs produce and detectors consume; it serialises to JSON as
is and converts to pandas with ``pandas.DataFrame(table)``.

>>> t = from_rows([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
>>> t
{'a': [1, 2], 'b': ['x', 'y']}
>>> n_rows(t), list(rows(t))[1]
(2, {'a': 2, 'b': 'y'})
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

__all__ = ["Table", "concat", "from_rows", "n_rows", "row", "rows", "select", "validate"]

Table = dict[str, list[Any]]


def n_rows(table: Mapping[str, Sequence[Any]] | None) -> int:
    """Number of rows (0 for ``None`` or an empty table)."""
    if not table:
        return 0
    return len(next(iter(table.values())))


def validate(table: Mapping[str, Sequence[Any]]) -> Table:
    """Check all columns have the same length; return the table as a ``Table``."""
    lengths = {name: len(col) for name, col in table.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns of unequal length: {lengths}")
    return {str(k): list(v) for k, v in table.items()}


def from_rows(records: Iterable[Mapping[str, Any]]) -> Table:
    """Columnar table from row dicts; a key missing in a row becomes ``None``."""
    records = list(records)
    names: dict[str, None] = {}
    for r in records:
        for k in r:
            names.setdefault(str(k), None)
    return {name: [r.get(name) for r in records] for name in names}


def row(table: Mapping[str, Sequence[Any]], i: int) -> dict[str, Any]:
    """Row ``i`` as a dict."""
    return {k: v[i] for k, v in table.items()}


def rows(table: Mapping[str, Sequence[Any]] | None) -> Iterator[dict[str, Any]]:
    """Iterate the rows as dicts."""
    if not table:
        return
    for i in range(n_rows(table)):
        yield row(table, i)


def select(table: Mapping[str, Sequence[Any]], index: Sequence[int]) -> Table:
    """The rows at ``index``."""
    return {k: [v[i] for i in index] for k, v in table.items()}


def concat(tables: Iterable[Mapping[str, Sequence[Any]] | None]) -> Table:
    """Stack tables row-wise; columns missing from one table are filled with ``None``."""
    present = [t for t in tables if t]
    names: dict[str, None] = {}
    for t in present:
        for k in t:
            names.setdefault(k, None)
    out: Table = {k: [] for k in names}
    for t in present:
        n = n_rows(t)
        for k in names:
            col = t.get(k)
            out[k].extend(col if col is not None else [None] * n)
    return out

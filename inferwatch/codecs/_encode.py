"""Tables back to payload parts: validated columns, row objects, row lists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from inferwatch.codecs._parse import json_default
from inferwatch.codecs.base import fail

_JSON_TYPES = frozenset({str, int, float, bool, type(None), list, dict})


def table_columns(table: Any, protocol: str) -> tuple[list[str], list[list[Any]], int]:
    """Validate a table for encoding: (names, columns as lists, rows)."""
    if not isinstance(table, Mapping):
        raise fail(protocol, f"cannot encode {type(table).__name__}", "a table: dict of column -> list")
    names: list[str] = []
    cols: list[list[Any]] = []
    for k, v in table.items():
        if hasattr(v, "tolist"):
            v = v.tolist()
        if not isinstance(v, (list, tuple)):
            raise fail(protocol, f"column {k!r} is {type(v).__name__}", "a list per column")
        v = list(v)
        if not set(map(type, v)).issubset(_JSON_TYPES):  # numpy scalars, datetimes, bytes ...
            try:
                v = orjson.loads(orjson.dumps(v, default=json_default, option=orjson.OPT_SERIALIZE_NUMPY))
            except (orjson.JSONEncodeError, TypeError) as exc:
                raise fail(protocol, f"column {k!r} holds values that are not JSON: {exc}") from exc
        names.append(str(k))
        cols.append(v)
    lengths = {len(c) for c in cols}
    if len(lengths) > 1:
        raise fail(protocol, f"columns of unequal length: {dict(zip(names, map(len, cols), strict=True))}")
    return names, cols, lengths.pop() if lengths else 0


def table_records(names: list[str], cols: list[list[Any]], n: int) -> list[dict[str, Any]]:
    """Columns -> a list of row objects."""
    return [dict(zip(names, r, strict=True)) for r in zip(*cols, strict=True)] if cols else []


def table_rows(cols: list[list[Any]]) -> list[list[Any]]:
    """Columns -> a list of row lists."""
    return [list(r) for r in zip(*cols, strict=True)]

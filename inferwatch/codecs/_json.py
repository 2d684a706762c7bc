"""Plain JSON: one record object, or a list of record objects (one row each).

A bare list of scalars is one column ``f0``; a list of equal-length lists is an unnamed
tensor (``f0 .. f{k-1}``). Nested objects flatten to dotted names; list values are cells.
"""

from __future__ import annotations

from typing import Any

from inferwatch.codecs._encode import table_columns, table_records
from inferwatch.codecs._tables import records_table, rows_table
from inferwatch.codecs.base import Decoded, describe, fail
from inferwatch.table import Table

PROTOCOL = "json"
_EXPECTED = "a record object {...} or a list of record objects [{...}, ...]"
EXPECTED = {"request": _EXPECTED, "response": _EXPECTED}


class PlainJson:
    """Plain JSON records (the detection fallback)."""

    name = PROTOCOL
    aliases: tuple[str, ...] = ("records",)
    expected = EXPECTED

    def matches(self, obj: Any, part: str) -> bool:
        """Structural test used by auto-detection (the fallback: any object, or a homogeneous list)."""
        if isinstance(obj, dict):
            return True
        if isinstance(obj, list):
            types = set(map(type, obj))
            return dict not in types or types == {dict}
        return False

    def decode(self, obj: Any, part: str) -> Decoded:
        if isinstance(obj, dict):
            return Decoded(PROTOCOL, records_table([obj], PROTOCOL) if obj else {}, {"kind": "record"})
        if isinstance(obj, list):
            kind = "records" if obj and all(type(r) is dict for r in obj) else "array"
            return Decoded(PROTOCOL, rows_table(obj, PROTOCOL, part), {"kind": kind})
        raise fail(PROTOCOL, f"{part} is {describe(obj)}", _EXPECTED)

    def encode(self, table: Table, part: str) -> list[dict[str, Any]]:
        """A list of record objects, one per row."""
        names, columns, n = table_columns(table, PROTOCOL)
        return table_records(names, columns, n)


CODEC = PlainJson()

"""KServe v1 / TF Serving REST payloads.

Request: row format ``{"instances": [...]}`` (scalars, lists, or objects of named inputs)
or columnar ``{"inputs": [...] | {name: [...]}}``; optional ``signature_name``.
Response: ``{"predictions": [...]}`` (row) or ``{"outputs": [...] | {name: [...]}}``.
Binary values follow TF Serving's ``{"b64": "..."}`` convention.
"""

from __future__ import annotations

from typing import Any

from inferwatch.codecs._encode import table_columns, table_records
from inferwatch.codecs._tables import columnar_table, rows_table
from inferwatch.codecs.base import Decoded, describe, fail
from inferwatch.table import Table

PROTOCOL = "kserve-v1"
EXPECTED = {
    "request": '{"instances": [...]} or {"inputs": [...] | {"<name>": [...]}}',
    "response": '{"predictions": [...]} or {"outputs": [...] | {"<name>": [...]}}',
}
_ROW = {"request": "instances", "response": "predictions"}
_COL = {"request": "inputs", "response": "outputs"}


def decode_body(obj: dict[str, Any], part: str, protocol: str) -> tuple[Table, str]:
    """Shared with MLflow (whose ``instances``/``inputs``/``predictions`` follow TF Serving)."""
    row, col = _ROW[part], _COL[part]
    if row in obj and col in obj:
        raise fail(protocol, f"both {row!r} and {col!r} given", EXPECTED[part])
    if row in obj:
        value = obj[row]
        if isinstance(value, dict):  # a dict of named outputs (MLflow dict predictions)
            return columnar_table(value, protocol, row), row
        return rows_table(value, protocol, row, b64=True, split=True), row
    if col in obj:
        return columnar_table(obj[col], protocol, col), col
    raise fail(protocol, f"{part} has neither {row!r} nor {col!r}", EXPECTED[part])


class KServeV1:
    """KServe v1 / TF Serving REST JSON."""

    name = PROTOCOL
    aliases: tuple[str, ...] = ("kserve", "v1", "tfserving", "tf-serving")
    expected = EXPECTED

    def matches(self, obj: Any, part: str) -> bool:
        """Structural test used by auto-detection."""
        if not isinstance(obj, dict):
            return False
        return isinstance(obj.get(_ROW[part]), (list, dict)) or isinstance(obj.get(_COL[part]), (list, dict))

    def decode(self, obj: Any, part: str) -> Decoded:
        if not isinstance(obj, dict):
            raise fail(PROTOCOL, f"{part} is {describe(obj)}", EXPECTED[part])
        if "error" in obj and _ROW[part] not in obj and _COL[part] not in obj:
            raise fail(PROTOCOL, f"error response: {str(obj['error'])[:500]}")
        table, kind = decode_body(obj, part, PROTOCOL)
        meta: dict[str, Any] = {"kind": kind}
        if obj.get("signature_name") is not None:
            meta["signature_name"] = obj["signature_name"]
        return Decoded(PROTOCOL, table, meta)

    def encode(self,
        table: Table, part: str, *, format: str = "rows", signature_name: str | None = None
    ) -> dict[str, Any]:
        """``format="rows"`` (``instances``/``predictions`` objects) or ``"columns"`` (``inputs``/``outputs``)."""
        names, columns, n = table_columns(table, PROTOCOL)
        out: dict[str, Any] = {}
        if signature_name is not None:
            out["signature_name"] = signature_name
        if format == "rows":
            out[_ROW[part]] = table_records(names, columns, n)
        elif format == "columns":
            out[_COL[part]] = dict(zip(names, columns, strict=True))
        else:
            raise fail(PROTOCOL, f"unknown format {format!r}", "rows or columns")
        return out


CODEC = KServeV1()

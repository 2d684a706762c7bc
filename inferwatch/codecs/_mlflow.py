"""MLflow scoring server (``/invocations``) payloads.

Request: ``{"dataframe_split": {"columns"?, "index"?, "data": [[...], ...]}}``,
``{"dataframe_records": [{...}, ...]}``, or TF Serving's ``{"instances": ...}`` /
``{"inputs": ...}``; optional ``params``. Response: ``{"predictions": ...}`` (MLflow 2)
or a bare list / object of columns (MLflow 1).
"""

from __future__ import annotations

from typing import Any

from inferwatch.codecs import _kserve
from inferwatch.codecs._encode import table_columns, table_records, table_rows
from inferwatch.codecs._tables import Columns, columnar_table, records_table, rows_table
from inferwatch.codecs.base import Decoded, describe, fail
from inferwatch.table import Table

PROTOCOL = "mlflow"
EXPECTED = {
    "request": '{"dataframe_split": {"columns", "data"}} | {"dataframe_records": [...]} | {"instances": ...} | {"inputs": ...}',
    "response": '{"predictions": ...} or a list of predictions',
}
_FORMS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _split(split: Any, meta: dict[str, Any]) -> Table:
    what = "dataframe_split"
    if not isinstance(split, dict):
        raise fail(PROTOCOL, f"{what} is {describe(split)}", '{"columns", "data"}')
    data = split.get("data")
    if not isinstance(data, list) or not all(type(r) is list for r in data):
        raise fail(PROTOCOL, f"{what}.data is not a list of row lists", "[[...], ...]")
    columns = split.get("columns")
    widths = set(map(len, data))
    if columns is None:
        if len(widths) > 1:
            raise fail(PROTOCOL, f"{what}.data rows have different lengths")
        k = next(iter(widths)) if widths else 0
        names = ["f0"] if k == 1 else [f"f{j}" for j in range(k)]
    else:
        if not isinstance(columns, list) or not all(isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in columns):
            raise fail(PROTOCOL, f"{what}.columns is not a list of names", "a list of strings")
        names = [str(c) for c in columns]
        if widths - {len(names)}:
            raise fail(PROTOCOL, f"{what}.data rows do not all have {len(names)} values")
    index = split.get("index")
    if index is not None:
        if not isinstance(index, list) or len(index) != len(data):
            raise fail(PROTOCOL, f"{what}.index does not have one entry per row")
        meta["index"] = index
    cols = Columns(PROTOCOL)
    transposed = list(zip(*data, strict=True)) if data else [() for _ in names]
    for name, values in zip(names, transposed, strict=True):
        cols.add(name, list(values), cells=True)
    return cols.table()


def _decode_response(obj: Any) -> Decoded:
    if isinstance(obj, dict) and "error_code" in obj and "predictions" not in obj:
        raise fail(PROTOCOL, f"error response: {obj.get('error_code')} {str(obj.get('message'))[:500]}")
    if isinstance(obj, dict) and "predictions" in obj:
        table, _ = _kserve.decode_body(obj, "response", PROTOCOL)
        return Decoded(PROTOCOL, table, {"kind": "predictions"})
    if isinstance(obj, list):
        return Decoded(PROTOCOL, rows_table(obj, PROTOCOL, "response", split=True), {"kind": "list"})
    if isinstance(obj, dict) and obj and all(isinstance(v, list) for v in obj.values()):
        return Decoded(PROTOCOL, columnar_table(obj, PROTOCOL, "response"), {"kind": "columns"})
    raise fail(PROTOCOL, f"response is {describe(obj)}", EXPECTED["response"])


class MLflow:
    """MLflow scoring server JSON."""

    name = PROTOCOL
    aliases: tuple[str, ...] = ()
    expected = EXPECTED

    def matches(self, obj: Any, part: str) -> bool:
        """Structural test used by auto-detection (only MLflow-specific shapes; the rest is kserve-v1)."""
        if not isinstance(obj, dict) or part != "request":
            return False
        if isinstance(obj.get("dataframe_split"), dict) or isinstance(obj.get("dataframe_records"), list):
            return True
        return "params" in obj and ("instances" in obj or "inputs" in obj)

    def decode(self, obj: Any, part: str) -> Decoded:
        if part == "response":
            return _decode_response(obj)
        if not isinstance(obj, dict):
            raise fail(PROTOCOL, f"request is {describe(obj)}", EXPECTED["request"])
        forms = [k for k in _FORMS if k in obj]
        if len(forms) != 1:
            why = "none of" if not forms else "several of"
            raise fail(PROTOCOL, f"request has {why} {', '.join(_FORMS)}", EXPECTED["request"])
        kind = forms[0]
        meta: dict[str, Any] = {"kind": kind}
        if obj.get("params") is not None:
            meta["params"] = obj["params"]
        if kind == "dataframe_split":
            table = _split(obj[kind], meta)
        elif kind == "dataframe_records":
            records = obj[kind]
            if not isinstance(records, list):
                raise fail(PROTOCOL, f"dataframe_records is {describe(records)}", "a list of objects")
            if records and not all(type(r) is dict for r in records):
                raise fail(PROTOCOL, "dataframe_records holds non-objects", "a list of objects")
            table = records_table(records, PROTOCOL)
        else:
            table, _ = _kserve.decode_body(obj, "request", PROTOCOL)
        return Decoded(PROTOCOL, table, meta)

    def encode(self, table: Table, part: str, *, format: str = "split", params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Request ``format``: ``split`` (default), ``records``, ``instances`` or ``inputs``;
        a response is ``{"predictions": [records]}``."""
        names, columns, n = table_columns(table, PROTOCOL)
        if part == "response":
            return {"predictions": table_records(names, columns, n)}
        out: dict[str, Any]
        if format == "split":
            out = {"dataframe_split": {"columns": names, "data": table_rows(columns)}}
        elif format == "records":
            out = {"dataframe_records": table_records(names, columns, n)}
        elif format == "instances":
            out = {"instances": table_records(names, columns, n)}
        elif format == "inputs":
            out = {"inputs": dict(zip(names, columns, strict=True))}
        else:
            raise fail(PROTOCOL, f"unknown format {format!r}", "split, records, instances or inputs")
        if params is not None:
            out["params"] = params
        return out


CODEC = MLflow()

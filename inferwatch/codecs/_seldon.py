"""Seldon Core v1 (``SeldonMessage``) JSON payloads, the same shape for requests and responses.

``{"data": {"names"?, "ndarray" | "tensor": {shape, values} | "tftensor": TensorProto}}``,
or ``{"jsonData": ...}``, ``{"strData": "..."}``, ``{"binData": "<base64>"}``; plus ``meta``
(``puid``, ``tags``, ``routing``, ``requestPath``, ``metrics``) and ``status``.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np

from inferwatch.codecs import _json
from inferwatch.codecs._encode import table_columns, table_records, table_rows
from inferwatch.codecs._tables import Columns, records_table
from inferwatch.codecs._tensor import check_shape, coerce, flatten, tensor_columns, typed_flat
from inferwatch.codecs._values import b64_values, scalar_leaves
from inferwatch.codecs.base import Decoded, describe, fail
from inferwatch.codecs.limits import note_encoding
from inferwatch.errors import DecodeError
from inferwatch.table import Table

PROTOCOL = "seldon-v1"
_EXPECTED = (
    '{"data": {"names"?, "ndarray" | "tensor": {"shape", "values"} | "tftensor"}} '
    'or {"jsonData": ...} | {"strData": "..."} | {"binData": "<base64>"}'
)
EXPECTED = {"request": _EXPECTED, "response": _EXPECTED}
_DATA_KINDS = ("ndarray", "tensor", "tftensor")
_OTHER_KINDS = ("jsonData", "strData", "binData")

# TensorProto dtype -> (value field, OIP datatype, numpy dtype of tensorContent)
_TF_DTYPES: dict[str, tuple[str, str, Any]] = {
    "DT_FLOAT": ("floatVal", "FP32", np.dtype("<f4")),
    "DT_DOUBLE": ("doubleVal", "FP64", np.dtype("<f8")),
    "DT_INT32": ("intVal", "INT32", np.dtype("<i4")),
    "DT_UINT8": ("intVal", "UINT8", np.dtype("u1")),
    "DT_INT16": ("intVal", "INT16", np.dtype("<i2")),
    "DT_INT8": ("intVal", "INT8", np.dtype("i1")),
    "DT_UINT16": ("intVal", "UINT16", np.dtype("<u2")),
    "DT_STRING": ("stringVal", "BYTES", None),
    "DT_INT64": ("int64Val", "INT64", np.dtype("<i8")),
    "DT_BOOL": ("boolVal", "BOOL", np.dtype("?")),
    "DT_HALF": ("halfVal", "FP16", np.dtype("<f2")),
    "DT_BFLOAT16": ("halfVal", "BF16", np.dtype("<u2")),
    "DT_UINT32": ("uint32Val", "UINT32", np.dtype("<u4")),
    "DT_UINT64": ("uint64Val", "UINT64", np.dtype("<u8")),
}
_TF_ENUM = {
    1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8", 5: "DT_INT16", 6: "DT_INT8",
    7: "DT_STRING", 9: "DT_INT64", 10: "DT_BOOL", 14: "DT_BFLOAT16", 17: "DT_UINT16",
    19: "DT_HALF", 22: "DT_UINT32", 23: "DT_UINT64",
}


def is_error(obj: Any) -> bool:
    """A Seldon failure response: ``{"status": {"status": "FAILURE", ...}}`` without data."""
    status = obj.get("status") if isinstance(obj, dict) else None
    return (
        isinstance(status, dict)
        and status.get("status") == "FAILURE"
        and not any(k in obj for k in ("data", *_OTHER_KINDS))
    )


def _decode_data(data: Any) -> tuple[Table, str, list[Any] | None, dict[str, Any]]:
    """``data`` -> (table, kind, names as given, tensor summary {shape, datatype?})."""
    if not isinstance(data, dict):
        raise fail(PROTOCOL, f"data is {describe(data)}", _EXPECTED)
    names = data.get("names")
    if names is not None and (
        not isinstance(names, list) or not all(isinstance(n, (str, int, float)) for n in names)
    ):
        raise fail(PROTOCOL, "data.names is not a list of strings", "a list of column names")
    kinds = [k for k in _DATA_KINDS if k in data]
    if len(kinds) != 1:
        why = "none of" if not kinds else "several of"
        raise fail(PROTOCOL, f"data has {why} ndarray, tensor, tftensor", _EXPECTED)
    kind = kinds[0]
    value = data[kind]
    # Empty names are what seldon-core's wrapper answers for a 1-D prediction (or a list of
    # dicts): no names given, so the unnamed-tensor rule applies.
    given = names or None
    summary: dict[str, Any] = {"kind": kind}
    encoding = None
    if kind == "ndarray" and isinstance(value, list) and value and dict in set(map(type, value)):
        if set(map(type, value)) != {dict}:
            raise fail(PROTOCOL, "data.ndarray mixes objects with other values", "all objects or no objects")
        if given is not None:
            raise fail(PROTOCOL, "data.names given for an ndarray of objects", "names from the objects' keys")
        summary["shape"] = [len(value)]
        return records_table(value, PROTOCOL), kind, names, summary
    if kind == "ndarray":
        shape, flat = flatten(value, PROTOCOL, "data.ndarray")
        scalar_leaves(flat, PROTOCOL, "data.ndarray")
    elif kind == "tensor":
        if not isinstance(value, dict):
            raise fail(PROTOCOL, f"data.tensor is {describe(value)}", '{"shape", "values"}')
        shape = check_shape(value.get("shape"), PROTOCOL, "data.tensor")
        flat = typed_flat(value.get("values"), shape, PROTOCOL, "data.tensor")
        # repeated double: the proto3 JSON of a SeldonMessage writes NaN/Infinity as text
        flat = coerce(flat, "FP64", PROTOCOL, "data.tensor values", numeric_strings=True)
        summary["datatype"] = "FP64"
    else:
        shape, flat, summary["datatype"], encoding = _tftensor(value)
    summary["shape"] = shape
    if encoding is not None:
        summary["encoding"] = encoding
    cols = Columns(PROTOCOL)
    cols.add_tensor(tensor_columns(None, shape, flat, PROTOCOL, names=given), encoding)
    return cols.table(), kind, names, summary


def _get(proto: dict[str, Any], camel: str) -> Any:
    """proto3 JSON uses lowerCamelCase; ``preserving_proto_field_name`` keeps snake_case."""
    if camel in proto:
        return proto[camel]
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return proto.get(snake)


def _tftensor(proto: Any) -> tuple[list[int], list[Any], str, str | None]:
    """A TensorProto -> (shape, flat values, OIP datatype, encoding of DT_STRING values)."""
    what = "data.tftensor"
    if not isinstance(proto, dict):
        raise fail(PROTOCOL, f"{what} is {describe(proto)}", "a TensorProto object")
    dtype = proto.get("dtype")
    if isinstance(dtype, int) and not isinstance(dtype, bool):
        dtype = _TF_ENUM.get(dtype, dtype)
    if not isinstance(dtype, str) or dtype not in _TF_DTYPES:
        raise fail(PROTOCOL, f"{what} has dtype {dtype!r:.40}", f"one of {', '.join(_TF_DTYPES)}")
    field, datatype, np_dtype = _TF_DTYPES[dtype]
    tshape = _get(proto, "tensorShape") or {}
    if not isinstance(tshape, dict):
        raise fail(PROTOCOL, f"{what}.tensorShape is {describe(tshape)}", '{"dim": [{"size"}]}')
    dims = tshape.get("dim") or []
    if not isinstance(dims, list) or not all(isinstance(d, dict) for d in dims):
        raise fail(PROTOCOL, f"{what}.tensorShape.dim is not a list of objects", '[{"size": n}]')
    shape = check_shape([d.get("size", 0) for d in dims], PROTOCOL, what)
    want = math.prod(shape)
    content = _get(proto, "tensorContent")
    if content is not None:
        if np_dtype is None:
            raise fail(PROTOCOL, f"{what}.tensorContent is not supported for DT_STRING")
        if not isinstance(content, str):
            raise fail(PROTOCOL, f"{what}.tensorContent is {describe(content)}", "base64")
        try:
            raw = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise fail(PROTOCOL, f"{what}.tensorContent is not valid base64") from exc
        if len(raw) != want * np_dtype.itemsize:
            raise fail(PROTOCOL, f"{what}.tensorContent has {len(raw)} bytes but shape {shape} needs {want * np_dtype.itemsize}")
        arr = np.frombuffer(raw, dtype=np_dtype)
        if dtype == "DT_BFLOAT16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        flat = arr.astype(np.float64).tolist() if arr.dtype.kind == "f" else arr.tolist()
        return shape, coerce(flat, datatype, PROTOCOL, what), datatype, None
    values = _get(proto, field)
    if values is None:
        values = []
    if not isinstance(values, list):
        raise fail(PROTOCOL, f"{what}.{field} is {describe(values)}", "a list")
    if len(values) != want:
        raise fail(PROTOCOL, f"{what} has {len(values)} {field} elements but shape {shape} needs {want}")
    scalar_leaves(values, PROTOCOL, f"{what}.{field}")
    if dtype == "DT_STRING":
        strings, encoding = b64_values(values, PROTOCOL, f"{what}.stringVal")
        return shape, strings, datatype, encoding
    if dtype in ("DT_HALF", "DT_BFLOAT16"):  # halfVal holds the 16-bit patterns
        bits = coerce(values, "UINT16", PROTOCOL, f"{what}.halfVal", numeric_strings=True)
        if None in bits:
            raise fail(PROTOCOL, f"{what}.halfVal holds null")
        u16 = np.asarray(bits, dtype=np.uint16)
        floats = u16.view(np.float16) if dtype == "DT_HALF" else (u16.astype(np.uint32) << 16).view(np.float32)
        return shape, coerce(floats.astype(np.float64).tolist(), "FP64", PROTOCOL, what), datatype, None
    if datatype.startswith(("INT", "UINT")) and any(isinstance(v, str) for v in values):
        try:
            values = [int(v) if isinstance(v, str) else v for v in values]  # proto3 JSON int64 strings
        except ValueError as exc:
            raise fail(PROTOCOL, f"{what}.{field} holds non-integer strings") from exc
    floating = datatype.startswith(("FP", "BF"))
    return shape, coerce(values, datatype, PROTOCOL, f"{what}.{field}", numeric_strings=floating), datatype, None


# --------------------------------------------------------------------------- encoding


class SeldonV1:
    """Seldon Core v1 ``SeldonMessage`` JSON."""

    name = PROTOCOL
    aliases: tuple[str, ...] = ("seldon", "seldon-core")
    expected = EXPECTED

    def matches(self, obj: Any, part: str) -> bool:
        """Structural test used by auto-detection."""
        if not isinstance(obj, dict):
            return False
        data = obj.get("data")
        if isinstance(data, dict) and any(k in data for k in (*_DATA_KINDS, "names")):
            return True
        return any(k in obj for k in _OTHER_KINDS)

    def decode(self, obj: Any, part: str) -> Decoded:
        if not isinstance(obj, dict):
            raise fail(PROTOCOL, f"{part} is {describe(obj)}", _EXPECTED)
        if is_error(obj):
            status = obj["status"]
            raise fail(PROTOCOL, f"error response: {status.get('code')} {str(status.get('info') or status.get('reason'))[:500]}")
        meta: dict[str, Any] = {}
        seldon_meta = obj.get("meta")
        if isinstance(seldon_meta, dict):
            meta["meta"] = seldon_meta
            if seldon_meta.get("puid"):
                meta["id"] = seldon_meta["puid"]
        if isinstance(obj.get("status"), dict):
            meta["status"] = obj["status"]
        present = [k for k in ("data", *_OTHER_KINDS) if k in obj]
        if len(present) != 1:
            why = "no data" if not present else f"several data fields {present}"
            raise fail(PROTOCOL, f"{part} has {why}", _EXPECTED)
        kind = present[0]
        if kind == "data":
            table, meta["kind"], names, summary = _decode_data(obj["data"])
            if names is not None:
                meta["names"] = names
            meta["tensors"] = [summary]
            return Decoded(PROTOCOL, table, meta)
        meta["kind"] = kind
        value = obj[kind]
        if kind == "jsonData":
            if isinstance(value, (dict, list)):
                try:
                    inner = _json.CODEC.decode(value, part)
                except DecodeError as exc:  # re-label the inner codec's error as ours
                    raise fail(PROTOCOL, f"jsonData: {exc.reason}") from exc
                return Decoded(PROTOCOL, inner.table, meta)
            return Decoded(PROTOCOL, {"jsonData": [value]}, meta)
        if kind == "strData":
            if not isinstance(value, str):
                raise fail(PROTOCOL, f"strData is {describe(value)}", "a string")
            return Decoded(PROTOCOL, {"strData": [value]}, meta)
        blob, encoding = b64_values([value], PROTOCOL, "binData")
        note_encoding("binData", encoding)
        return Decoded(PROTOCOL, {"binData": blob}, meta)

    def encode(self,
        table: Table,
        part: str,
        *,
        kind: str = "ndarray",
        meta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``kind``: ``ndarray`` (default, any values), ``tensor`` (numbers) or ``jsonData`` (records)."""
        names, columns, n = table_columns(table, PROTOCOL)
        out: dict[str, Any] = {}
        if meta is not None:
            out["meta"] = meta
        if kind == "ndarray":
            out["data"] = {"names": names, "ndarray": table_rows(columns)}
        elif kind == "tensor":
            flat = [v for row in table_rows(columns) for v in row]
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
                raise fail(PROTOCOL, "a Seldon tensor holds numbers only", "numeric columns")
            out["data"] = {"names": names, "tensor": {"shape": [n, len(names)], "values": flat}}
        elif kind == "jsonData":
            out["jsonData"] = table_records(names, columns, n)
        else:
            raise fail(PROTOCOL, f"unknown kind {kind!r}", "ndarray, tensor or jsonData")
        return out


CODEC = SeldonV1()

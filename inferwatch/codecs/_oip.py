"""Open Inference Protocol (KServe V2, MLServer, Triton) JSON payloads.

Request ``{id?, parameters?, inputs: [{name, shape, datatype, parameters?, data}], outputs?}``,
response ``{model_name, model_version?, id, parameters?, outputs: [...]}``. Every tensor is
decoded (not only the first). MLServer's ``content_type`` parameter is honoured at request
and tensor level: ``pd`` keeps one column per tensor, ``base64`` decodes BYTES elements,
``pd_json`` (tensor level) parses each BYTES element as the JSON of one cell, ``datetime``
validates ISO-8601 strings, ``str``/``np`` need nothing more.
"""

from __future__ import annotations

from typing import Any

from inferwatch.codecs._encode import table_columns
from inferwatch.codecs._parse import loads
from inferwatch.codecs._tables import Columns
from inferwatch.codecs._tensor import DATATYPES, check_shape, coerce, flatten, tensor_columns, typed_flat
from inferwatch.codecs._values import b64_values, check_datetime, scalar_leaves
from inferwatch.codecs.base import Decoded, describe, fail
from inferwatch.codecs.limits import BudgetExceeded
from inferwatch.errors import DecodeError
from inferwatch.table import Table

PROTOCOL = "oip-v2"
EXPECTED = {
    "request": '{"inputs": [{"name", "shape", "datatype", "data"}, ...]}',
    "response": '{"model_name", "outputs": [{"name", "shape", "datatype", "data"}, ...]}',
}
_KEY = {"request": "inputs", "response": "outputs"}
PD_JSON = "pd_json"  # MLServer PandasCodec.JsonContentType: elements are JSON texts


def _content_type(params: Any, what: str) -> str | None:
    if params is None:
        return None
    if not isinstance(params, dict):
        raise fail(PROTOCOL, f"{what} parameters is {describe(params)}", "an object")
    ct = params.get("content_type")
    if ct is None:
        return None
    if not isinstance(ct, str):
        raise fail(PROTOCOL, f"{what} content_type is {describe(ct)}", "a string")
    return ct


def _pd_json(values: list[Any], datatype: str, what: str) -> list[Any]:
    """MLServer's ``pd_json`` column (what its ``PandasCodec`` writes for an object column that is
    not all text: dicts, lists, mixed values): each element is one cell's JSON text -> that value."""
    if datatype != "BYTES":
        raise fail(PROTOCOL, f"{what} has content_type {PD_JSON!r} but datatype {datatype}", "BYTES")
    try:
        return [None if v is None else loads(v, f"{what} {PD_JSON} element is not JSON") for v in values]
    except BudgetExceeded:  # nested beyond what JSON parsing takes: a limit, as for any body
        raise
    except DecodeError as exc:  # the parser's error names no protocol: this one is ours
        raise fail(PROTOCOL, exc.reason, "one JSON text per element") from exc


# --------------------------------------------------------------------------- encoding


def _infer(name: str, values: list[Any]) -> tuple[str, list[int], list[Any], dict[str, Any]]:
    """(datatype, shape, flat data, parameters) for one column."""
    n = len(values)
    shape = [n]
    flat = values
    if values and set(map(type, values)) == {list}:
        shape, flat = flatten(values, PROTOCOL, f"column {name!r}")
    scalar_leaves(flat, PROTOCOL, f"column {name!r}")
    types = set(map(type, flat)) - {type(None)}
    if types == {bool}:
        return "BOOL", shape, flat, {}
    if types == {int}:
        if all(-(2**63) <= v <= 2**63 - 1 for v in flat if v is not None):
            return "INT64", shape, flat, {}
        if all(0 <= v <= 2**64 - 1 for v in flat if v is not None):
            return "UINT64", shape, flat, {}
        raise fail(PROTOCOL, f"column {name!r} holds integers beyond 64 bits")
    if not types or types <= {int, float}:
        return "FP64", shape, flat, {}
    if types == {str}:
        return "BYTES", shape, flat, {"content_type": "str"}
    raise fail(PROTOCOL, f"cannot encode column {name!r} mixing {sorted(t.__name__ for t in types)}", "one type per column")


class OipV2:
    """Open Inference Protocol (KServe V2, MLServer, Triton) JSON."""

    name = PROTOCOL
    aliases: tuple[str, ...] = ("oip", "v2", "kserve-v2", "open-inference", "mlserver", "triton")
    expected = EXPECTED

    def matches(self, obj: Any, part: str) -> bool:
        """Structural test used by auto-detection."""
        if not isinstance(obj, dict):
            return False
        tensors = obj.get(_KEY[part])
        if not isinstance(tensors, list):
            return False
        if tensors and all(type(t) is dict for t in tensors) and any("datatype" in t for t in tensors):
            return True
        return part == "response" and "model_name" in obj

    def decode(self, obj: Any, part: str) -> Decoded:
        key = _KEY[part]
        if not isinstance(obj, dict):
            raise fail(PROTOCOL, f"{part} is {describe(obj)}", EXPECTED[part])
        if "error" in obj and key not in obj:
            raise fail(PROTOCOL, f"error response: {str(obj['error'])[:500]}")
        tensors = obj.get(key)
        if not isinstance(tensors, list):
            raise fail(PROTOCOL, f"{key!r} is {describe(tensors)}", EXPECTED[part])
        request_ct = _content_type(obj.get("parameters"), part)
        meta: dict[str, Any] = {}
        for field in ("id", "model_name", "model_version", "parameters"):
            if obj.get(field) is not None:
                meta[field] = obj[field]
        if part == "request" and isinstance(obj.get("outputs"), list):
            meta["requested_outputs"] = [o.get("name") for o in obj["outputs"] if isinstance(o, dict)]
        summaries: list[dict[str, Any]] = []
        cols = Columns(PROTOCOL)
        for i, tensor in enumerate(tensors):
            what = f"{key}[{i}]"
            if type(tensor) is not dict:
                raise fail(PROTOCOL, f"{what} is {describe(tensor)}", "an object {name, shape, datatype, data}")
            name = tensor.get("name")
            if not isinstance(name, str):
                raise fail(PROTOCOL, f"{what} has no name", "a string name")
            what = f"{key}[{i}] {name!r}"
            datatype = tensor.get("datatype")
            if not isinstance(datatype, str) or datatype.upper() not in DATATYPES:
                raise fail(PROTOCOL, f"{what} has datatype {datatype!r:.40}", f"one of {', '.join(DATATYPES)}")
            datatype = datatype.upper()
            shape = check_shape(tensor.get("shape"), PROTOCOL, what)
            params = tensor.get("parameters")
            ct = _content_type(params, what)
            if isinstance(params, dict) and "binary_data_size" in params:
                raise fail(PROTOCOL, f"{what} uses the binary tensor data extension, which is not supported")
            if "data" not in tensor:
                raise fail(PROTOCOL, f"{what} has no data", "a data list")
            flat = typed_flat(tensor["data"], shape, PROTOCOL, what)
            values = coerce(flat, datatype, PROTOCOL, what)
            element_ct = ct or (request_ct if request_ct in ("str", "base64", "datetime") else None)
            encoding = None
            if element_ct == "base64":
                values, encoding = b64_values(values, PROTOCOL, what)
            elif element_ct == "datetime":
                values = [check_datetime(v, PROTOCOL) for v in values]
            elif element_ct == PD_JSON:
                values = _pd_json(values, datatype, what)
            summary: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
            if params:
                summary["parameters"] = params
            if encoding is not None:
                summary["encoding"] = encoding
            summaries.append(summary)
            cols.add_tensor(tensor_columns(name, shape, values, PROTOCOL, one_column=request_ct == "pd"), encoding,
                            cells=element_ct == PD_JSON)
        meta["tensors"] = summaries
        return Decoded(PROTOCOL, cols.table(), meta)

    def encode(self,
        table: Table,
        part: str,
        *,
        id: str | None = None,
        model_name: str = "model",
        model_version: str | None = None,
        parameters: dict[str, Any] | None = None,
        content_type: str | None = "pd",
    ) -> dict[str, Any]:
        """One tensor of shape ``[N]`` per column, datatype inferred; MLServer ``pd`` by default."""
        names, columns, _ = table_columns(table, PROTOCOL)
        tensors = []
        for name, values in zip(names, columns, strict=True):
            datatype, shape, data, params = _infer(name, values)
            tensor: dict[str, Any] = {"name": name, "shape": shape, "datatype": datatype}
            if params:
                tensor["parameters"] = params
            tensor["data"] = data
            tensors.append(tensor)
        out: dict[str, Any] = {}
        if part == "response":
            out["model_name"] = model_name
            if model_version is not None:
                out["model_version"] = model_version
        if id is not None:
            out["id"] = id
        params_out = dict(parameters or {})
        if content_type is not None:
            params_out.setdefault("content_type", content_type)
        if params_out:
            out["parameters"] = params_out
        out[_KEY[part]] = tensors
        return out


CODEC = OipV2()

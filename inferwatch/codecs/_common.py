"""Shared machinery of the codecs: parsing, limits, tensors, records and column naming.

Nothing here is public; :mod:`inferwatch.codecs` re-exports what is.

Column-naming rule (the same for every protocol)
------------------------------------------------
1. Explicit column names in the payload win: Seldon ``data.names``, MLflow
   ``dataframe_split.columns``, the keys of record objects.
2. A *tensor* (an OIP input/output, a named TF Serving input, a Seldon ``ndarray``...) of
   shape ``[N]`` or ``[N, 1]`` is one column, named after the tensor.
3. A tensor of shape ``[N, k]`` (``k > 1``) is ``k`` columns ``<tensor>_0 .. <tensor>_{k-1}``,
   whether or not other tensors are present: a column's name never depends on what else
   the payload holds, so it stays stable when optional inputs come and go.
4. A tensor without a name (Seldon data without ``names``, bare ``instances`` lists,
   ``predictions`` lists, a bare list as ``inputs``) uses ``f`` as its name with no
   separator: ``f0`` for one column, ``f0 .. f{k-1}`` for ``k``.
5. Rank > 2, a 2-D tensor wider than :data:`WIDE`, and every tensor of an MLServer ``pd``
   payload keep one column per tensor; each row's value is that row's (nested) list.
6. A name already taken gets pandas' suffix: ``x``, ``x.1``, ``x.2`` ...
7. Values inside *records* (JSON objects) are cells: lists stay lists, nested objects
   flatten to dotted names (``{"a": {"b": 1}}`` -> column ``a.b``).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any, Literal

import numpy as np
import orjson

from inferwatch.errors import DecodeError
from inferwatch.table import Table

Part = Literal["request", "response"]
PARTS: tuple[str, ...] = ("request", "response")

#: Most dimensions a tensor may have (deeper nesting is refused, not recursed into).
MAX_RANK = 32
#: Most cells one payload may decode to; larger shapes are refused before any work.
MAX_CELLS = 100_000_000
#: A zero-size tensor's shape with zeros read as ones may not exceed this (``[10**9, 0, 2]``).
MAX_EMPTY = 1_000_000
#: Deepest object nesting flattened into dotted column names.
MAX_DEPTH = 64
#: A 2-D tensor wider than this stays one column of per-row lists.
WIDE = 10_000

_SCALARS = (str, int, float, bool, type(None))
_JSON_TYPES = frozenset({str, int, float, bool, type(None), list, dict})
_NONE = type(None)


@dataclass(slots=True)
class Decoded:
    """The result of :func:`inferwatch.codecs.decode`.

    ``table`` holds the rows as columns; ``meta`` what the payload says about itself
    (``id``, ``model_name``, ``model_version``, ``parameters``, ``names``, ``kind`` ...).
    """

    protocol: str
    table: Table
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Number of decoded rows."""
        return len(next(iter(self.table.values()))) if self.table else 0


def fail(protocol: str | None, reason: str, expected: str | None = None) -> DecodeError:
    """A :class:`DecodeError` to ``raise`` (keeps call sites one line)."""
    return DecodeError(reason, protocol=protocol, expected=expected)


def describe(value: Any) -> str:
    """Short type description of a JSON value for error messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        keys = list(value)[:5]
        return f"an object with keys {keys}" if keys else "an empty object"
    return type(value).__name__


# --------------------------------------------------------------------------- parsing

_BINARY_TYPES = ("application/x-protobuf", "application/protobuf", "application/grpc", "application/vnd.google.protobuf")
_NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/jsonlines", "application/x-jsonlines")


def _default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes_to_value(bytes(obj))
    if hasattr(obj, "tolist"):  # numpy scalars/arrays not covered by OPT_SERIALIZE_NUMPY
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def parse(body: Any, content_type: str | None = None) -> Any:
    """Body (bytes, str, or already-parsed Python objects) -> plain JSON values.

    Python objects are normalised through orjson too, so tuples, numpy values, bytes and
    datetimes become JSON values and absurd nesting is refused.
    """
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        raw: bytes | str = bytes(body) if not isinstance(body, (bytes, str)) else body
        media, charset = _media(content_type)
        if media in _BINARY_TYPES:
            raise fail(None, f"binary body of content type {media!r} is not supported", "a JSON body")
        if charset and charset not in ("utf-8", "utf8") and isinstance(raw, bytes):
            try:
                raw = raw.decode(charset)
            except (LookupError, ValueError) as exc:  # unknown codec, bad bytes
                raise fail(None, f"cannot decode body as {charset}: {exc}") from exc
        if isinstance(raw, bytes) and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        elif isinstance(raw, str) and raw.startswith("\ufeff"):
            raw = raw[1:]
        if not raw.strip():
            raise fail(None, "empty body", "a JSON body")
        if media in _NDJSON_TYPES:
            try:
                return [orjson.loads(line) for line in raw.splitlines() if line.strip()]
            except orjson.JSONDecodeError as exc:
                raise fail(None, f"invalid JSON line: {exc}") from exc
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise fail(None, f"invalid JSON: {exc}") from exc
    try:
        dumped = orjson.dumps(
            body, default=_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        )
    except (orjson.JSONEncodeError, TypeError, ValueError, RecursionError) as exc:
        raise fail(None, f"not JSON-serialisable: {exc}") from exc
    return orjson.loads(dumped)


def _media(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    parts = [p.strip() for p in str(content_type).split(";")]
    charset = None
    for p in parts[1:]:
        if p.lower().startswith("charset="):
            charset = p.split("=", 1)[1].strip().strip('"').lower() or None
    return parts[0].lower(), charset


def dumps(obj: Any) -> bytes:
    """Serialise an encoded payload."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


# --------------------------------------------------------------------------- values


def bytes_to_value(raw: bytes) -> str:
    """Bytes as a JSON-friendly string: the text when UTF-8, else base64."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")


_URLSAFE_B64 = re.compile(r"[A-Za-z0-9_\-]*={0,2}")


def b64_to_value(text: Any, protocol: str, what: str = "base64 value") -> str | None:
    """A base64 string -> decoded text (UTF-8) or the base64 string itself."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise fail(protocol, f"{what} is {describe(text)}", "a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        # URL-safe alphabet and missing padding, as some clients send it; nothing else.
        if not _URLSAFE_B64.fullmatch(text) or len(text.rstrip("=")) % 4 == 1:
            raise fail(protocol, f"{what} is not valid base64") from None
        raw = base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return text


def check_datetime(text: Any, protocol: str) -> Any:
    """Validate an ISO-8601 value (MLServer ``datetime`` content type); keep it as given."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise fail(protocol, f"datetime value is {describe(text)}", "an ISO-8601 string")
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise fail(protocol, f"{text[:40]!r} is not an ISO-8601 datetime") from exc
    return text


def scalar_leaves(flat: list[Any], protocol: str, what: str) -> None:
    """Refuse objects (or lists) among what should be scalar tensor elements."""
    types = set(map(type, flat))
    if not types.issubset(_SCALARS):
        bad = next(v for v in flat if not isinstance(v, _SCALARS))
        raise fail(protocol, f"{what} holds {describe(bad)} where a scalar was expected")


# --------------------------------------------------------------------------- tensors


def check_shape(shape: Any, protocol: str, what: str) -> list[int]:
    """A validated shape: a list of at most MAX_RANK non-negative ints, bounded product."""
    if not isinstance(shape, list):
        raise fail(protocol, f"{what} shape is {describe(shape)}", "a list of non-negative integers")
    if len(shape) > MAX_RANK:
        raise fail(protocol, f"{what} has rank {len(shape)} (at most {MAX_RANK})")
    out: list[int] = []
    for d in shape:
        if isinstance(d, str) and d.isascii() and d.isdigit() and len(d) <= 20:  # proto3 JSON int64
            d = int(d)
        if isinstance(d, bool) or not isinstance(d, int) or d < 0:
            raise fail(protocol, f"{what} shape {shape!r} has an invalid dimension", "non-negative integers")
        out.append(d)
    if math.prod(out) > MAX_CELLS:
        raise fail(protocol, f"{what} shape {out} has more than {MAX_CELLS} elements")
    if 0 in out and math.prod(max(d, 1) for d in out) > MAX_EMPTY:
        raise fail(protocol, f"{what} shape {out} is empty but would still build {MAX_EMPTY}+ nested lists")
    return out


def flatten(data: Any, protocol: str, what: str) -> tuple[list[int], list[Any]]:
    """Nested lists -> (regular shape, row-major flat list). Ragged nesting is refused.

    A non-list is a rank-0 tensor: shape ``[]``, one element.
    """
    if not isinstance(data, list):
        return [], [data]
    shape = [len(data)]
    flat: list[Any] = data
    while flat and type(flat[0]) is list:
        if len(shape) >= MAX_RANK:
            raise fail(protocol, f"{what} is nested deeper than {MAX_RANK} levels")
        k = len(flat[0])
        if set(map(type, flat)) != {list} or set(map(len, flat)) != {k}:
            raise fail(protocol, f"{what} is ragged: nested lists of different lengths or mixed with scalars")
        flat = list(chain.from_iterable(flat))
        shape.append(k)
    if list in set(map(type, flat)):
        raise fail(protocol, f"{what} is ragged: nested lists mixed with scalars")
    return shape, flat


def typed_flat(data: Any, shape: list[int], protocol: str, what: str) -> list[Any]:
    """Flat (or nested) ``data`` checked against ``shape``; returns the flat list."""
    if not isinstance(data, list):
        raise fail(protocol, f"{what} data is {describe(data)}", "a list")
    _, flat = flatten(data, protocol, what)
    want = math.prod(shape)
    if len(flat) != want:
        raise fail(protocol, f"{what} has {len(flat)} elements but shape {shape} needs {want}")
    return flat


_INT_RANGES: dict[str, tuple[int, int]] = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
FLOAT_TYPES = ("FP16", "FP32", "FP64", "BF16")
DATATYPES: tuple[str, ...] = ("BOOL", *_INT_RANGES, *FLOAT_TYPES, "BYTES")


def _nan_to_none(values: list[Any]) -> list[Any]:
    return [None if v != v else v for v in values]


def coerce(flat: list[Any], datatype: str, protocol: str, what: str, *, numeric_strings: bool = False) -> list[Any]:
    """Elements of a typed tensor -> JSON-friendly Python values of that datatype.

    Numbers are checked with numpy (no per-element Python work on the common path);
    ``None`` stays ``None``. ``numeric_strings`` accepts "1.5"/"NaN" (proto3 JSON).
    """
    if not flat:
        return []
    types = set(map(type, flat))
    if not types.issubset(_SCALARS):
        scalar_leaves(flat, protocol, what)
    if datatype == "BYTES":
        if not types.issubset((str, _NONE)):
            bad = next(v for v in flat if not isinstance(v, (str, _NONE)))
            raise fail(protocol, f"BYTES {what} holds {describe(bad)}", "strings")
        return flat
    # fast paths: the values already are what the datatype says
    if types == {float} and datatype in FLOAT_TYPES:
        return flat
    if types == {bool} and datatype == "BOOL":
        return flat
    if types == {int} and datatype in _INT_RANGES:  # exact, also beyond int64
        lo, hi = _INT_RANGES[datatype]
        if min(flat) < lo or max(flat) > hi:
            raise fail(protocol, f"{datatype} {what} holds values outside [{lo}, {hi}]")
        return flat
    if _NONE in types:
        return _coerce_objects(flat, datatype, protocol, what, numeric_strings)
    arr = np.asarray(flat)
    kind = arr.dtype.kind
    if kind == "U" and numeric_strings:
        try:
            arr = arr.astype(np.float64)
        except ValueError as exc:
            raise fail(protocol, f"{datatype} {what} holds non-numeric strings") from exc
        kind = "f"
    if kind == "O":  # integers beyond 64 bits mixed with others
        return _coerce_objects(flat, datatype, protocol, what, numeric_strings)
    if kind not in "biuf":
        raise fail(protocol, f"{datatype} {what} holds non-numeric values", "numbers")
    if datatype == "BOOL":
        if kind in "iu" and bool(np.isin(arr, (0, 1)).all()):
            return (arr != 0).tolist()  # type: ignore[no-any-return]
        raise fail(protocol, f"BOOL {what} holds values other than true/false/0/1")
    if datatype in _INT_RANGES:
        lo, hi = _INT_RANGES[datatype]
        if kind == "f" and (not bool(np.isfinite(arr).all()) or not bool((arr == np.floor(arr)).all())):
            raise fail(protocol, f"{datatype} {what} holds non-integral numbers")
        if float(arr.min()) < lo or float(arr.max()) > hi:
            raise fail(protocol, f"{datatype} {what} holds values outside [{lo}, {hi}]")
        if types & {str}:
            return [int(v) for v in arr.tolist()]
        return [int(v) for v in flat]  # exact for big ints mixed with integral floats
    # floating point
    out = arr.astype(np.float64)
    values: list[Any] = out.tolist()
    if kind == "f" and bool(np.isnan(out).any()):
        values = _nan_to_none(values)
    return values


def _coerce_objects(flat: list[Any], datatype: str, protocol: str, what: str, numeric_strings: bool) -> list[Any]:
    """Slow path: ``None`` among the values, or integers beyond 64 bits."""
    out: list[Any] = []
    if numeric_strings and str in set(map(type, flat)):
        try:
            flat = [float(v) if isinstance(v, str) else v for v in flat]
        except ValueError as exc:
            raise fail(protocol, f"{datatype} {what} holds non-numeric strings") from exc
        flat = [None if isinstance(v, float) and v != v else v for v in flat]
    if datatype == "BOOL":
        for v in flat:
            if v is None or isinstance(v, bool):
                out.append(v)
            elif isinstance(v, int) and v in (0, 1):
                out.append(bool(v))
            else:
                raise fail(protocol, f"BOOL {what} holds {describe(v)}")
        return out
    if datatype in _INT_RANGES:
        lo, hi = _INT_RANGES[datatype]
        for v in flat:
            if v is None:
                out.append(None)
                continue
            if isinstance(v, float) and math.isfinite(v) and v.is_integer():
                v = int(v)
            if not isinstance(v, int) or not lo <= v <= hi:
                raise fail(protocol, f"{datatype} {what} holds {v!r:.40}", f"integers in [{lo}, {hi}]")
            out.append(int(v))
        return out
    for v in flat:
        if v is None:
            out.append(None)
        elif isinstance(v, (int, float)):
            try:
                out.append(float(v))
            except OverflowError as exc:
                raise fail(protocol, f"{datatype} {what} holds a number too large for a float") from exc
        else:
            raise fail(protocol, f"{datatype} {what} holds {describe(v)}", "numbers")
    return out


def nest(flat: list[Any], dims: Sequence[int]) -> list[Any]:
    """Row-major flat list -> nested lists of shape ``dims``."""
    if len(dims) <= 1:
        return list(flat)
    step = math.prod(dims[1:])
    rest = dims[1:]
    return [nest(flat[i * step : (i + 1) * step], rest) for i in range(dims[0])]


def tensor_columns(
    name: str | None,
    shape: Sequence[int],
    flat: list[Any],
    protocol: str,
    *,
    names: Sequence[Any] | None = None,
    one_column: bool = False,
) -> list[tuple[str, list[Any], bool]]:
    """Apply the column-naming rule to one tensor.

    Returns ``(column, values, broadcast)`` triples; ``broadcast`` marks a rank-0
    tensor (one value for every row). ``one_column`` (MLServer ``pd``) keeps a 2-D
    tensor as one column of per-row lists.
    """
    if len(shape) == 0:
        col = _names_for(name, 1, names, protocol)[0]
        return [(col, flat[:1], True)]
    n = shape[0]
    if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
        col = _names_for(name, 1, names, protocol)[0]
        return [(col, flat if len(shape) == 1 else flat[0:n], False)]
    if len(shape) == 2 and not one_column and shape[1] <= WIDE:
        k = shape[1]
        cols = _names_for(name, k, names, protocol)
        return [(cols[j], flat[j::k], False) for j in range(k)]
    col = _names_for(name, 1, names, protocol)[0]
    return [(col, nest(flat, shape), False)]


def _names_for(name: str | None, k: int, names: Sequence[Any] | None, protocol: str) -> list[str]:
    if names is not None:
        if len(names) != k:
            raise fail(protocol, f"{len(names)} names given for {k} columns", "one name per column")
        return [str(n) for n in names]
    if name is None:
        return ["f0"] if k == 1 else [f"f{j}" for j in range(k)]
    return [name] if k == 1 else [f"{name}_{j}" for j in range(k)]


def check_depth(value: Any, protocol: str | None, what: str, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than ``limit`` (level by level, no recursion)."""
    level = [value]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            raise fail(protocol, f"{what} is nested deeper than {limit} levels")
        nxt: list[Any] = []
        for v in level:
            if type(v) is list:
                nxt.extend(x for x in v if type(x) is list or type(x) is dict)
            elif type(v) is dict:
                nxt.extend(x for x in v.values() if type(x) is list or type(x) is dict)
        level = nxt


class Columns:
    """Accumulates decoded columns, dedupes names, checks one batch size for all."""

    __slots__ = ("_broadcast", "_cols", "protocol")

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self._cols: dict[str, list[Any]] = {}
        self._broadcast: set[str] = set()

    def add(self, name: str, values: list[Any], broadcast: bool = False, *, cells: bool = False) -> None:
        """Add a column; ``cells`` marks free-form values (records) whose nesting is bounded here."""
        if cells and set(map(type, values)) & {list, dict}:
            check_depth(values, self.protocol, f"column {name!r}")
        key = name
        i = 0
        while key in self._cols:
            i += 1
            key = f"{name}.{i}"
        self._cols[key] = values
        if broadcast:
            self._broadcast.add(key)

    def add_tensor(self, cols: Iterable[tuple[str, list[Any], bool]]) -> None:
        for name, values, broadcast in cols:
            self.add(name, values, broadcast)

    def table(self) -> Table:
        sizes = {len(v) for k, v in self._cols.items() if k not in self._broadcast}
        if len(sizes) > 1:
            detail = {k: len(v) for k, v in self._cols.items() if k not in self._broadcast}
            raise fail(self.protocol, f"tensors have different batch sizes: {dict(list(detail.items())[:8])}")
        n = sizes.pop() if sizes else 1
        if n * len(self._cols) > MAX_CELLS:
            raise fail(self.protocol, f"payload decodes to more than {MAX_CELLS} cells")
        out: Table = {}
        for k, v in self._cols.items():
            out[k] = v * n if k in self._broadcast else v
        return out


# --------------------------------------------------------------------------- records


def flatten_record(obj: Mapping[str, Any], protocol: str, *, b64: bool = False) -> dict[str, Any]:
    """One record object -> flat dict; nested objects become dotted names.

    With ``b64`` (TF Serving), ``{"b64": "..."}`` values are decoded binary strings.
    An empty nested object is ``None``.
    """
    if dict not in set(map(type, obj.values())):
        return obj  # type: ignore[return-value]  # read-only use by callers
    return _flat(obj, "", protocol, b64, 0)


def _flat(obj: Mapping[str, Any], prefix: str, protocol: str, b64: bool, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise fail(protocol, f"record nested deeper than {MAX_DEPTH} levels")
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if type(value) is dict:
            if b64 and set(value) == {"b64"}:
                out[name] = b64_to_value(value["b64"], protocol, f"{name} b64 value")
            elif value:
                out.update(_flat(value, f"{name}.", protocol, b64, depth + 1))
            else:
                out[name] = None
        else:
            out[name] = value
    return out


def decode_b64_leaves(flat: list[Any], protocol: str, what: str) -> list[Any]:
    """TF Serving's binary convention: ``{"b64": "..."}`` elements -> strings."""
    if dict not in set(map(type, flat)):
        return flat
    out: list[Any] = []
    for v in flat:
        if type(v) is dict:
            if set(v) != {"b64"}:
                raise fail(protocol, f"{what} holds {describe(v)} where a scalar was expected")
            out.append(b64_to_value(v["b64"], protocol, f"{what} b64 value"))
        else:
            out.append(v)
    return out


def named_values(name: str, values: list[Any], protocol: str) -> list[tuple[str, list[Any], bool]]:
    """Per-row values of one named input (TF row format): split regular lists, else one column."""
    if values and set(map(type, values)) == {list}:
        try:
            shape, flat = flatten(values, protocol, name)
            flat = decode_b64_leaves(flat, protocol, name)
            scalar_leaves(flat, protocol, name)
        except DecodeError:
            check_depth(values, protocol, f"column {name!r}")
            return [(name, values, False)]
        return tensor_columns(name, shape, flat, protocol)
    if set(map(type, values)) & {list, dict}:
        check_depth(values, protocol, f"column {name!r}")
    return [(name, values, False)]


def records_table(items: list[Any], protocol: str, *, b64: bool = False, split: bool = False) -> Table:
    """A list of record objects -> table (keys in first-seen order, missing -> ``None``).

    ``split`` applies the tensor rule to list values (TF Serving named inputs); otherwise
    list values are cells.
    """
    rows = [flatten_record(r, protocol, b64=b64) for r in items]
    cols = Columns(protocol)
    first = tuple(rows[0]) if rows else ()
    if all(tuple(r) == first for r in rows):  # the usual case: same keys, same order
        columns: Iterable[tuple[str, list[Any]]] = zip(
            first, map(list, zip(*(r.values() for r in rows), strict=True)), strict=True
        )
    else:
        keys: dict[str, None] = {}
        for r in rows:
            keys.update(dict.fromkeys(r))
        columns = ((key, [r.get(key) for r in rows]) for key in keys)
    for key, values in columns:
        if split:
            cols.add_tensor(named_values(key, values, protocol))
        else:
            cols.add(key, values, cells=True)
    return cols.table()


def rows_table(
    items: Any, protocol: str, what: str, *, b64: bool = False, split: bool = False, name: str | None = None
) -> Table:
    """A batch given row by row: objects (records), lists (an unnamed tensor) or scalars."""
    if not isinstance(items, list):
        raise fail(protocol, f"{what} is {describe(items)}", "a list")
    if not items:
        return {}
    types = set(map(type, items))
    if dict in types:
        binary = b64 and all(set(d) == {"b64"} for d in items if type(d) is dict)
        if types == {dict} and not binary:
            return records_table(items, protocol, b64=b64, split=split)
        if not binary:
            raise fail(protocol, f"{what} mixes objects with other values", "all objects or no objects")
    shape, flat = flatten(items, protocol, what)
    if b64:
        flat = decode_b64_leaves(flat, protocol, what)
    scalar_leaves(flat, protocol, what)
    cols = Columns(protocol)
    cols.add_tensor(tensor_columns(name, shape, flat, protocol))
    return cols.table()


def columnar_table(value: Any, protocol: str, what: str, *, b64: bool = True) -> Table:
    """Columnar inputs/outputs: a dict of named tensors, or one unnamed tensor (a list)."""
    cols = Columns(protocol)
    if isinstance(value, dict):
        items: list[tuple[str | None, Any]] = list(value.items())
    elif isinstance(value, list):
        items = [(None, value)]
    else:
        raise fail(protocol, f"{what} is {describe(value)}", "a list or an object of named lists")
    for name, tensor in items:
        label = f"{what}.{name}" if name is not None else what
        shape, flat = flatten(tensor, protocol, label)
        if b64:
            flat = decode_b64_leaves(flat, protocol, label)
        scalar_leaves(flat, protocol, label)
        cols.add_tensor(tensor_columns(name, shape, flat, protocol))
    return cols.table()


# --------------------------------------------------------------------------- encoding


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
                v = orjson.loads(orjson.dumps(v, default=_default, option=orjson.OPT_SERIALIZE_NUMPY))
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

"""Tensors: shapes, regular nesting, datatypes and the column-naming rule for one tensor."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

from inferwatch.codecs._values import SCALARS, scalar_leaves
from inferwatch.codecs.base import describe, fail
from inferwatch.codecs.limits import MAX_CELLS, MAX_EMPTY, MAX_RANK, WIDE

_NONE = type(None)


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
    ``None`` stays ``None`` and a floating-point NaN becomes ``None`` (missing), however it
    came: "NaN" text, decoded bytes or a Python float. ``numeric_strings`` accepts
    "1.5"/"NaN" (proto3 JSON).
    """
    if not flat:
        return []
    types = set(map(type, flat))
    if not types.issubset(SCALARS):
        scalar_leaves(flat, protocol, what)
    if datatype == "BYTES":
        if not types.issubset((str, _NONE)):
            bad = next(v for v in flat if not isinstance(v, (str, _NONE)))
            raise fail(protocol, f"BYTES {what} holds {describe(bad)}", "strings")
        return flat
    # fast paths: the values already are what the datatype says
    if types == {float} and datatype in FLOAT_TYPES:
        # NaN is a missing cell (None) whichever form carried it: "NaN" text, raw bytes or a float.
        # sum() is NaN when any value is (one C loop); a NaN from inf - inf only costs the scan
        return _nan_to_none(flat) if math.isnan(sum(flat)) else flat
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
        # the range on the exact values: a float64 bound rounds 2**63 - 1 up to 2**63
        ints = [int(v) for v in arr.tolist()] if types & {str} else [int(v) for v in flat]
        if min(ints) < lo or max(ints) > hi:
            raise fail(protocol, f"{datatype} {what} holds values outside [{lo}, {hi}]")
        return ints
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
                out.append(None if v != v else float(v))
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

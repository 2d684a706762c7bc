"""Input conversion shared by the detectors (private).

Detectors accept a :class:`pandas.DataFrame` or a :data:`inferwatch.table.Table`
(``dict`` of column name -> list of values). Both become a ``dict`` of column name ->
1-D numpy array here, once per batch.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from inferwatch.detector import Data
from inferwatch.errors import DetectorError

Columns: TypeAlias = dict[str, np.ndarray]

_NUMBER = (int, float, np.integer, np.floating)
_BOOL = (bool, np.bool_)

__all__ = [
    "Columns",
    "Data",
    "as_float",
    "coerce_float",
    "columns",
    "columns_and_rows",
    "is_numeric",
    "looks_numeric",
    "n_missing",
    "n_rows",
    "object_column",
    "probability",
    "readable",
    "unhashable_as_bad",
]

NUMERIC_SHARE = 0.9
"""An object column whose present cells are at least this share numbers is numerical
(the rest are bad cells, counted and treated as missing)."""


def probability(name: str, value: Any) -> float:
    """``value`` as a float strictly between 0 and 1 (a significance level, a false-positive
    rate); a ``ValueError`` naming the parameter otherwise."""
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return float(value)


def object_column(values: Any) -> np.ndarray:
    """The cells as a 1-D object array, one cell each: a cell that is a list stays one cell
    (``np.asarray`` would make it a dimension, or text of every cell beside a text one)."""
    cells = list(values)
    arr = np.empty(len(cells), dtype=object)
    for i, cell in enumerate(cells):
        arr[i] = cell
    return arr


def readable(arr: np.ndarray, numeric: bool) -> tuple[np.ndarray, int]:
    """``(cells, number of bad cells)`` of a column as a test reads it: a numerical feature's
    as numbers (:func:`coerce_float`), a categorical one's without cells that cannot be a
    category (:func:`unhashable_as_bad`)."""
    if numeric:
        return (arr, 0) if arr.dtype.kind in "biuf" else coerce_float(arr)
    return unhashable_as_bad(arr)


def _column(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        # cells that are themselves lists (e.g. class probabilities): one object per row
        return object_column(values)
    if arr.dtype.kind in "biuf":
        return arr
    if arr.dtype.kind in "US" and not isinstance(values, np.ndarray) and any(not isinstance(v, str) for v in values):
        # numpy made text of every cell (a float nan gap became the text "nan", a category that is
        # not there): the cells as they were, so a gap stays missing
        return object_column(values)
    if arr.dtype.kind == "O":
        # A column of numbers with None holes stays numeric (None -> nan); strings,
        # booleans and mixed columns stay objects (categories).
        if all(v is None or (isinstance(v, _NUMBER) and not isinstance(v, _BOOL)) for v in arr):
            return np.array(arr, dtype=float)
        return arr
    return arr.astype(object)


def columns(data: Data | None) -> Columns:
    """A DataFrame or Table as ``{name: 1-D array}``; all columns the same length."""
    return columns_and_rows(data)[0]


def columns_and_rows(data: Data | None, names: Collection[str] | None = None) -> tuple[Columns, int]:
    """:func:`columns` and the batch's row count. With ``names`` only those columns are
    converted (the others are only checked for equal length)."""
    if data is None:
        return {}, 0
    out: Columns = {}
    lengths: dict[str, int] = {}
    if isinstance(data, pd.DataFrame):
        for c, series in data.items():
            name = str(c)
            if names is None or name in names:
                out[name] = _column(series.to_numpy())
                lengths[name] = len(out[name])
            else:
                lengths[name] = len(data)
    elif isinstance(data, Mapping):
        for k, v in data.items():
            name = str(k)
            if names is None or name in names:
                out[name] = _column(v)
                lengths[name] = len(out[name])
            else:
                try:
                    lengths[name] = len(v)
                except TypeError:
                    lengths[name] = len(_column(v))
    else:
        raise DetectorError(f"expected a pandas DataFrame or a Table (dict of lists), got {type(data).__name__}")
    if len(set(lengths.values())) > 1:
        raise DetectorError(f"columns of unequal length: {lengths}")
    return out, next(iter(lengths.values()), 0)


def n_rows(cols: Columns) -> int:
    return len(next(iter(cols.values()))) if cols else 0


def is_numeric(arr: np.ndarray) -> bool:
    """True for int/uint/float columns (bool counts as categorical)."""
    return arr.dtype.kind in "iuf"


def as_float(arr: np.ndarray) -> np.ndarray | None:
    """The column as float64, or ``None`` when it holds non-numbers."""
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64, copy=False)
    try:
        return np.array(arr, dtype=np.float64)
    except (TypeError, ValueError):
        return None


#: what pandas' infer_dtype calls arrays whose values are all hashable scalars
_SCALAR_KINDS = frozenset({"string", "bytes", "integer", "floating", "boolean", "empty", "mixed-integer-float",
                           "decimal", "complex", "datetime64", "datetime", "date", "timedelta64", "timedelta",
                           "time", "period", "categorical"})


def unhashable_as_bad(arr: np.ndarray) -> tuple[np.ndarray, int]:
    """``(values, number of bad cells)`` of a column of categories: cells that cannot be a
    category (lists, objects: ``[1, 2]``, ``{"k": 1}``; tuples too, a list in JSON) become ``None`` and are counted, as
    :func:`coerce_float` counts the cells of a numerical column that are not numbers (a test
    on them failed with ``TypeError: unhashable type``). Columns of plain values pass as they are.

    >>> unhashable_as_bad(np.array(["a", [1, 2], {"k": 1}, None, "b"], dtype=object))
    (array(['a', None, None, None, 'b'], dtype=object), 2)
    """
    if arr.dtype.kind != "O" or pd.api.types.infer_dtype(arr, skipna=True) in _SCALAR_KINDS:
        return arr, 0
    mask = np.fromiter((not isinstance(v, Hashable) or isinstance(v, tuple) for v in arr.tolist()), bool, len(arr))
    if not mask.any():
        return arr, 0
    out = arr.copy()
    out[mask] = None
    return out, int(mask.sum())


def coerce_float(arr: np.ndarray) -> tuple[np.ndarray, int]:
    """``(values as float64, number of bad cells)``: cells that cannot be read as a number
    (``'?'``, ``'n/a'``, lists, ...) become ``nan`` and are counted; missing cells
    (``None``/``nan``) become ``nan`` and are not counted as bad."""
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64, copy=False), 0
    out = as_float(arr)
    if out is not None:
        return out, 0
    obj = np.asarray(arr, dtype=object)
    missing = pd.isna(obj) if obj.ndim == 1 else np.zeros(len(obj), bool)
    vals = pd.to_numeric(pd.Series(obj, dtype=object), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(vals) & ~np.asarray(missing, dtype=bool)
    return vals, int(bad.sum())


def n_missing(arr: np.ndarray) -> int:
    """Number of missing cells (``None``, ``nan``, ``NA``)."""
    if arr.dtype.kind == "f":
        return int(np.isnan(arr).sum())
    if arr.dtype.kind == "O":
        if pd.api.types.infer_dtype(arr, skipna=False) in ("string", "bytes", "integer", "boolean"):
            return 0  # one typed scan: these kinds are only reported without missing values
        return int(np.asarray(pd.isna(arr), dtype=bool).sum())
    return 0


def looks_numeric(arr: np.ndarray) -> bool:
    """int/uint/float columns, and object columns of numbers with a few bad cells (at least
    :data:`NUMERIC_SHARE` of the present cells are numbers; booleans are not numbers)."""
    if arr.dtype.kind in "iuf":
        return True
    if arr.dtype.kind != "O" or not len(arr):
        return False
    present = [v for v in arr.tolist() if not (v is None or (isinstance(v, float) and v != v))]
    if not present:
        return False
    allowed = (1 - NUMERIC_SHARE) * len(present)
    head = int(allowed) + 1
    if head < len(present):  # more bad cells than allowed in the head alone: decided without the rest
        _, bad = coerce_float(np.array(present[:head], dtype=object))
        if bad > allowed:  # (before the scan for booleans below, which also says no: a text column
            return False   # is decided by its head alone)
    if any(isinstance(v, _BOOL) for v in present):
        return False
    _, bad = coerce_float(np.array(present, dtype=object))
    return bad <= allowed and bad < len(present)

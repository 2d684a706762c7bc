"""Input conversion shared by the detectors (private).

Detectors accept a :class:`pandas.DataFrame` or a :data:`inferwatch.table.Table`
(``dict`` of column name -> list of values). Both become a ``dict`` of column name ->
1-D numpy array here, once per batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from inferwatch.errors import DetectorError

Data: TypeAlias = pd.DataFrame | Mapping[str, Sequence[Any]]
Columns: TypeAlias = dict[str, np.ndarray]

_NUMBER = (int, float, np.integer, np.floating)
_BOOL = (bool, np.bool_)

__all__ = ["Columns", "Data", "as_float", "columns", "is_numeric", "n_rows"]


def _column(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        # cells that are themselves lists (e.g. class probabilities): one object per row
        cells = list(values)
        arr = np.empty(len(cells), dtype=object)
        for i, cell in enumerate(cells):
            arr[i] = cell
        return arr
    if arr.dtype.kind in "biuf":
        return arr
    if arr.dtype.kind == "O":
        # A column of numbers with None holes stays numeric (None -> nan); strings,
        # booleans and mixed columns stay objects (categories).
        if all(v is None or (isinstance(v, _NUMBER) and not isinstance(v, _BOOL)) for v in arr):
            return np.array(arr, dtype=float)
        return arr
    return arr.astype(object)


def columns(data: Data | None) -> Columns:
    """A DataFrame or Table as ``{name: 1-D array}``; all columns the same length."""
    if data is None:
        return {}
    if isinstance(data, pd.DataFrame):
        out = {str(c): _column(data[c].to_numpy()) for c in data.columns}
    elif isinstance(data, Mapping):
        out = {str(k): _column(v) for k, v in data.items()}
    else:
        raise DetectorError(f"expected a pandas DataFrame or a Table (dict of lists), got {type(data).__name__}")
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        raise DetectorError(f"columns of unequal length: { {k: len(v) for k, v in out.items()} }")
    return out


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

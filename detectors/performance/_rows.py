"""Reading predictions, scores and labels out of a batch (private).

A performance batch is a table of rows (their ids are given beside it) with any of: the predicted
label or value, class probabilities (one column per class, one column of lists, or for two
classes one column with the positive class's probability) and the true label. A row with a
label but no prediction is a label arriving on its own (late feedback).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from detectors.common._data import Columns, as_float
from inferwatch.errors import DetectorError

__all__ = ["is_missing", "label_list", "score_matrix", "sorted_classes"]


def is_missing(value: Any) -> bool:
    """``None`` or a float NaN (a row without a label)."""
    return value is None or (isinstance(value, float | np.floating) and np.isnan(value))


def label_list(arr: np.ndarray) -> list[Any]:
    """A column as plain Python values (numpy scalars unwrapped), missing ones as ``None``."""
    return [None if is_missing(v) else v for v in arr.tolist()]


def sorted_classes(values: Sequence[Any]) -> list[Hashable]:
    """The distinct labels in scikit-learn's order (sorted; by text when types are mixed)."""
    distinct = {v for v in values if not is_missing(v)}
    try:
        return sorted(distinct)
    except TypeError:
        return sorted(distinct, key=str)


def score_matrix(cols: Columns, scores: str | Sequence[str], n_classes: int, n: int) -> np.ndarray | None:
    """Rows x classes probabilities, ``nan`` rows where absent; ``None`` if no score column is in ``cols``."""
    if isinstance(scores, str):
        col = cols.get(scores)
        if col is None:
            return None
        if col.dtype.kind == "O" and any(isinstance(v, list | tuple | np.ndarray) for v in col):
            out = np.full((n, n_classes), np.nan)
            for i, cell in enumerate(col):
                if cell is None:
                    continue
                row = np.asarray(cell, dtype=np.float64)
                if row.shape != (n_classes,):
                    raise DetectorError(f"column {scores!r}: {row.size} probabilities for {n_classes} classes")
                out[i] = row
            return out
        p = as_float(col)
        if p is None:
            raise DetectorError(f"column {scores!r} does not hold probabilities")
        if n_classes != 2:
            raise DetectorError(f"one score column {scores!r} needs two classes, not {n_classes}")
        return np.column_stack([1.0 - p, p])
    names = list(scores)
    if not any(s in cols for s in names):
        return None
    if len(names) != n_classes:
        raise DetectorError(f"{len(names)} score columns for {n_classes} classes")
    out = np.full((n, n_classes), np.nan)
    for j, s in enumerate(names):
        col = cols.get(s)
        if col is not None:
            v = as_float(col)
            if v is None:
                raise DetectorError(f"score column {s!r} is not numerical")
            out[:, j] = v
    return out

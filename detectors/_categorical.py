"""Category counting and the chi-squared contingency test (private)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2

__all__ = ["chi2_from_counts", "count", "drop_missing", "is_categorical"]


def is_categorical(values: np.ndarray) -> bool:
    """Strings, booleans and other objects are categories; numbers are not."""
    return values.dtype.kind not in "iufcmM"


def drop_missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return values[~np.isnan(values)]
    if values.dtype.kind == "O":
        return values[~pd.isna(values)]
    return values


def count(values: np.ndarray) -> dict[Any, int]:
    """Category -> count, missing values excluded."""
    if values.dtype.kind in "biuf":
        v, c = np.unique(values, return_counts=True)
        return dict(zip(v.tolist(), c.tolist(), strict=True))
    vc = pd.Series(values, dtype=object).value_counts(dropna=True, sort=False)
    return dict(zip(vc.index.tolist(), vc.to_numpy().tolist(), strict=True))


def chi2_from_counts(ref: dict[Any, int], x: dict[Any, int], correction: bool = True) -> tuple[float, float]:
    """``scipy.stats.chi2_contingency`` on the 2 x C table (reference row, window row)
    over the union of categories (alibi-detect's ``ChiSquareDrift``); (statistic, p)."""
    cats = list(ref)
    cats += [c for c in x if c not in ref]
    obs = np.array([[ref.get(c, 0) for c in cats], [x.get(c, 0) for c in cats]], dtype=np.float64)
    if len(cats) < 2:
        return 0.0, 1.0
    row = obs.sum(axis=1)
    col = obs.sum(axis=0)
    expected = np.multiply(row[:, None], col[None, :]) / obs.sum()
    dof = len(cats) - 1
    if dof == 1 and correction:
        diff = expected - obs
        obs = obs + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(((obs - expected) ** 2 / expected).sum())
    return stat, float(chi2.sf(stat, dof))

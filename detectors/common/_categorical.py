"""Category counting and the chi-squared contingency test (private)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

__all__ = [
    "chi2_batch",
    "chi2_from_counts",
    "chi2_pvalues",
    "cochran_ok",
    "count",
    "count_present",
    "drop_missing",
    "is_categorical",
]


def is_categorical(values: np.ndarray) -> bool:
    """Strings, booleans and other objects are categories; numbers are not."""
    return values.dtype.kind not in "iufcmM"


# what pandas' infer_dtype(skipna=False) reports only for object arrays without missing values
_NO_MISSING = frozenset({"string", "bytes", "integer", "boolean"})


def drop_missing(values: np.ndarray) -> np.ndarray:
    """The values without ``nan``/``None``/``NA`` (the array itself when none is missing)."""
    if values.dtype.kind == "f":
        missing = np.isnan(values)
        return values[~missing] if missing.any() else values
    if values.dtype.kind == "O":
        if pd.api.types.infer_dtype(values, skipna=False) in _NO_MISSING:
            return values  # one typed scan instead of an element-wise isna
        return values[~pd.isna(values)]
    return values


def count(values: np.ndarray) -> dict[Any, int]:
    """Category -> count, missing values excluded."""
    if values.dtype.kind in "biuf":
        v, c = np.unique(values, return_counts=True)
        return dict(zip(v.tolist(), c.tolist(), strict=True))
    # first-occurrence order and Python equality, like pandas' value_counts(sort=False);
    # missing values are dropped as keys (a few) rather than element by element
    counts = Counter(values.tolist())
    if any(_missing(k) for k in counts):
        return {k: c for k, c in counts.items() if not _missing(k)}
    return dict(counts)


def count_present(values: np.ndarray) -> dict[Any, int]:
    """``count(drop_missing(values))`` without a separate pass for missing values."""
    return count(values if values.dtype.kind == "O" else drop_missing(values))


def _missing(key: Any) -> bool:
    return bool(pd.api.types.is_scalar(key) and pd.isna(key))


def chi2_from_counts(ref: dict[Any, int], x: dict[Any, int], correction: bool = True) -> tuple[float, float]:
    """``scipy.stats.chi2_contingency`` on the 2 x C table (reference row, window row)
    over the union of categories (alibi-detect's ``ChiSquareDrift``); (statistic, p)."""
    stat, p = chi2_batch([ref], [x], correction)
    return float(stat[0]), float(p[0])


def chi2_batch(
    refs: Sequence[dict[Any, int]], xs: Sequence[dict[Any, int]], correction: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`chi2_from_counts` for many features at once: (statistics, p-values).

    The 2 x C tables are padded with empty columns to a common width; the padding adds
    exact zeros, so each statistic is scipy's sum of ``(obs - expected)**2 / expected``.
    """
    stat, p, _ = _chi2(refs, xs, correction)
    return stat, p


def _chi2(
    refs: Sequence[dict[Any, int]], xs: Sequence[dict[Any, int]], correction: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`chi2_batch` and, per feature, whether its table fails :func:`cochran_ok`."""
    k = len(refs)
    tables = []
    for ref, x in zip(refs, xs, strict=True):
        extra = [c for c in x if c not in ref]
        tables.append(([*ref.values(), *(0 for _ in extra)], [*(x.get(c, 0) for c in ref), *(x[c] for c in extra)]))
    width = max((len(r) for r, _ in tables), default=0)
    obs = np.zeros((k, 2, width))
    for i, (r, w) in enumerate(tables):
        obs[i, 0, : len(r)] = r
        obs[i, 1, : len(w)] = w
    ncat = np.array([len(r) for r, _ in tables])
    used = np.arange(width)[None, :] < ncat[:, None]
    row = obs.sum(axis=2)
    col = obs.sum(axis=1)
    total = row.sum(axis=1)
    expected = row[:, :, None] * col[:, None, :] / total[:, None, None]
    dof = ncat - 1
    with np.errstate(invalid="ignore"):
        cells = used[:, None, :] & (col[:, None, :] > 0)
        n_cells = np.maximum(cells.sum(axis=(1, 2)), 1)
        sparse = ((cells & (expected < 1)).any(axis=(1, 2)) | ((cells & (expected < 5)).sum(axis=(1, 2)) > 0.2 * n_cells))
    if correction:
        yates = dof == 1
        if yates.any():
            diff = expected[yates] - obs[yates]
            obs[yates] = obs[yates] + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(used[:, None, :], (obs - expected) ** 2 / expected, 0.0)
    stat = terms.reshape(k, -1).sum(axis=1)
    p = special.chdtrc(dof, stat)
    one = dof < 1
    stat[one], p[one] = 0.0, 1.0
    return stat, p, sparse & ~one


def _table(ref: dict[Any, int], x: dict[Any, int]) -> tuple[np.ndarray, np.ndarray]:
    """(pooled counts, window counts) over the union of categories."""
    cats = [*ref, *(c for c in x if c not in ref)]
    w = np.array([float(x.get(c, 0)) for c in cats])
    return np.array([float(ref.get(c, 0)) for c in cats]) + w, w


def cochran_ok(c: np.ndarray, m: float) -> bool:
    """Cochran's rule for the 2 x K table (pooled counts ``c``, window size ``m``): every
    expected count at least 1 and at most a fifth of them below 5."""
    c = c[c > 0]
    big_n = float(c.sum())
    if big_n <= 0 or m <= 0:
        return True
    e = np.concatenate([m * c / big_n, (big_n - m) * c / big_n])
    return bool(e.min() >= 1.0 and (e < 5).mean() <= 0.2)


def chi2_pvalues(
    refs: Sequence[dict[Any, int]], xs: Sequence[dict[Any, int]], rng: np.random.Generator, b_max: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(p-values, statistics, methods) of the chi-squared test of each window's counts.

    Tables that pass :func:`cochran_ok` get scipy's ``chi2_contingency`` (``"asymptotic"``,
    alibi-detect's value); sparser ones, where the chi-squared law does not hold (a rare
    category seen once in a small window gives p ~ 1e-8), the p-value conditional on the
    pooled counts: exact for two categories, else a sequential Monte Carlo permutation
    p-value of Pearson's statistic (``detectors.common._discrete``).
    """
    from detectors.common._discrete import tied_pvalues

    stat, p, flags = _chi2(refs, xs)
    methods = ["asymptotic" if len(set(r) | set(x)) > 1 else "constant" for r, x in zip(refs, xs, strict=True)]
    sparse, tables = [], []
    for i in np.flatnonzero(flags):
        c, w = _table(refs[i], xs[i])
        if (c > 0).sum() >= 2 and not cochran_ok(c, float(w.sum())):
            sparse.append(int(i))
            tables.append((c[c > 0], w[c > 0]))
    if sparse:
        p[sparse], stat[sparse], tm = tied_pvalues("chi2", tables, rng, b_max)
        for i, meth in zip(sparse, tm, strict=True):
            methods[i] = meth
    return p, stat, methods

"""Kolmogorov-Smirnov drift test per numerical feature.

Same statistic and p-value as ``scipy.stats.ks_2samp(ref, x, mode='asymp')`` (what
alibi-detect's ``KSDrift`` calls), computed faster: each reference column is sorted once at
``fit``; the windows of all features are sorted as one 2-D array and the empirical CDF
difference is evaluated only at the window's points from one ``searchsorted`` per feature
into its sorted reference — the supremum over all pooled points is attained there
(``detectors.drift._ranks``). The p-values of all features come
from one vectorised ``kstwo.sf`` call. Missing values (``nan``/``None``) are dropped per
feature.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = {"a": rng.normal(size=2000).tolist(), "b": rng.normal(size=2000).tolist()}
>>> det = KSDrift(p_val=0.05).fit(ref)
>>> det.update({"a": rng.normal(size=500).tolist(), "b": rng.normal(1.0, size=500).tolist()}).result().is_drift
True
>>> det.result().drifted_features
['b']
"""

from __future__ import annotations

import numpy as np

from detectors.common._discrete import NumericRef, numeric_ref, pooled_table, tie_flags, tied_pvalues
from detectors.common._univariate import FeatureDrift
from detectors.drift._kstwo import kstwo_sf
from detectors.drift._ranks import ks_statistics, positions, sorted_windows

__all__ = ["KSDrift", "ks_pvalues", "ks_statistic"]

_SMALL = 50.0
"""Tied features with ``m n / (m + n)`` below this get the permutation p-value."""


def ks_statistic(ref_sorted: np.ndarray, x: np.ndarray) -> float:
    """Two-sided KS statistic between a sorted reference and a sample (scipy's value)."""
    ((_, w),) = sorted_windows([x])
    right, left = positions([ref_sorted], w)
    return float(ks_statistics(np.array([float(len(ref_sorted))]), w, right, left)[0])


def ks_pvalues(
    refs: list[NumericRef], values: list[np.ndarray], rng: np.random.Generator, b_max: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(p-values, statistics, methods) of the KS test of each window against its reference."""
    m = np.array([float(len(r.sorted)) for r in refs])
    n = np.array([float(len(x)) for x in values])
    d = np.empty(len(refs))
    tied = np.zeros(len(refs), dtype=bool)
    for idx, w in sorted_windows(values):
        group = [refs[i] for i in idx]
        right, left = positions([r.sorted for r in group], w)
        d[idx] = ks_statistics(m[idx], w, right, left)
        tied[idx] = tie_flags(group, w, right, left)
    en = np.round(m * n / (m + n))
    p = np.clip(kstwo_sf(d, en), 0.0, 1.0)
    methods = ["asymptotic-conservative" if t else "asymptotic" for t in tied]
    small = m * n / (m + n) < _SMALL
    exact, tables = [], []
    for i in np.flatnonzero(tied & (small | np.array([len(r.atoms.values) <= 2 for r in refs]))):
        c, w = pooled_table(refs[i].atoms, values[i])
        if small[i] or len(c) <= 2:
            exact.append(int(i))
            tables.append((c, w))
    if exact:
        pe, _, me = tied_pvalues("ks", tables, rng, b_max, asymptotic=False)
        p[exact] = pe
        for i, meth in zip(exact, me, strict=True):
            methods[i] = meth
    return p, d, methods


class KSDrift(FeatureDrift):
    """Two-sample Kolmogorov-Smirnov test on each numerical feature.

    Parameters: ``p_val`` (significance level), ``correction`` (``"bonferroni"``,
    ``"fdr"`` or ``"none"``), ``features`` (default: every numerical reference column).
    """

    name = "ks"

    def _fit_feature(self, name: str, values: np.ndarray) -> NumericRef:
        return numeric_ref(values)

    def _test(self, refs: list[NumericRef], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(0)
        p, d, self._methods = ks_pvalues(refs, values, rng, self._permutations(self._n_tests))
        return p, d

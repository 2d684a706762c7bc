"""Cramér-von Mises two-sample drift test per numerical feature.

Same statistic and p-value as ``scipy.stats.cramervonmises_2samp(ref, x, method='auto')``
(what alibi-detect's ``CVMDrift`` calls): exact p-values when both samples have at most
20 values (scipy computes those), the asymptotic (Anderson 1962) p-value otherwise. The
rank sums are computed without ranking the pooled sample: the reference is sorted once at
``fit``; the windows of all features are sorted as one 2-D array and located in their
references with one ``searchsorted`` per feature, so a test costs ``O(m log n)`` for a
window of ``m`` rows against ``n`` reference rows, the rest elementwise over all features
at once (``detectors.drift._ranks``). All partial sums
are multiples of 1/4 below 2**50, so they are exact and the statistic equals scipy's.

Ties: scipy's p-values (exact and asymptotic) assume continuous data and are wrong with
repeated values (two identical constant columns give p ~ 4e-8). A feature whose pooled
sample has a repeated value is tested conditionally on the pooled sample instead
(``detectors.common._discrete``): the statistic is the integral form ``nm/N sum_k p_k D_k**2``
over the pooled distinct values (scipy's ``T`` on untied data) and its p-value is exact
for two distinct values, discrete-asymptotic for larger samples, a sequential Monte Carlo
permutation p-value otherwise; ``extra["methods"]`` says which ran for each feature
(``"exact"`` and ``"asymptotic"`` are scipy's on untied data).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = CVMDrift().fit({"a": rng.normal(size=2000).tolist()})
>>> det.update({"a": rng.normal(0, 1.5, size=400).tolist()}).result().is_drift
True
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special
from scipy.stats import cramervonmises_2samp

from detectors.common._discrete import NumericRef, numeric_ref, pooled_table, tie_flags, tied_pvalues
from detectors.common._univariate import FeatureDrift
from detectors.drift._ranks import cvm_statistics, positions, sorted_windows

__all__ = ["CVMDrift", "cvm_pvalues", "cvm_statistic"]

_Ref = NumericRef
_fit = numeric_ref


def cvm_statistic(ref: NumericRef, x: np.ndarray) -> float:
    """scipy's two-sample T statistic of (reference, x)."""
    ((_, w),) = sorted_windows([x])
    right, left = positions([ref.sorted], w)
    return float(cvm_statistics(np.array([float(len(ref.sorted))]), np.array([ref.ties]), w, right, left)[0])


def _cdf_cvm_inf(x: np.ndarray) -> np.ndarray:
    """CDF of the limiting Cramér-von Mises distribution (scipy's series, vectorised)."""
    tot = np.zeros_like(x)
    cond = np.ones(x.shape, dtype=bool)
    k = 0
    while cond.any():
        xc = x[cond]
        u = math.exp(special.gammaln(k + 0.5) - special.gammaln(k + 1)) / (np.pi**1.5 * np.sqrt(xc))
        y = 4 * k + 1
        q = y**2 / (16 * xc)
        z = u * math.sqrt(y) * np.exp(-q) * special.kv(0.25, q)
        tot[cond] = tot[cond] + z
        cond[cond] = np.abs(z) >= 1e-7
        k += 1
    return tot


def cvm_pvalue_asymptotic(t: np.ndarray, nx: np.ndarray, ny: np.ndarray) -> np.ndarray:
    """scipy's ``_pval_cvm_2samp_asymptotic``, vectorised over features."""
    k, n = nx * ny, nx + ny
    et = (1 + 1 / n) / 6
    vt = (n + 1) * (4 * k * n - 3 * (nx**2 + ny**2) - 2 * k)
    vt = vt / (45 * n**2 * 4 * k)
    tn = 1 / 6 + (t - et) / np.sqrt(45 * vt)
    p = np.ones_like(tn)
    big = tn >= 0.003
    if big.any():
        p[big] = np.clip(1.0 - _cdf_cvm_inf(tn[big]), 0.0, None)
    return p


def cvm_pvalues(
    refs: list[NumericRef], values: list[np.ndarray], rng: np.random.Generator, b_max: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(p-values, statistics, methods) of the CVM test of each window against its reference."""
    nx = np.array([float(len(r.sorted)) for r in refs])
    ny = np.array([float(len(x)) for x in values])
    ties = np.array([r.ties for r in refs])
    t = np.empty(len(refs))
    tied = np.zeros(len(refs), dtype=bool)
    for idx, w in sorted_windows(values):
        group = [refs[i] for i in idx]
        right, left = positions([r.sorted for r in group], w)
        t[idx] = cvm_statistics(nx[idx], ties[idx], w, right, left)
        tied[idx] = tie_flags(group, w, right, left)
    p = np.full(len(t), np.nan)
    methods = ["asymptotic"] * len(t)
    small = ((np.maximum(nx, ny) <= 20) | (nx < 2) | (ny < 2)) & ~tied
    big = ~small & ~tied
    if big.any():
        p[big] = cvm_pvalue_asymptotic(t[big], nx[big], ny[big])
    for i in np.flatnonzero(small):
        if nx[i] >= 2 and ny[i] >= 2:
            res = cramervonmises_2samp(refs[i].sorted, values[i], method="auto")
            t[i], p[i] = float(res.statistic), float(res.pvalue)
            methods[i] = "exact"
    rows = np.flatnonzero(tied)
    if len(rows):
        tables = [pooled_table(refs[i].atoms, values[i]) for i in rows]
        p[rows], t[rows], tm = tied_pvalues("cvm", tables, rng, b_max)
        for i, meth in zip(rows, tm, strict=True):
            methods[i] = meth
    return p, t, methods


class CVMDrift(FeatureDrift):
    """Two-sample Cramér-von Mises test on each numerical feature.

    Parameters: ``p_val``, ``correction`` (``"bonferroni"``, ``"fdr"`` or ``"none"``), ``features``
    (default: every numerical reference column).
    """

    name = "cvm"

    def _fit_feature(self, name: str, values: np.ndarray) -> NumericRef:
        return numeric_ref(values)

    def _test(self, refs: list[NumericRef], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(0)
        p, t, self._methods = cvm_pvalues(refs, values, rng, self._permutations(self._n_tests))
        return p, t

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

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = CVMDrift().fit({"a": rng.normal(size=2000).tolist()})
>>> det.update({"a": rng.normal(0, 1.5, size=400).tolist()}).result().is_drift
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy.stats import cramervonmises_2samp

from detectors.common._univariate import FeatureDrift
from detectors.drift._ranks import cvm_statistics, positions, sorted_windows

__all__ = ["CVMDrift", "cvm_statistic"]


@dataclass
class _Ref:
    sorted: np.ndarray
    ties: float  # sum over distinct values of (c**3 - c) / 12


def _fit(values: np.ndarray) -> _Ref:
    s = np.sort(values)
    _, counts = np.unique(s, return_counts=True)
    c = counts.astype(np.float64)
    return _Ref(s, float(((c**3 - c) / 12).sum()))


def cvm_statistic(ref: _Ref, x: np.ndarray) -> float:
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


class CVMDrift(FeatureDrift):
    """Two-sample Cramér-von Mises test on each numerical feature.

    Parameters: ``p_val``, ``correction`` (``"bonferroni"`` or ``"fdr"``), ``features``
    (default: every numerical reference column).
    """

    name = "cvm"

    def _fit_feature(self, name: str, values: np.ndarray) -> _Ref:
        return _fit(values)

    def _test(self, refs: list[_Ref], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        nx = np.array([float(len(r.sorted)) for r in refs])
        ny = np.array([float(len(x)) for x in values])
        ties = np.array([r.ties for r in refs])
        t = np.empty(len(refs))
        for idx, w in sorted_windows(values):
            right, left = positions([refs[i].sorted for i in idx], w)
            t[idx] = cvm_statistics(nx[idx], ties[idx], w, right, left)
        p = np.full(len(t), np.nan)
        small = (np.maximum(nx, ny) <= 20) | (nx < 2) | (ny < 2)
        if (~small).any():
            p[~small] = cvm_pvalue_asymptotic(t[~small], nx[~small], ny[~small])
        for i in np.flatnonzero(small):
            if nx[i] >= 2 and ny[i] >= 2:
                res = cramervonmises_2samp(refs[i].sorted, values[i], method="auto")
                t[i], p[i] = float(res.statistic), float(res.pvalue)
        return p, t

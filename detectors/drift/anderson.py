"""Anderson-Darling k-sample (k = 2) drift test per numerical feature.

The standardized midrank statistic and interpolated p-value of
``scipy.stats.anderson_ksamp([reference, window], variant='midrank')`` (Scholz & Stephens
1987). As in scipy the p-value is interpolated from a table and therefore capped to
[0.001, 0.25]: with many features and a Bonferroni correction below 0.001 per feature this
test cannot fire, so prefer KS or CVM there (or ``correction="fdr"``).

Ties: scipy's normalisation and table assume continuous data (on tied null data it
rejects up to 12% per feature at 5%). A feature whose pooled sample has a repeated value
is tested conditionally on the pooled sample instead (``detectors.common._discrete``): the
statistic is ``nm/N sum_k p_k D_k**2 / (H_k (1 - H_k))`` over the pooled distinct values,
its p-value exact for two distinct values, discrete-asymptotic for larger samples with at
least 5 window values expected in each tail, a sequential Monte Carlo permutation p-value
otherwise (not capped); ``extra["methods"]`` says which ran (``"interpolated"`` is
scipy's, on untied data).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = AndersonDrift().fit({"a": rng.normal(size=2000).tolist()})
>>> det.update({"a": rng.normal(0.5, size=300).tolist()}).result().is_drift
True
"""

from __future__ import annotations

import functools
import math

import numpy as np

from detectors.common._discrete import NumericRef, has_ties, numeric_ref, pooled_table, tied_pvalues
from detectors.common._univariate import FeatureDrift

__all__ = ["AndersonDrift", "anderson_pvalue", "anderson_pvalues"]

_B0 = np.array([0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085])
_B1 = np.array([-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615])
_B2 = np.array([-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154])
_SIG = np.array([0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001])
_CRITICAL = _B0 + _B1 / math.sqrt(1) + _B2 / 1
_FIT = np.polyfit(_CRITICAL, np.log(_SIG), 2)


@functools.lru_cache(maxsize=256)
def _sigma(n1: int, n2: int) -> float:
    k, big_n = 2, n1 + n2
    h_inv = (1.0 / n1) + (1.0 / n2)
    hs_cs = (1.0 / np.arange(big_n - 1, 1, -1)).cumsum()
    h = hs_cs[-1] + 1
    g = (hs_cs / np.arange(2, big_n)).sum()
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * h_inv
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * h_inv - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * h_inv + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    sigmasq = (a * big_n**3 + b * big_n**2 + c * big_n + d) / ((big_n - 1.0) * (big_n - 2.0) * (big_n - 3.0))
    return math.sqrt(sigmasq)


def anderson_pvalue(a2: float) -> float:
    """scipy's interpolated (capped) p-value of the standardized statistic."""
    if a2 < _CRITICAL.min():
        return 0.25
    if a2 > _CRITICAL.max():
        return 0.001
    return math.exp(np.polyval(_FIT, a2))


def anderson_statistic(ref_sorted: np.ndarray, x: np.ndarray) -> float:
    """Standardized midrank A2 of (reference, x), as scipy's ``statistic``."""
    s = np.sort(x)
    n1, n2 = len(ref_sorted), len(s)
    big_n = n1 + n2
    zstar = np.union1d(ref_sorted, s)
    if zstar.size < 2:
        return float("nan")
    r_left = ref_sorted.searchsorted(zstar, "left")
    r_right = ref_sorted.searchsorted(zstar, "right")
    x_left = s.searchsorted(zstar, "left")
    x_right = s.searchsorted(zstar, "right")
    z_left = r_left + x_left
    lj = (r_right + x_right - z_left) if big_n != zstar.size else 1.0
    bj = z_left + lj / 2.0
    a2kn = 0.0
    for right, left, n in ((r_right, r_left, n1), (x_right, x_left, n2)):
        mij = right.astype(float)
        mij -= (right - left) / 2.0
        inner = lj / float(big_n) * (big_n * mij - bj * n) ** 2 / (bj * (big_n - bj) - big_n * lj / 4.0)
        a2kn += inner.sum() / n
    a2kn *= (big_n - 1.0) / big_n
    return float((a2kn - 1) / _sigma(n1, n2))


def anderson_pvalues(
    refs: list[NumericRef], values: list[np.ndarray], rng: np.random.Generator, b_max: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(p-values, statistics, methods) of the Anderson-Darling test of each window."""
    p = np.full(len(refs), np.nan)
    a2 = np.full(len(refs), np.nan)
    methods = ["interpolated"] * len(refs)
    tied: list[int] = []
    for i, (r, x) in enumerate(zip(refs, values, strict=True)):
        if has_ties(r.atoms, np.sort(x)):
            tied.append(i)
            continue
        a2[i] = anderson_statistic(r.sorted, x)
        p[i] = anderson_pvalue(a2[i]) if np.isfinite(a2[i]) else np.nan
    if tied:
        tables = [pooled_table(refs[i].atoms, values[i]) for i in tied]
        p[tied], a2[tied], tm = tied_pvalues("anderson", tables, rng, b_max)
        for i, meth in zip(tied, tm, strict=True):
            methods[i] = meth
    return p, a2, methods


class AndersonDrift(FeatureDrift):
    """Anderson-Darling two-sample test on each numerical feature.

    Parameters: ``p_val``, ``correction``, ``features``. Distance: the standardized statistic.
    """

    name = "anderson"

    def _fit_feature(self, name: str, values: np.ndarray) -> NumericRef:
        return numeric_ref(values)

    def _test(self, refs: list[NumericRef], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(0)
        p, a2, self._methods = anderson_pvalues(refs, values, rng, self._permutations(self._n_tests))
        return p, a2

"""Kolmogorov-Smirnov drift test per numerical feature.

Same statistic and p-value as ``scipy.stats.ks_2samp(ref, x, mode='asymp')`` (what
alibi-detect's ``KSDrift`` calls), computed faster: each reference column is sorted once at
``fit``; a window is sorted (small) and the empirical CDF difference is evaluated only at
the window's points with two ``searchsorted`` calls into the sorted reference — the
supremum over all pooled points is attained there. The p-values of all features come
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

from collections.abc import Sequence

import numpy as np

from detectors._kstwo import kstwo_sf
from detectors._univariate import FeatureDrift

__all__ = ["KSDrift", "ks_statistic"]


def ks_statistic(ref_sorted: np.ndarray, x: np.ndarray) -> float:
    """Two-sided KS statistic between a sorted reference and a sample (scipy's value)."""
    w = np.sort(x)
    n1, n2 = len(ref_sorted), len(w)
    right = np.searchsorted(ref_sorted, w, side="right")
    # left == right unless the window value occurs in the reference: search only those
    left = right.copy()
    tied = right > 0
    tied[tied] = ref_sorted[right[tied] - 1] == w[tied]
    if tied.any():
        left[tied] = np.searchsorted(ref_sorted, w[tied], side="left")
    k = np.arange(1, n2 + 1)
    # ECDF difference F_ref - F_x at each window point (right-continuous), exactly as
    # scipy computes it (count / n1 - count / n2).
    diff = right / n1 - k / n2
    # Just before the next distinct window point F_ref is largest while F_x is unchanged;
    # that value is attained at the last reference point below it.
    # Only the last of tied window points carries the true F_x.
    distinct = w[1:] > w[:-1]
    diff = diff[np.append(distinct, True)]
    before_next = left[1:][distinct] / n1 - k[:-1][distinct] / n2
    first = left[0] / n1 - 0 / n2
    max_s = max(float(diff.max()), float(before_next.max()) if before_next.size else 0.0, first, 0.0)
    min_s = min(max(float((-diff).max()), 0.0), 1.0)
    return min_s if min_s > max_s else max_s


class KSDrift(FeatureDrift):
    """Two-sample Kolmogorov-Smirnov test on each numerical feature.

    Parameters: ``p_val`` (significance level), ``correction`` (``"bonferroni"`` or
    ``"fdr"``), ``features`` (default: every numerical reference column).
    """

    name = "ks"

    def __init__(
        self,
        p_val: float = 0.05,
        correction: str = "bonferroni",
        features: Sequence[str] | None = None,
    ) -> None:
        super().__init__(p_val=p_val, correction=correction, features=features)

    def _fit_feature(self, name: str, values: np.ndarray) -> np.ndarray:
        return np.sort(values)

    def _test(self, refs: list[np.ndarray], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        d = np.array([ks_statistic(r, x) for r, x in zip(refs, values, strict=True)])
        m = np.array([float(len(r)) for r in refs])
        n = np.array([float(len(x)) for x in values])
        en = np.round(m * n / (m + n))
        p = np.clip(kstwo_sf(d, en), 0.0, 1.0)
        return p, d

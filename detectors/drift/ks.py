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

from detectors.common._univariate import FeatureDrift
from detectors.drift._kstwo import kstwo_sf
from detectors.drift._ranks import ks_statistics, positions, sorted_windows

__all__ = ["KSDrift", "ks_statistic"]


def ks_statistic(ref_sorted: np.ndarray, x: np.ndarray) -> float:
    """Two-sided KS statistic between a sorted reference and a sample (scipy's value)."""
    ((_, w),) = sorted_windows([x])
    right, left = positions([ref_sorted], w)
    return float(ks_statistics(np.array([float(len(ref_sorted))]), w, right, left)[0])


class KSDrift(FeatureDrift):
    """Two-sample Kolmogorov-Smirnov test on each numerical feature.

    Parameters: ``p_val`` (significance level), ``correction`` (``"bonferroni"`` or
    ``"fdr"``), ``features`` (default: every numerical reference column).
    """

    name = "ks"

    def _fit_feature(self, name: str, values: np.ndarray) -> np.ndarray:
        return np.sort(values)

    def _test(self, refs: list[np.ndarray], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        m = np.array([float(len(r)) for r in refs])
        n = np.array([float(len(x)) for x in values])
        d = np.empty(len(refs))
        for idx, w in sorted_windows(values):
            group = [refs[i] for i in idx]
            right, left = positions(group, w)
            d[idx] = ks_statistics(m[idx], w, right, left)
        en = np.round(m * n / (m + n))
        p = np.clip(kstwo_sf(d, en), 0.0, 1.0)
        return p, d

"""Chi-squared drift test per categorical feature (alibi-detect's ``ChiSquareDrift``).

For each feature a 2 x C contingency table — reference counts and window counts over the
union of the reference's and the window's categories — goes through the computation of
``scipy.stats.chi2_contingency`` (Yates' correction when there are two categories).
Reference counts are kept from ``fit``; a window column is counted once (hash-based) and
the tables of all features go through one vectorised computation. Missing
values are excluded (the quality detector reports them).

Sparse tables (Cochran's rule fails: an expected count below 1, or more than a fifth
below 5 — small windows, rare categories) get the p-value conditional on the pooled
counts instead of the chi-squared law, which does not hold there: exact for two
categories, else a sequential Monte Carlo permutation p-value of Pearson's statistic
(``extra["methods"]``: ``"asymptotic"``, ``"exact-hypergeometric"``, ``"permutation"``).

>>> det = ChiSquareDrift().fit({"c": ["a"] * 500 + ["b"] * 500})
>>> det.update({"c": ["a"] * 80 + ["b"] * 20}).result().is_drift
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.common._categorical import chi2_pvalues, count_present, is_categorical
from detectors.common._univariate import FeatureDrift

__all__ = ["ChiSquareDrift"]


class ChiSquareDrift(FeatureDrift):
    """Chi-squared test of the category frequencies of each categorical feature.

    Parameters: ``p_val``, ``correction`` (``"bonferroni"``, ``"fdr"`` or ``"none"``), ``features``
    (default: every non-numerical reference column; give numeric codes explicitly).
    """

    name = "chi2"
    numeric_only = False

    def _accepts(self, values: np.ndarray) -> bool:
        return is_categorical(values)

    def _prepare(self, values: np.ndarray) -> dict[Any, int]:
        # a column is its category counts (missing values excluded); empty = missing
        return count_present(values)

    def _fit_feature(self, name: str, values: dict[Any, int]) -> dict[Any, int]:
        return values

    def _test(self, refs: list[dict[Any, int]], values: list[dict[Any, int]]) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(0)
        p, stat, self._methods = chi2_pvalues(refs, values, rng, self._permutations(self._n_tests))
        return p, stat

"""Per-feature drift on mixed tables: the test is chosen by column type and sample size.

Like alibi-detect's ``TabularDrift`` (KS for numerical, chi-squared for categorical
features, one correction over all), with the choice made per feature and window:

* categorical columns (strings, booleans, or numerical columns with at most
  ``max_categories`` distinct values in the reference) -> chi-squared, or Fisher's exact
  test for a binary feature when an expected cell count of the 2 x 2 table is below 5;
* numerical columns -> Kolmogorov-Smirnov, or Cramér-von Mises when the window holds at
  most 20 values of the feature (where CVM's p-value is exact).

``tests={"feature": "cvm", ...}`` overrides the choice (``ks``, ``cvm``, ``anderson``,
``chi2``, ``fet``). ``extra["tests"]`` of the Detection says what ran.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = {"x": rng.normal(size=1000).tolist(), "c": rng.choice(["a", "b", "c"], 1000).tolist()}
>>> det = TabularDrift().fit(ref)
>>> r = det.update({"x": rng.normal(size=200).tolist(), "c": ["a"] * 200}).result()
>>> r.is_drift, r.drifted_features, r.extra["tests"]
(True, ['c'], {'x': 'ks', 'c': 'chi2'})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import fisher_exact

from detectors.common._categorical import chi2_batch, chi2_from_counts, count, drop_missing, is_categorical
from detectors.common._univariate import FeatureDrift
from detectors.drift._kstwo import kstwo_sf
from detectors.drift._ranks import ks_statistics, positions, sorted_windows
from detectors.drift.anderson import anderson_pvalue, anderson_statistic
from detectors.drift.cvm import _fit as cvm_fit
from detectors.drift.cvm import cvm_pvalue_asymptotic, cvm_statistic
from detectors.drift.ks import ks_statistic
from inferwatch.record import Detection

__all__ = ["TabularDrift"]

TESTS = ("ks", "cvm", "anderson", "chi2", "fet")


@dataclass
class _State:
    name: str
    categorical: bool
    counts: dict[Any, int] | None = None
    cvm: Any = None  # sorted values + tie term


class TabularDrift(FeatureDrift):
    """Automatic per-feature tests with one multiple-testing correction.

    Parameters: ``p_val``, ``correction``, ``features`` (default: all columns),
    ``tests`` (per-feature override), ``max_categories`` (numerical columns with at most
    this many distinct reference values are treated as categories; 0 disables).
    """

    name = "tabular"
    numeric_only = False

    def __init__(
        self,
        p_val: float = 0.05,
        correction: str = "bonferroni",
        features: Sequence[str] | None = None,
        tests: Mapping[str, str] | None = None,
        max_categories: int = 0,
    ) -> None:
        super().__init__(p_val=p_val, correction=correction, features=features)
        bad = {f: t for f, t in (tests or {}).items() if t not in TESTS}
        if bad:
            raise ValueError(f"tests: unknown test(s) {bad}; choose from {TESTS}")
        self.tests = dict(tests or {})
        self.max_categories = int(max_categories)
        self._chosen: dict[str, str] = {}

    def _accepts(self, values: np.ndarray) -> bool:
        return True

    def _prepare(self, values: np.ndarray) -> np.ndarray | None:
        return drop_missing(values)

    def _fit_feature(self, name: str, values: np.ndarray) -> _State:
        forced = self.tests.get(name)
        categorical = is_categorical(values)
        if not categorical and self.max_categories and len(np.unique(values)) <= self.max_categories:
            categorical = True
        if forced in ("chi2", "fet"):
            categorical = True
        elif forced in ("ks", "cvm", "anderson"):
            categorical = False
        if categorical:
            return _State(name, True, counts=count(values))
        try:
            v = values.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"feature {name!r} is not numerical; cannot use {forced!r}") from exc
        return _State(name, False, cvm=cvm_fit(v))

    def _choose(self, st: _State, x: np.ndarray, counts: dict[Any, int] | None = None) -> str:
        """The test for this feature and window (``counts``: the window's category counts,
        computed here when not given)."""
        forced = self.tests.get(st.name)
        if forced:
            return forced
        if st.categorical:
            assert st.counts is not None
            if counts is None:
                counts = count(x) if len(x) else {}
            cats = set(st.counts) | set(counts)
            if len(cats) == 2:
                n_ref, n = sum(st.counts.values()), len(x)
                ones = st.counts.get(sorted(cats, key=str)[1], 0)
                xs = int((x.astype(object) == sorted(cats, key=str)[1]).sum())
                col = np.array([ones + xs, n_ref + n - ones - xs], dtype=float)
                expected = np.outer([n_ref, n], col) / (n_ref + n)
                if expected.min() < 5:
                    return "fet"
            return "chi2"
        return "cvm" if len(x) <= 20 else "ks"

    def _one(self, st: _State, x: np.ndarray, test: str) -> tuple[float, float]:
        if test == "chi2":
            stat, p = chi2_from_counts(st.counts or {}, count(x))
            return p, stat
        if test == "fet":
            counts = st.counts or {}
            cats = sorted(set(counts) | set(x.astype(object).tolist()), key=str)
            if len(cats) > 2:
                raise ValueError(f"feature {st.name!r}: Fisher's exact test needs a binary feature, got {cats}")
            one = cats[-1]
            ones_ref, n_ref = counts.get(one, 0), sum(counts.values())
            ones = int((x.astype(object) == one).sum())
            res = fisher_exact([[ones, ones_ref], [len(x) - ones, n_ref - ones_ref]])
            return float(res[1]), float(res[0])
        xv = x.astype(np.float64)
        ref = st.cvm
        if test == "ks":
            d = ks_statistic(ref.sorted, xv)
            m, n = float(len(ref.sorted)), float(len(xv))
            return float(np.clip(kstwo_sf(np.array([d]), np.array([np.round(m * n / (m + n))]))[0], 0, 1)), d
        if test == "anderson":
            a2 = anderson_statistic(ref.sorted, xv)
            return (anderson_pvalue(a2) if np.isfinite(a2) else float("nan")), a2
        # cvm
        if max(len(ref.sorted), len(xv)) <= 20:
            from scipy.stats import cramervonmises_2samp

            res = cramervonmises_2samp(ref.sorted, xv, method="auto")
            return float(res.pvalue), float(res.statistic)
        t = cvm_statistic(ref, xv)
        pv = cvm_pvalue_asymptotic(np.array([t]), np.array([float(len(ref.sorted))]), np.array([float(len(xv))]))
        return float(pv[0]), t

    def _test(self, refs: list[_State], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = np.full(len(refs), np.nan)
        d = np.full(len(refs), np.nan)
        self._chosen = {}
        # vectorise the common cases: KS over all numerical features and chi-squared over
        # all categorical ones at once
        ks_idx: list[int] = []
        chi_idx: list[int] = []
        chi_counts: list[dict[Any, int]] = []
        for i, (st, x) in enumerate(zip(refs, values, strict=True)):
            counts = (count(x) if len(x) else {}) if st.categorical and not self.tests.get(st.name) else None
            test = self._choose(st, x, counts)
            self._chosen[st.name] = test
            if test == "ks":
                ks_idx.append(i)
            elif test == "chi2" and counts is not None and st.counts is not None:
                chi_idx.append(i)
                chi_counts.append(counts)
            elif len(x) >= 1:
                p[i], d[i] = self._one(st, x, test)
        if ks_idx:
            xs = [values[i].astype(np.float64, copy=False) for i in ks_idx]
            m = np.array([float(len(refs[i].cvm.sorted)) for i in ks_idx])
            n = np.array([float(len(x)) for x in xs])
            stats = np.empty(len(ks_idx))
            for idx, w in sorted_windows(xs):
                right, left = positions([refs[ks_idx[j]].cvm.sorted for j in idx], w)
                stats[idx] = ks_statistics(m[idx], w, right, left)
            p[ks_idx] = np.clip(kstwo_sf(stats, np.round(m * n / (m + n))), 0, 1)
            d[ks_idx] = stats
        if chi_idx:
            stat, pv = chi2_batch([refs[i].counts or {} for i in chi_idx], chi_counts)
            p[chi_idx], d[chi_idx] = pv, stat
        return p, d

    def _decide(self, det: Detection, tested: list[str], p: np.ndarray, dist: np.ndarray) -> Detection:
        det = super()._decide(det, tested, p, dist)
        det.extra["tests"] = dict(self._chosen)
        return det

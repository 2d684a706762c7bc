"""Per-feature drift on mixed tables: the test is chosen by the data, not only by dtype.

Like alibi-detect's ``TabularDrift`` (KS for numerical, chi-squared for categorical
features, one correction over all), with the choice made per feature and window:

* categorical features -> chi-squared, or Fisher's exact test for a binary feature when an
  expected cell count of the 2 x 2 table is below 5. Categorical are strings and
  booleans, and numerical columns with at most ``max_categories`` (default 10) distinct
  values in the reference: integer codes, flags, small counts, whose many ties make the
  continuous-data tests conservative (KS) or invalid (scipy's CVM and Anderson-Darling).
  A sparse table (Cochran's rule fails) gets the p-value conditional on the pooled counts
  (exact for two categories, else Monte Carlo permutation) instead of the chi-squared law;
* numerical features -> Kolmogorov-Smirnov; for a window of at most 20 values,
  Cramér-von Mises, whose p-value is then scipy's exact one only when the reference also
  holds at most 20 values and no value repeats, scipy's asymptotic one for a larger
  untied reference, and conditional on the pooled sample (permutation) when values
  repeat (``detectors.cvm``).

``tests={"feature": "cvm", ...}`` overrides the choice (``ks``, ``cvm``, ``anderson``,
``chi2``, ``fet``). ``extra["tests"]`` of the Detection says which test ran,
``extra["methods"]`` how its p-value was computed. The batch report
(``inferwatch report``) uses this detector by default, so the same choice serves it.

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

from detectors.common._categorical import chi2_pvalues, count, drop_missing, is_categorical
from detectors.common._data import coerce_float, looks_numeric
from detectors.common._discrete import NumericRef, numeric_ref
from detectors.common._univariate import FeatureDrift
from detectors.drift.anderson import anderson_pvalues
from detectors.drift.cvm import cvm_pvalues
from detectors.drift.ks import ks_pvalues
from inferwatch.record import Detection

__all__ = ["TabularDrift"]

TESTS = ("ks", "cvm", "anderson", "chi2", "fet")
SMALL_WINDOW = 20
"""Numerical windows of at most this many values get Cramér-von Mises instead of KS."""


@dataclass
class _State:
    name: str
    categorical: bool
    numeric: bool  # numbers in the reference: window cells that are not numbers are bad cells
    counts: dict[Any, int] | None = None
    ref: NumericRef | None = None


class TabularDrift(FeatureDrift):
    """Automatic per-feature tests with one multiple-testing correction.

    Parameters: ``p_val``, ``correction`` (``"bonferroni"``, ``"fdr"`` or ``"none"``),
    ``features`` (default: all columns), ``tests`` (per-feature override),
    ``max_categories`` (numerical columns with at most this many distinct reference
    values are tested as categories; 0 disables).
    """

    name = "tabular"
    numeric_only = False

    def __init__(
        self,
        p_val: float = 0.05,
        correction: str = "bonferroni",
        features: Sequence[str] | None = None,
        tests: Mapping[str, str] | None = None,
        max_categories: int = 10,
    ) -> None:
        super().__init__(p_val=p_val, correction=correction, features=features)
        bad = {f: t for f, t in (tests or {}).items() if t not in TESTS}
        if bad:
            raise ValueError(f"tests: unknown test(s) {bad}; choose from {TESTS}")
        if int(max_categories) < 0:
            raise ValueError(f"max_categories must be at least 0, got {max_categories!r}")
        self.tests = dict(tests or {})
        self.max_categories = int(max_categories)
        self._chosen: dict[str, str] = {}

    def _accepts(self, values: np.ndarray) -> bool:
        return True

    def _numeric_state(self, state: Any) -> bool:
        return isinstance(state, _State) and state.numeric

    def _prepare(self, values: np.ndarray) -> np.ndarray | None:
        return drop_missing(values)

    def _fit_feature(self, name: str, values: np.ndarray) -> _State:
        forced = self.tests.get(name)
        numeric = looks_numeric(values)
        if numeric and values.dtype.kind not in "iuf":
            v, _ = coerce_float(values)
            values = v[~np.isnan(v)]
        categorical = is_categorical(values)
        if not categorical and self.max_categories and len(np.unique(values)) <= self.max_categories:
            categorical = True
        if forced in ("chi2", "fet"):
            categorical = True
        elif forced in ("ks", "cvm", "anderson"):
            categorical = False
        if categorical:
            return _State(name, True, numeric, counts=count(values))
        try:
            v = values.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"feature {name!r} is not numerical; cannot use {forced!r}") from exc
        return _State(name, False, True, ref=numeric_ref(v))

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
                one = sorted(cats, key=str)[1]
                ones, xs = st.counts.get(one, 0), counts.get(one, 0)
                col = np.array([ones + xs, n_ref + n - ones - xs], dtype=float)
                expected = np.outer([n_ref, n], col) / (n_ref + n)
                if expected.min() < 5:
                    return "fet"
            return "chi2"
        return "cvm" if len(x) <= SMALL_WINDOW else "ks"

    def _fet(self, st: _State, x: np.ndarray) -> tuple[float, float]:
        counts = st.counts or {}
        xc = count(x)
        cats = sorted(set(counts) | set(xc), key=str)
        if len(cats) > 2:
            raise ValueError(f"feature {st.name!r}: Fisher's exact test needs a binary feature, got {cats}")
        one = cats[-1]
        ones_ref, n_ref = counts.get(one, 0), sum(counts.values())
        ones = xc.get(one, 0)
        res = fisher_exact([[ones, ones_ref], [len(x) - ones, n_ref - ones_ref]])
        return float(res[1]), float(res[0])

    def _test(self, refs: list[_State], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = np.full(len(refs), np.nan)
        d = np.full(len(refs), np.nan)
        methods = ["asymptotic"] * len(refs)
        self._chosen = {}
        rng = np.random.default_rng(0)
        b_max = self._permutations(self._n_tests)
        by_test: dict[str, list[int]] = {}
        chi_counts: dict[int, dict[Any, int]] = {}
        for i, (st, x) in enumerate(zip(refs, values, strict=True)):
            counts = (count(x) if len(x) else {}) if st.categorical else None
            test = self._choose(st, x, counts)
            self._chosen[st.name] = test
            if test in ("ks", "cvm", "anderson") and st.ref is None:
                raise ValueError(f"feature {st.name!r} is categorical; cannot use {test!r}")
            by_test.setdefault(test, []).append(i)
            if test == "chi2":
                chi_counts[i] = counts if counts is not None else count(x)
        numeric = {"ks": ks_pvalues, "cvm": cvm_pvalues, "anderson": anderson_pvalues}
        for test, idx in by_test.items():
            if test in numeric:
                xs = [values[i].astype(np.float64) for i in idx]
                pv, dv, mv = numeric[test]([refs[i].ref for i in idx], xs, rng, b_max)  # type: ignore[misc]
            elif test == "chi2":
                pv, dv, mv = chi2_pvalues([refs[i].counts or {} for i in idx], [chi_counts[i] for i in idx], rng, b_max)
            else:  # fet
                pd_ = [self._fet(refs[i], values[i]) for i in idx]
                pv, dv, mv = np.array([a for a, _ in pd_]), np.array([b for _, b in pd_]), ["exact"] * len(idx)
            p[idx], d[idx] = pv, dv
            for i, meth in zip(idx, mv, strict=True):
                methods[i] = meth
        self._methods = methods
        return p, d

    def _decide(self, det: Detection, tested: list[str], p: np.ndarray, dist: np.ndarray) -> Detection:
        det = super()._decide(det, tested, p, dist)
        det.extra["tests"] = dict(self._chosen)
        return det

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

Large windows in bounded memory (what ``inferwatch report`` uses over millions of rows):
``counts_after=N`` keeps a window of more than ``N`` rows as counts instead of values
(``detectors.common._counts``): category counts, and per numerical feature the window's
counts below and at each distinct reference value, from which the KS statistic is scipy's
exactly; memory is then bounded by the reference, whatever the window's length, and windows
merge by adding counts. ``bins=B`` (*binned* mode) counts numerical values in ``B`` bins at
the reference's quantiles instead: the KS statistic over those edges is a lower bound of the
exact one, so the p-value is conservative (``methods`` says ``binned-asymptotic``); what
a cluster's histogram aggregation gives. In both modes windows of at most ``SMALL_WINDOW``
values are tested with KS too (no values are kept for Cramér-von Mises), and ``tests`` may
not ask for ``cvm`` or ``anderson``.

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

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact

from detectors.common._categorical import chi2_pvalues, count, drop_missing, is_categorical
from detectors.common._counts import CategoryCounts, EdgeCounts, ks_statistic, quantile_edges
from detectors.common._data import (
    Data,
    coerce_float,
    columns_and_rows,
    looks_numeric,
    n_missing,
    object_column,
    readable,
)
from detectors.common._discrete import NumericRef, numeric_ref
from detectors.common._univariate import FeatureDrift
from detectors.drift._kstwo import kstwo_sf
from detectors.drift.anderson import anderson_pvalues
from detectors.drift.cvm import cvm_pvalues
from detectors.drift.ks import ks_pvalues
from inferwatch.errors import DetectorError
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


@dataclass
class _Counted:
    """A window kept as counts: per fitted feature its counts, missing and bad cells, and the
    rows in which the column was present (absent rows count as missing, as padding does)."""

    n_rows: int = 0
    features: dict[str, EdgeCounts | CategoryCounts] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    bad: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)

    def merge(self, other: _Counted) -> _Counted:
        out = _Counted(self.n_rows + other.n_rows)
        for f in dict.fromkeys([*self.features, *other.features]):
            a, b = self.features.get(f), other.features.get(f)
            if a is not None and b is not None:
                out.features[f] = a.merge(b)  # type: ignore[arg-type]
            else:
                one = a if b is None else b
                assert one is not None
                out.features[f] = copy.deepcopy(one)
            for mine, theirs, dst in ((self.missing, other.missing, out.missing), (self.bad, other.bad, out.bad),
                                      (self.seen, other.seen, out.seen)):
                dst[f] = mine.get(f, 0) + theirs.get(f, 0)
        return out


_BOOL_TEXT = {"true": True, "false": False}


def _by_text(categories: Mapping[Any, int]) -> dict[str, Any]:
    """The reference's categories by their text in a ``flattened`` field (booleans as
    ``true``/``false``)."""
    return {("true" if k else "false") if isinstance(k, (bool, np.bool_)) else str(k): k for k in categories}


def _read_text(cells: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Cells kept as text (``{"1.5": 3, "true": 1, "?": 2}``) read as a test on the values reads
    them (``coerce_float``: number strings and booleans are numbers): the numbers and how often
    each occurs; the rest are bad cells."""
    keys = list(cells)
    raw = np.array([_BOOL_TEXT.get(k, k) for k in keys] + [None], dtype=object)[:-1]  # keep 1-D
    vals, _ = coerce_float(raw)
    n = np.array([cells[k] for k in keys], dtype=np.int64)
    ok = ~np.isnan(vals)
    return vals[ok], n[ok]


class TabularDrift(FeatureDrift):
    """Automatic per-feature tests with one multiple-testing correction.

    Parameters: ``p_val``, ``correction`` (``"bonferroni"``, ``"fdr"`` or ``"none"``),
    ``features`` (default: all columns), ``tests`` (per-feature override),
    ``max_categories`` (numerical columns with at most this many distinct reference
    values are tested as categories; 0 disables), ``counts_after`` (a window of more rows
    is kept as counts: bounded memory, same p-values), ``bins`` (binned mode: numerical
    features counted in this many reference-quantile bins, conservative KS).
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
        counts_after: int | None = None,
        bins: int | None = None,
    ) -> None:
        super().__init__(p_val=p_val, correction=correction, features=features)
        bad = {f: t for f, t in (tests or {}).items() if t not in TESTS}
        if bad:
            raise ValueError(f"tests: unknown test(s) {bad}; choose from {TESTS}")
        if int(max_categories) < 0:
            raise ValueError(f"max_categories must be at least 0, got {max_categories!r}")
        if counts_after is not None and int(counts_after) < 0:
            raise ValueError(f"counts_after must be at least 0, got {counts_after!r}")
        if bins is not None and int(bins) < 2:
            raise ValueError(f"bins must be at least 2, got {bins!r}")
        self.tests = dict(tests or {})
        self.max_categories = int(max_categories)
        self.counts_after = None if counts_after is None else int(counts_after)
        self.bins = None if bins is None else int(bins)
        if (self.counts_after is not None or self.bins) and {"cvm", "anderson"} & set(self.tests.values()):
            raise ValueError("tests: cvm and anderson need the window's values; they cannot run on counts "
                             "(counts_after/bins)")
        self._chosen: dict[str, str] = {}
        self._counted: _Counted | None = None
        self._rng = np.random.default_rng(0)

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

    def _choose(self, st: _State, n: int, counts: dict[Any, int] | None) -> str:
        """The test for this feature and window of ``n`` values (``counts``: the window's
        category counts, for a categorical feature)."""
        forced = self.tests.get(st.name)
        if forced:
            return forced
        if st.categorical:
            assert st.counts is not None and counts is not None
            cats = set(st.counts) | set(counts)
            if len(cats) == 2:
                n_ref = sum(st.counts.values())
                one = sorted(cats, key=str)[1]
                ones, xs = st.counts.get(one, 0), counts.get(one, 0)
                col = np.array([ones + xs, n_ref + n - ones - xs], dtype=float)
                expected = np.outer([n_ref, n], col) / (n_ref + n)
                if expected.min() < 5:
                    return "fet"
            return "chi2"
        return "cvm" if n <= SMALL_WINDOW and self._counted is None else "ks"

    def _fet(self, st: _State, xc: dict[Any, int]) -> tuple[float, float]:
        counts = st.counts or {}
        n = sum(xc.values())
        cats = sorted(set(counts) | set(xc), key=str)
        if len(cats) > 2:
            raise ValueError(f"feature {st.name!r}: Fisher's exact test needs a binary feature, got {cats}")
        one = cats[-1]
        ones_ref, n_ref = counts.get(one, 0), sum(counts.values())
        ones = xc.get(one, 0)
        res = fisher_exact([[ones, ones_ref], [n - ones, n_ref - ones_ref]])
        return float(res[1]), float(res[0])

    def _begin(self) -> None:
        super()._begin()
        self._chosen = {}
        self._rng = np.random.default_rng(0)

    def _test(self, refs: list[_State], values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Values are arrays, or (counts mode) :class:`CategoryCounts` / :class:`EdgeCounts`."""
        p = np.full(len(refs), np.nan)
        d = np.full(len(refs), np.nan)
        methods = ["asymptotic"] * len(refs)
        rng = self._rng
        b_max = self._permutations(self._n_tests)
        by_test: dict[str, list[int]] = {}
        chi_counts: dict[int, dict[Any, int]] = {}
        for i, (st, x) in enumerate(zip(refs, values, strict=True)):
            if isinstance(x, CategoryCounts):
                counts: dict[Any, int] | None = x.counts
            else:
                counts = (count(x) if len(x) else {}) if st.categorical and not isinstance(x, EdgeCounts) else None
            n = x.n if isinstance(x, (CategoryCounts, EdgeCounts)) else len(x)
            test = self._choose(st, n, counts)
            self._chosen[st.name] = test
            if test in ("ks", "cvm", "anderson") and st.ref is None:
                raise ValueError(f"feature {st.name!r} is categorical; cannot use {test!r}")
            if (isinstance(x, EdgeCounts) and test != "ks") or (isinstance(x, CategoryCounts) and test == "ks"):
                raise ValueError(f"feature {st.name!r}: {test!r} cannot run on this window's counts")
            by_test.setdefault(test, []).append(i)
            if test in ("chi2", "fet"):
                chi_counts[i] = counts if counts is not None else count(x)
        numeric = {"ks": ks_pvalues, "cvm": cvm_pvalues, "anderson": anderson_pvalues}
        for test, idx in by_test.items():
            counted = [i for i in idx if isinstance(values[i], EdgeCounts)]
            if counted:
                pv, dv, mv = self._ks_counts([refs[i] for i in counted], [values[i] for i in counted])
                p[counted], d[counted] = pv, dv
                for i, meth in zip(counted, mv, strict=True):
                    methods[i] = meth
                idx = [i for i in idx if not isinstance(values[i], EdgeCounts)]
                if not idx:
                    continue
            if test in numeric:
                xs = [values[i].astype(np.float64) for i in idx]
                pv, dv, mv = numeric[test]([refs[i].ref for i in idx], xs, rng, b_max)  # type: ignore[misc]
            elif test == "chi2":
                pv, dv, mv = chi2_pvalues([refs[i].counts or {} for i in idx], [chi_counts[i] for i in idx], rng, b_max)
            else:  # fet
                pd_ = [self._fet(refs[i], chi_counts[i]) for i in idx]
                pv, dv, mv = np.array([a for a, _ in pd_]), np.array([b for _, b in pd_]), ["exact"] * len(idx)
            p[idx], d[idx] = pv, dv
            for i, meth in zip(idx, mv, strict=True):
                methods[i] = meth
        self._methods = methods
        return p, d

    @staticmethod
    def _ks_counts(refs: list[_State], ws: list[EdgeCounts]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """KS from counts: scipy's statistic (exact mode) or its lower bound over the bins."""
        m = np.array([float(len(st.ref.sorted)) for st in refs if st.ref is not None])
        n = np.array([float(w.n) for w in ws])
        d = np.array([ks_statistic(st.ref.sorted, w) for st, w in zip(refs, ws, strict=True)
                      if st.ref is not None])
        p = np.clip(kstwo_sf(d, np.round(m * n / (m + n))), 0.0, 1.0)
        methods = ["binned-asymptotic" if w.is_binned else
                   "asymptotic-conservative" if (st.ref is not None and st.ref.atoms.tied) or w.tied else "asymptotic"
                   for st, w in zip(refs, ws, strict=True)]
        return p, d, methods

    def _decide(self, det: Detection, tested: list[str], p: np.ndarray, dist: np.ndarray) -> Detection:
        det = super()._decide(det, tested, p, dist)
        det.extra["tests"] = dict(self._chosen)
        if self._counted is not None:
            det.extra["window_kept_as"] = "binned counts" if self.bins else "counts"
        return det

    # -- counts mode -------------------------------------------------------------------
    @property
    def window_size(self) -> int:
        return self._window.n_rows + (self._counted.n_rows if self._counted is not None else 0)

    def reset(self) -> Self:
        super().reset()
        self._counted = None
        return self

    def _counting(self) -> bool:
        return self.counts_after is not None or bool(self.bins)

    def _fresh(self, st: _State) -> EdgeCounts | CategoryCounts:
        if st.categorical or st.ref is None:
            return CategoryCounts()
        if self.bins:
            return EdgeCounts.binned(quantile_edges(st.ref.sorted, self.bins))
        a = st.ref.atoms.values
        return EdgeCounts(a, np.zeros(len(a), np.int64), np.zeros(len(a), np.int64))

    def _fold(self, counted: _Counted, data: Data) -> None:
        """Add a batch's fitted columns to ``counted``."""
        refs = self._check_fitted()
        cat_dtype = {}
        if isinstance(data, pd.DataFrame):  # categorical columns counted by their codes, not cell by cell
            cat_dtype = {str(c): data[c] for c in data.columns
                         if isinstance(data[c].dtype, pd.CategoricalDtype) and str(c) in refs}
        cols, n = columns_and_rows(data, [f for f in refs if f not in cat_dtype])
        counted.n_rows += n
        for f, series in cat_dtype.items():
            st = refs[f]
            if not st.categorical or st.numeric:
                cols[f] = np.asarray(series.to_numpy())  # numbers as categories: counted as values below
                continue
            w = counted.features.get(f) or counted.features.setdefault(f, self._fresh(st))
            vc = series.value_counts(sort=False, dropna=True)
            assert isinstance(w, CategoryCounts)
            w.add({k: int(v) for k, v in zip(vc.index.tolist(), vc.to_numpy().tolist(), strict=True) if v})
            counted.missing[f] = counted.missing.get(f, 0) + int(series.isna().sum())
            counted.seen[f] = counted.seen.get(f, 0) + n
        for f, arr in cols.items():
            self._fold_column(counted, refs[f], f, arr)

    def _fold_column(self, counted: _Counted, st: _State, f: str, arr: np.ndarray) -> None:
        """Add one column of a batch's cells of fitted feature ``f`` to ``counted``."""
        arr, bad = readable(arr, st.numeric)
        miss = n_missing(arr) - bad
        x = drop_missing(arr)
        w = counted.features.get(f) or counted.features.setdefault(f, self._fresh(st))
        if isinstance(w, EdgeCounts):
            try:
                w.add(np.asarray(x, dtype=np.float64))
            except (TypeError, ValueError) as exc:
                raise DetectorError(f"{self.name}: feature {f!r} holds values that are not numbers") from exc
        else:
            w.add(count(x) if len(x) else {})
        counted.missing[f] = counted.missing.get(f, 0) + miss
        if bad:
            counted.bad[f] = counted.bad.get(f, 0) + bad
        counted.seen[f] = counted.seen.get(f, 0) + len(arr)

    def _as_counts(self) -> _Counted:
        """This window as counts (its raw rows folded in), without changing it."""
        out = _Counted() if self._counted is None else self._counted.merge(_Counted())
        for chunk in self._window.chunks:
            self._fold(out, chunk)
        out.n_rows += self._window.n_rows - sum(len(next(iter(c.values()))) for c in self._window.chunks)
        return out

    def update(self, batch: Data, ids: Sequence[str] | None = None) -> Self:
        if not self._counting():
            return super().update(batch, ids)
        self._check_fitted()
        if self._counted is None:
            super().update(batch, ids)
            if self.bins or self._window.n_rows > (self.counts_after or 0):
                self._counted = self._as_counts()
                super().reset()
            return self
        self._fold(self._counted, batch)
        return self

    def merge(self, other: Self) -> Self:
        if self._counted is None and other._counted is None:
            return super().merge(other)
        new = super().merge(other)
        new._counted = self._as_counts().merge(other._as_counts())
        new._window = type(self._window).zero()
        return new

    def count_plan(self) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
        """What to count for :meth:`update_counts` (binned mode): numerical feature -> bin edges,
        and categorical feature -> whether its categories are numbers."""
        refs = self._check_fitted()
        if not self.bins:
            raise DetectorError(f"{self.name}: counts from outside need binned mode (bins=...)")
        numeric: dict[str, np.ndarray] = {}
        categorical: dict[str, bool] = {}
        for f, st in refs.items():
            w = self._fresh(st)
            if isinstance(w, EdgeCounts):
                numeric[f] = w.edges
            else:
                categorical[f] = st.numeric
        return numeric, categorical

    def window_counts(self, bins: int) -> dict[str, dict[str, Any]]:
        """The open window and the reference as counts per fitted feature, without changing the
        window (what a report draws when the rows' values are gone): a numerical feature's
        counts in the cells of the reference's ``bins`` quantile edges (``cells[0]`` below
        ``edges[0]``, ``cells[k]`` in ``[edges[k-1], edges[k])``, the last from the last edge
        up: the cells of binned mode and of a cluster's ``range`` aggregation), a categorical
        feature's category counts. The same cells in exact and binned mode: exact counts sit at
        every distinct reference value, and the quantile edges are reference values.

        >>> ref = {"x": [float(v) for v in range(1, 13)], "c": ["a", "b", "a"] * 4}
        >>> det = TabularDrift(counts_after=0, max_categories=0).fit(ref)
        >>> out = det.update({"x": [0.5, 4.0, 5.0, 20.0], "c": ["b", "b", "z", None]}).window_counts(3)
        >>> out["x"]
        {'edges': [1.0, 4.0, 8.0], 'reference': [0, 3, 4, 5], 'current': [1, 0, 2, 1]}
        >>> out["c"]
        {'reference': {'a': 8, 'b': 4}, 'current': {'b': 2, 'z': 1}}
        """
        refs = self._check_fitted()
        # all counted already: read as it is (a copy of exact counts is megabytes per feature)
        counted = self._counted if self._counted is not None and not self._window.n_rows else self._as_counts()
        out: dict[str, dict[str, Any]] = {}
        for f, st in refs.items():
            w = counted.features.get(f)
            if st.categorical or st.ref is None:
                cur = w.counts if isinstance(w, CategoryCounts) else {}
                out[f] = {"reference": dict(st.counts or {}), "current": dict(cur)}
                continue
            edges = quantile_edges(st.ref.sorted, bins)
            ref_cells = np.bincount(np.searchsorted(edges, st.ref.sorted, side="right"), minlength=len(edges) + 1)
            if isinstance(w, EdgeCounts):
                at = w.edges.searchsorted(edges)
                if at.max(initial=0) >= len(w.edges) or not np.array_equal(w.edges[at], edges):
                    raise DetectorError(f"{self.name}: feature {f!r}: the window's counts are not at the "
                                        "reference's quantile edges")
                below = w.below[at]
                cur_cells = np.diff(np.concatenate([[0], below, [w.n]]))
            else:
                cur_cells = np.zeros(len(edges) + 1, np.int64)
            out[f] = {"edges": edges.tolist(), "reference": ref_cells.tolist(), "current": cur_cells.tolist()}
        return out

    def update_counts(self, rows: int, cells: Mapping[str, Sequence[int]], categories: Mapping[str, Mapping[Any, int]],
                      present: Mapping[str, int], numbers: Mapping[str, int],
                      odd: Mapping[str, Mapping[str, int]] | None = None,
                      values: Mapping[str, Sequence[Any]] | None = None) -> Self:
        """Add a window's counts made elsewhere (a cluster's aggregations, binned mode):
        ``rows`` rows; per numerical feature its counts in the :meth:`count_plan` cells;
        per categorical feature its category counts; ``present``: cells of the feature (any
        type), ``numbers``: of those, the values counted (numbers for a feature whose values are
        numbers). Features with no present cell are absent from the window.

        Counts from a store that keeps values as text (Elasticsearch's ``flattened`` field) are
        read as the values would be: a category given as text is the reference's category
        with that text (``"true"`` is ``True``, ``"2"`` is ``2``); ``odd`` — per feature whose
        values are numbers, the cells that were not counted as numbers, by their text
        (``"1.5"``, ``"true"``, ``"?"``) — are numbers where a test on the values reads them as
        numbers (``"1.5"``, booleans), else bad cells. ``values``: per feature, cells the store
        could not count as they are (lists, long text, ``"true"`` the text rather than the
        boolean), given as they are: counted here as :meth:`update` counts cells (they are in
        ``present``, not in the counts).

        >>> det = TabularDrift(bins=2, max_categories=0).fit({"x": [1.0, 2.0, 3.0, 4.0], "b": [True, False] * 2})
        >>> _ = det.update_counts(3, {"x": [0, 1, 0]}, {"b": {"true": 2, "false": 1}}, {"x": 3, "b": 3}, {"x": 1, "b": 3},
        ...                       odd={"x": {"3.5": 1, "?": 1}})
        >>> det.window_counts(2)["x"]["current"], det.window_counts(2)["b"]["current"]
        ([0, 1, 1], {True: 2, False: 1})
        >>> det.result().extra["bad_values"]
        {'x': 1}
        """
        refs = self._check_fitted()
        if self._counted is None:
            self._counted = self._as_counts()
            super().reset()
        c = self._counted
        c.n_rows += int(rows)
        for f, st in refs.items():
            n_present = int(present.get(f, 0))
            if not n_present and f not in c.features:
                continue
            w = c.features.get(f) or c.features.setdefault(f, self._fresh(st))
            counted = int(numbers.get(f, 0))
            extra = (odd or {}).get(f)
            if extra and st.numeric:
                texts, n = _read_text(extra)
                counted += int(n.sum())
            if isinstance(w, EdgeCounts):
                w.add_cells(np.asarray(cells.get(f, np.zeros(len(w.edges) + 1)), dtype=np.int64))
                if extra and st.numeric and len(texts):
                    w.add_cells(np.bincount(np.searchsorted(w.edges, texts, side="right"), weights=n,
                                            minlength=len(w.edges) + 1).astype(np.int64))
            else:
                known = _by_text(st.counts or {}) if not st.numeric else {}
                read: dict[Any, int] = {}
                # added up, not overwritten: the text "true" and the number 1 are one category (True)
                # to a test on the values; text first, so that the key is the reference's
                for k, v in sorted((categories.get(f) or {}).items(), key=lambda kv: not isinstance(kv[0], str)):
                    key = known.get(k, _BOOL_TEXT.get(k, k)) if isinstance(k, str) else k
                    read[key] = read.get(key, 0) + int(v)
                w.add(read)
                if extra and st.numeric and len(texts):
                    for v, k in zip(texts.tolist(), n.tolist(), strict=True):  # "2" and "2.0" are one
                        w.add({float(v): int(k)})
            given = (values or {}).get(f)
            if given:
                column = object_column(given)  # one cell each, lists too
                self._fold_column(c, st, f, column)
                c.seen[f] -= len(column)  # the rows are counted once, below
                counted += len(column)
            c.missing[f] = c.missing.get(f, 0) + int(rows) - n_present
            if n_present > counted:
                c.bad[f] = c.bad.get(f, 0) + n_present - counted
            c.seen[f] = c.seen.get(f, 0) + int(rows)
        return self

    def result(self) -> Detection:
        if self._counted is None:
            return super().result()
        refs = self._check_fitted()
        c = self._counted
        det, report = self._detection(c.n_rows)
        self._begin()
        tested: list[str] = []
        states: list[_State] = []
        windows: list[Any] = []
        for f, st in refs.items():
            if f not in c.features:
                report.missing(f, "absent from the window")
                continue
            w = c.features[f]
            if report.add(f, w, c.missing.get(f, 0) + c.n_rows - c.seen.get(f, 0), c.bad.get(f, 0), size=w.n):
                tested.append(f)
                states.append(st)
                windows.append(w)
        if not tested:
            return det
        self._n_tests = len(tested)
        p, d = self._test(states, windows)
        return self._finish(det, tested, p, d, self._methods)

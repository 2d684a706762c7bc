"""Shared machinery of the per-feature drift tests (private).

A subclass says which columns it accepts, what it keeps of each reference column and
how it tests one window; this base does features, windows, merging, corrections and
the :class:`~inferwatch.record.Detection`.

Bad cells never stop a window: in a numerical feature a cell that cannot be read as a
number (``'?'``, ``'n/a'``) is treated as missing and counted. What the Detection says
about every window (``extra``):

* ``n_tested``: the features whose p-value entered the correction (the correction
  counts only these);
* ``untested``: ``{feature: reason}`` for every fitted feature that was not tested;
* ``values_tested``: per tested feature, the number of values its test used;
  ``window_size`` is the number of *rows* in the window, so ``window_size -
  values_tested[f]`` values of ``f`` were dropped;
* ``missing_values`` / ``bad_values``: per feature, the missing cells dropped and the
  cells that could not be read as numbers (dropped too);
* ``methods``: per tested feature, how its p-value was computed (e.g. ``"asymptotic"``,
  ``"exact"``, ``"discrete-asymptotic"``, ``"permutation"``; see each detector).
"""

from __future__ import annotations

import abc
import copy
import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np

from detectors.common._data import (
    Data,
    as_float,
    coerce_float,
    columns,
    looks_numeric,
    n_missing,
    probability,
    readable,
)
from detectors.common.corrections import CORRECTIONS, correct
from detectors.common.state import ColumnBuffer
from inferwatch.errors import DetectorError
from inferwatch.record import Detection, Kind

__all__ = ["FeatureDrift", "MergeableWindow", "fingerprint"]


def fingerprint(cols: dict[str, np.ndarray]) -> str:
    """A short content hash of reference columns (merging needs equal references)."""
    h = hashlib.sha1()
    for name in sorted(cols):
        arr = cols[name]
        h.update(name.encode())
        if arr.dtype.kind in "biuf":
            h.update(np.ascontiguousarray(arr).tobytes())
        else:
            h.update(repr(arr.tolist()).encode())
    return h.hexdigest()[:16]


GROUP_VALUES = 4_000_000
"""Values (about 32 MB of float64) prepared and tested together in :meth:`FeatureDrift.result`."""


class _Report:
    """What a Detection says about the features it could not test, and the values it used."""

    def __init__(self, det: Detection) -> None:
        self.det = det
        det.extra["untested"] = {}
        det.extra["values_tested"] = {}
        det.extra["missing_values"] = {}
        det.extra["bad_values"] = {}

    def missing(self, f: str, why: str) -> None:
        self.det.extra.setdefault("missing_features", []).append(f)
        self.det.extra["untested"][f] = why

    def invalid(self, f: str, why: str) -> None:
        self.det.extra.setdefault("invalid_features", []).append(f)
        self.det.extra["untested"][f] = why

    def add(self, f: str, prepared: Any, n_miss: int, bad: int, size: int | None = None) -> int:
        """Record one feature's cells; its number of values to test (0: not tested)."""
        extra = self.det.extra
        extra["missing_values"][f] = int(n_miss)
        if bad:
            extra["bad_values"][f] = int(bad)
        if prepared is None:
            self.invalid(f, "values of the wrong kind for this test")
            return 0
        if size is None:
            size = sum(prepared.values()) if isinstance(prepared, dict) else len(prepared)
        if size == 0:
            if bad:
                self.invalid(f, f"no value could be read ({bad} bad cells)")
            else:
                self.missing(f, "every value missing")
            return 0
        extra["values_tested"][f] = int(size)
        return int(size)


class MergeableWindow(abc.ABC):
    """What both detector bases do with their window (:class:`ColumnBuffer`): its size,
    ``reset``, and ``merge`` with a detector of the same type fitted on the same reference."""

    name: str
    _window: ColumnBuffer
    _ref_key: str

    @abc.abstractmethod
    def _check_fitted(self) -> object:
        """Raise if ``fit`` was not called."""

    @property
    def window_size(self) -> int:
        return self._window.n_rows

    def reset(self) -> Self:
        self._window = ColumnBuffer.zero()
        return self

    def merge(self, other: Self) -> Self:
        self._check_fitted()
        if type(other) is not type(self) or other._ref_key != self._ref_key:
            raise DetectorError(f"{self.name}: can only merge detectors fitted on the same reference")
        new = copy.copy(self)
        new._window = self._window.merge(other._window)
        return new


class FeatureDrift(MergeableWindow):
    """Base of per-feature two-sample drift tests with a multiple-testing correction."""

    name: str = "feature-drift"
    kind: Kind = "drift"
    numeric_only: ClassVar[bool] = True
    uses_p_values: bool = True

    def __init__(
        self,
        p_val: float = 0.05,
        correction: str = "bonferroni",
        features: Sequence[str] | None = None,
    ) -> None:
        if correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
        self.p_val = probability("p_val", p_val)
        self.correction = correction
        self.features: list[str] | None = list(features) if features is not None else None
        self._ref: dict[str, Any] | None = None
        self._ref_key = ""
        self._ref_rows = 0
        self._window = ColumnBuffer.zero()
        self._ref_bad: dict[str, int] = {}
        self._n_tests = 0
        self._methods: list[str] | None = None
        """Set by :meth:`_test` when it knows how each p-value was computed."""

    # -- what subclasses provide -------------------------------------------------
    def _accepts(self, values: np.ndarray) -> bool:
        """Whether a reference column is tested when ``features`` is not given."""
        return looks_numeric(values)

    def _numeric_state(self, state: Any) -> bool:
        """Whether a fitted feature is numerical (its window cells are read as numbers; the
        ones that cannot be are bad cells, dropped and counted)."""
        return self.numeric_only

    def _permutations(self, n_tests: int) -> int:
        """Most Monte Carlo draws of a permutation p-value: enough that the smallest
        attainable p-value is a tenth of the per-feature Bonferroni cut."""
        return max(999, int(np.ceil(10 * max(n_tests, 1) / self.p_val)))

    @abc.abstractmethod
    def _fit_feature(self, name: str, values: Any) -> Any:
        """What to keep of one (prepared) reference column."""

    @abc.abstractmethod
    def _test(self, refs: list[Any], values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """p-values and distances for each (fitted reference, prepared window column) pair."""

    def _prepare(self, values: np.ndarray) -> Any:
        """A column ready for :meth:`_fit_feature` / :meth:`_test`: an array by default,
        anything with a length (0 = no values); ``None`` if it cannot be tested."""
        if not self.numeric_only:
            return values
        out = as_float(values)
        if out is None:
            return None
        missing = np.isnan(out)
        return out[~missing] if missing.any() else out

    # -- the Detector interface ----------------------------------------------------
    @property
    def fitted_features(self) -> list[str]:
        return list(self._ref or ())

    def fit(self, reference: Data) -> Self:
        cols = columns(reference)
        if not cols:
            raise DetectorError(f"{self.name}: empty reference")
        if self.features is None:
            names = [k for k, v in cols.items() if self._accepts(v)]
        else:
            missing = [f for f in self.features if f not in cols]
            if missing:
                raise DetectorError(f"{self.name}: features {missing} not in the reference columns {list(cols)}")
            names = list(self.features)
        if not names:
            raise DetectorError(f"{self.name}: no column of the reference can be tested ({list(cols)})")
        refs = {}
        self._ref_bad = {}
        for f in names:
            col = cols[f]
            if self.numeric_only and col.dtype.kind not in "biuf" and looks_numeric(col):
                col, bad = coerce_float(col)
                if bad:
                    self._ref_bad[f] = bad
            prepared = self._prepare(col)
            if prepared is None:
                raise DetectorError(f"{self.name}: reference column {f!r} is not numeric")
            if len(prepared) == 0:
                raise DetectorError(f"{self.name}: reference column {f!r} has no values")
            refs[f] = self._fit_feature(f, prepared)
        self._ref = refs
        self._ref_key = fingerprint({f: cols[f] for f in names})
        self._ref_rows = len(next(iter(cols.values())))
        self._window = ColumnBuffer.zero()
        return self

    def _check_fitted(self) -> dict[str, Any]:
        if self._ref is None:
            raise DetectorError(f"{self.name}: call fit(reference) first")
        return self._ref

    def update(self, batch: Data, ids: Sequence[str] | None = None) -> Self:
        refs = self._check_fitted()
        self._window.append(batch, names=refs)  # only the fitted features are kept
        return self

    def _begin(self) -> None:
        """Called at the start of :meth:`result` (subclasses reset what their tests record)."""
        self._methods = None

    def _window_has(self, name: str) -> bool:
        return self._window.has(name)

    def result(self) -> Detection:
        """Test every fitted feature, a group at a time (:data:`GROUP_VALUES`): a group's
        columns are prepared, tested and released before the next group is read, so a large
        window is never held twice (raw and prepared) whole. A window of at most
        :data:`GROUP_VALUES` values is one group."""
        refs = self._check_fitted()
        det, report = self._detection(self._window.n_rows)
        present = [f for f in refs if self._window.has(f)]
        total = sum(self._window.n_rows for _ in present)
        budget = total if total <= GROUP_VALUES else GROUP_VALUES
        self._n_tests = len(present)  # a cap on Monte Carlo draws; exact when every present feature is tested
        self._begin()
        tested: list[str] = []
        ps: list[np.ndarray] = []
        ds: list[np.ndarray] = []
        methods: list[str] = []
        group: list[tuple[str, Any, Any]] = []
        held = 0

        def flush() -> None:
            nonlocal held
            if group:
                if total <= GROUP_VALUES:
                    self._n_tests = len(group)  # one group: the count of tested features, as always
                self._methods = None
                p, d = self._test([g[1] for g in group], [g[2] for g in group])
                tested.extend(g[0] for g in group)
                ps.append(np.asarray(p, dtype=float))
                ds.append(np.asarray(d, dtype=float))
                methods.extend(self._methods if self._methods is not None else [""] * len(group))
                group.clear()
            held = 0

        for f, state in refs.items():
            if not self._window.has(f):
                report.missing(f, "absent from the window")
                continue
            raw, bad = readable(self._window.column(f), self._numeric_state(state))
            prepared = self._prepare(raw)
            n_miss = n_missing(raw) - bad
            del raw
            size = report.add(f, prepared, n_miss, bad)
            if size:
                group.append((f, state, prepared))
                held += size
                if held >= budget:
                    flush()
        flush()
        if not tested:
            return det
        self._n_tests = len(tested)
        p = np.concatenate(ps)
        dist = np.concatenate(ds)
        return self._finish(det, tested, p, dist, methods if any(methods) else None)

    def _detection(self, n_rows: int) -> tuple[Detection, _Report]:
        det = Detection(detector=self.name, kind=self.kind, model="", window_size=n_rows)
        det.threshold = self.p_val
        det.extra["correction"] = self.correction
        det.extra["n_tested"] = 0
        if self._ref_bad:
            det.extra["reference_bad_values"] = dict(self._ref_bad)
        return det, _Report(det)

    def _finish(self, det: Detection, tested: list[str], p: np.ndarray, dist: np.ndarray,
                methods: list[str] | None) -> Detection:
        """The Detection of tested features' p-values and distances (``methods``: how each
        p-value was computed, when known)."""
        if methods is not None:
            det.extra["methods"] = dict(zip(tested, methods, strict=True))
        for f, pv in zip(tested, p, strict=True):
            if np.isnan(pv) and self.uses_p_values:
                det.extra["untested"][f] = "no p-value (fewer than two distinct pooled values for this test)"
        det.distance = float(np.nanmax(dist)) if np.isfinite(dist).any() else None
        det.feature_distances = {f: float(v) for f, v in zip(tested, dist, strict=True)}
        det.extra["n_tested"] = int((~np.isnan(p)).sum()) if self.uses_p_values else len(tested)
        return self._decide(det, tested, p, dist)

    def _decide(self, det: Detection, tested: list[str], p: np.ndarray, dist: np.ndarray) -> Detection:
        """Batch and per-feature decisions (here: p-values and the correction)."""
        c = correct(p, self.p_val, self.correction)
        det.is_drift = c.is_drift
        det.p_value = c.p_value
        det.feature_p_values = {f: float(v) for f, v in zip(tested, p, strict=True)}
        det.feature_drift = {f: bool(v) for f, v in zip(tested, c.feature_drift, strict=True)}
        det.extra["feature_threshold"] = c.feature_threshold
        return det

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p_val={self.p_val}, correction={self.correction!r}, features={self.features!r})"

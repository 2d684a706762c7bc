"""Data quality of a window against the reference: schema, missing values, unseen
categories, out-of-range values (``kind="quality"``).

Learned at ``fit``: the columns and their kind (numerical / categorical), each column's
missing-value rate, numerical ranges (``[min, max]`` of the reference) and category sets.
A window is flagged (``is_drift=True``: "the data departs from the reference") when:

* a reference column is missing, a new column appears, or a column changes kind;
* a column's missing rate exceeds the reference rate by more than ``missing_tolerance``;
* more than ``range_tolerance`` of a numerical column's values fall outside the reference
  range, or more than ``unseen_tolerance`` of a categorical column's values are categories
  the reference never had.

``feature_distances`` holds the worst rate per column; ``extra["issues"]`` lists every
finding as ``{"feature", "issue", "value"}``.

>>> det = DataQuality().fit({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
>>> r = det.update({"x": [2.0, 50.0, None], "c": ["a", "z", "b"], "new": [1, 2, 3]}).result()
>>> r.is_drift, sorted({i["issue"] for i in r.extra["issues"]})
(True, ['missing_values', 'new_column', 'out_of_range', 'unseen_categories'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from detectors.common._categorical import is_categorical
from detectors.common._data import Columns, as_float
from detectors.common._windowed import WindowedDetector
from detectors.common.state import ColumnBuffer
from inferwatch.record import Detection, Kind

__all__ = ["DataQuality"]


@dataclass
class _Profile:
    categorical: bool
    missing: float
    lo: float = float("nan")
    hi: float = float("nan")
    categories: set[Any] = field(default_factory=set)


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return np.asarray(pd.isna(values), dtype=bool)
    return np.zeros(len(values), dtype=bool)


class DataQuality(WindowedDetector):
    """Parameters: ``features`` (default: all reference columns), ``missing_tolerance``,
    ``range_tolerance``, ``unseen_tolerance`` (fractions of the window's values),
    ``schema`` (flag missing/new columns and kind changes)."""

    name = "quality"
    kind: Kind = "quality"

    def __init__(
        self,
        features: Sequence[str] | None = None,
        missing_tolerance: float = 0.05,
        range_tolerance: float = 0.01,
        unseen_tolerance: float = 0.01,
        schema: bool = True,
    ) -> None:
        super().__init__()
        for name, v in (("missing_tolerance", missing_tolerance), ("range_tolerance", range_tolerance),
                        ("unseen_tolerance", unseen_tolerance)):
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        self.features: list[str] | None = list(features) if features is not None else None
        self.missing_tolerance = float(missing_tolerance)
        self.range_tolerance = float(range_tolerance)
        self.unseen_tolerance = float(unseen_tolerance)
        self.schema = bool(schema)
        self._profiles: dict[str, _Profile] = {}
        self._columns: list[str] = []

    @property
    def fitted_features(self) -> list[str]:
        return list(self._profiles)

    def _profile(self, values: np.ndarray) -> _Profile:
        miss = _missing(values)
        present = values[~miss]
        if is_categorical(values):
            return _Profile(True, float(miss.mean()), categories=set(present.tolist()))
        v = present.astype(np.float64)
        lo, hi = (float(v.min()), float(v.max())) if len(v) else (float("nan"), float("nan"))
        return _Profile(False, float(miss.mean()), lo, hi)

    def _fit(self, cols: Columns) -> None:
        self._columns = list(cols)
        feats = self.features if self.features is not None else self._columns
        missing = [f for f in feats if f not in cols]
        if missing:
            raise ValueError(f"{self.name}: features {missing} not in the reference columns {self._columns}")
        self._profiles = {f: self._profile(cols[f]) for f in feats}

    def _result(self, window: ColumnBuffer) -> Detection:
        det = self._detection()
        if window.n_rows == 0:
            return det
        issues: list[dict[str, Any]] = []
        worst: dict[str, float] = {}
        names = window.names()
        if self.schema:
            for c in self._columns:
                if c not in names:
                    issues.append({"feature": c, "issue": "missing_column", "value": 1.0})
                    worst[c] = 1.0
            for c in names:
                if c not in self._columns:
                    issues.append({"feature": c, "issue": "new_column", "value": 1.0})
        for f, prof in self._profiles.items():
            if f not in names:
                continue
            values = window.column(f)
            miss = _missing(values)
            rate = float(miss.mean())
            worst[f] = max(worst.get(f, 0.0), rate - prof.missing if rate > prof.missing else 0.0)
            if rate > prof.missing + self.missing_tolerance:
                issues.append({"feature": f, "issue": "missing_values", "value": rate})
            present = values[~miss]
            if not len(present):
                continue
            if prof.categorical:
                if not is_categorical(present) and self.schema:
                    issues.append({"feature": f, "issue": "kind_changed", "value": 1.0})
                unseen = float(np.mean([v not in prof.categories for v in present.tolist()]))
                worst[f] = max(worst[f], unseen)
                if unseen > self.unseen_tolerance:
                    issues.append({"feature": f, "issue": "unseen_categories", "value": unseen})
            else:
                v = as_float(present)
                if v is None:
                    if self.schema:
                        issues.append({"feature": f, "issue": "kind_changed", "value": 1.0})
                    continue
                out = float(((v < prof.lo) | (v > prof.hi)).mean())
                worst[f] = max(worst[f], out)
                if out > self.range_tolerance:
                    issues.append({"feature": f, "issue": "out_of_range", "value": out})
        det.is_drift = bool(issues)
        det.feature_distances = worst
        flagged = {i["feature"] for i in issues}
        det.feature_drift = {f: f in flagged for f in sorted(set(worst) | flagged)}
        det.distance = max(worst.values()) if worst else 0.0
        det.extra["issues"] = issues
        return det

"""Label-free drift of the model's prediction confidence.

From class-probability outputs — several numerical columns (one per class) or one column
whose cells are lists of probabilities — each row's confidence is its largest probability
(``measure="max"``) or one minus its normalized entropy (``measure="entropy"``). The
window's confidences are compared with the reference's by a two-sample KS test; the
distance is the drop of the mean confidence (positive = less confident than reference).
No labels are needed: a model that grows unsure is often a model seeing new data.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> sure = rng.dirichlet([20, 1, 1], size=1000)
>>> unsure = rng.dirichlet([2, 2, 2], size=200)
>>> det = ConfidenceDrift().fit({"p0": sure[:, 0], "p1": sure[:, 1], "p2": sure[:, 2]})
>>> r = det.update({"p0": unsure[:, 0], "p1": unsure[:, 1], "p2": unsure[:, 2]}).result()
>>> r.is_drift, r.distance > 0.3
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import ks_2samp

from detectors.common._data import Columns, probability
from detectors.common._windowed import (
    WindowedDetector,
    numeric_columns,
    numeric_matrix,
    window_columns,
)
from detectors.common.state import ColumnBuffer
from inferwatch.errors import DetectorError
from inferwatch.record import Detection

__all__ = ["ConfidenceDrift"]


class ConfidenceDrift(WindowedDetector):
    """Parameters: ``p_val``, ``features`` (probability columns; default all numerical
    columns, or the single list-valued column), ``measure`` (``"max"`` or ``"entropy"``)."""

    name = "confidence"

    def __init__(self, p_val: float = 0.05, features: Sequence[str] | None = None, measure: str = "max") -> None:
        super().__init__()
        if measure not in ("max", "entropy"):
            raise ValueError(f"measure must be 'max' or 'entropy', got {measure!r}")
        self.p_val = probability("p_val", p_val)
        self.features: list[str] | None = list(features) if features is not None else None
        self.measure = measure
        self._ref = np.empty(0)
        self._fitted_features: list[str] = []

    @property
    def fitted_features(self) -> list[str]:
        return list(self._fitted_features)

    def _probs(self, cols: Columns) -> np.ndarray:
        feats = self._fitted_features
        if len(feats) == 1 and cols[feats[0]].dtype.kind == "O":
            try:
                return np.array([np.asarray(v, dtype=np.float64) for v in cols[feats[0]]])
            except (TypeError, ValueError) as exc:
                raise DetectorError(f"column {feats[0]!r} does not hold probability lists") from exc
        return numeric_matrix(cols, feats)

    def _confidence(self, p: np.ndarray) -> np.ndarray:
        if p.ndim != 2 or p.shape[1] < 2:
            raise DetectorError(f"{self.name}: need at least two class probabilities per row")
        p = p[~np.isnan(p).any(axis=1)]
        if self.measure == "max":
            return p.max(axis=1)
        q = np.clip(p / p.sum(axis=1, keepdims=True), 1e-12, 1.0)
        return 1.0 - (-(q * np.log(q)).sum(axis=1) / np.log(p.shape[1]))

    def _fit(self, cols: Columns) -> None:
        if self.features is not None:
            feats = list(self.features)
        else:
            feats = numeric_columns(cols)
            if not feats:
                feats = [k for k, v in cols.items() if v.dtype.kind == "O"][:1]
        if not feats:
            raise DetectorError(f"{self.name}: no probability column in the reference")
        self._fitted_features = feats
        self._ref = np.sort(self._confidence(self._probs(cols)))

    def _result(self, window: ColumnBuffer) -> Detection:
        det = self._detection()
        det.threshold = self.p_val
        if window.n_rows == 0:
            return det
        cols = window_columns(window, self._fitted_features, det)
        if cols is None:
            return det
        conf = self._confidence(self._probs(cols))
        if not len(conf):
            return det
        res = ks_2samp(self._ref, conf, method="asymp")
        det.p_value = float(res.pvalue)
        det.is_drift = det.p_value < self.p_val
        det.distance = float(self._ref.mean() - conf.mean())
        det.extra.update(mean_confidence=float(conf.mean()), reference_mean_confidence=float(self._ref.mean()),
                         ks_statistic=float(res.statistic))
        return det

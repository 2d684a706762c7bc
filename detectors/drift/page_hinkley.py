"""Page-Hinkley sequential test for a change in mean, per numerical feature.

Each value is standardized with the reference mean and standard deviation; the upward
statistic ``m_t = sum_{i<=t} (z_i - delta)`` alarms when ``m_t - min_{s<=t} m_s > threshold``
(and symmetrically downward). The window's rows are processed in order from the last
``reset()``; ``extra["alarm_at"]`` is the row of the first alarm. ``delta`` (slack) and
``threshold`` are in reference standard deviations.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = PageHinkley().fit({"a": rng.normal(size=1000).tolist()})
>>> stream = np.r_[rng.normal(size=300), rng.normal(1.0, size=300)]
>>> r = det.update({"a": stream.tolist()}).result()
>>> r.is_drift, 300 <= r.extra["alarm_at"] < 400
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.common._data import Columns
from detectors.common._windowed import WindowedDetector, numeric_matrix, window_columns
from detectors.common.state import ColumnBuffer
from inferwatch.record import Detection

__all__ = ["PageHinkley"]


class PageHinkley(WindowedDetector):
    """Parameters: ``delta``, ``threshold``, ``min_rows`` (no alarm before), ``features``."""

    name = "page_hinkley"

    def __init__(
        self,
        delta: float = 0.1,
        threshold: float = 25.0,
        min_rows: int = 30,
        features: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if float(threshold) <= 0 or float(delta) < 0:
            raise ValueError("threshold must be positive and delta non-negative")
        self.delta = float(delta)
        self.threshold = float(threshold)
        self.min_rows = int(min_rows)
        self.features: list[str] | None = list(features) if features is not None else None
        self._mean = np.empty(0)
        self._std = np.empty(0)
        self._fitted_features: list[str] = []

    @property
    def fitted_features(self) -> list[str]:
        return list(self._fitted_features)

    def _fit(self, cols: Columns) -> None:
        feats = self._numeric_features(cols, self.features)
        x = numeric_matrix(cols, feats)
        self._mean = np.nanmean(x, axis=0)
        std = np.nanstd(x, axis=0)
        self._std = np.where(std > 0, std, 1.0)
        self._fitted_features = feats

    def _result(self, window: ColumnBuffer) -> Detection:
        det = self._detection()
        det.threshold = self.threshold
        if window.n_rows == 0:
            return det
        cols = window_columns(window, self._fitted_features, det)
        if cols is None:
            return det
        z = (numeric_matrix(cols, self._fitted_features, fill=self._mean) - self._mean) / self._std
        up = np.cumsum(z - self.delta, axis=0)
        down = np.cumsum(-z - self.delta, axis=0)
        zero = np.zeros((1, z.shape[1]))
        g_up = up - np.minimum.accumulate(np.vstack([zero, up]), axis=0)[1:]
        g_down = down - np.minimum.accumulate(np.vstack([zero, down]), axis=0)[1:]
        g = np.maximum(g_up, g_down)
        g[: max(self.min_rows - 1, 0)] = 0.0
        alarms = g > self.threshold
        per_feature = alarms.any(axis=0)
        det.is_drift = bool(per_feature.any())
        det.distance = float(g.max())
        det.feature_distances = dict(zip(self._fitted_features, g.max(axis=0).tolist(), strict=True))
        det.feature_drift = dict(zip(self._fitted_features, per_feature.tolist(), strict=True))
        if det.is_drift:
            det.extra["alarm_at"] = int(np.flatnonzero(alarms.any(axis=1))[0])
        return det

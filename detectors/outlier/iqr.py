"""Per-feature interquartile-range (Tukey fence) outliers.

Score of a row: the largest distance outside ``[Q1, Q3]`` in units of the IQR over its
features (0 inside the box). Threshold: the ``1 - fpr`` quantile of the reference rows'
scores, or a fixed ``threshold`` (1.5 is Tukey's fence).

>>> det = IQROutlier(threshold=1.5).fit({"a": [0.0, 1.0, 2.0, 3.0, 4.0]})
>>> det.update({"a": [2.0, 9.0]}).result().extra["outliers"]
[1]
"""

from __future__ import annotations

import numpy as np

from detectors.outlier._base import OutlierDetector

__all__ = ["IQROutlier"]


class IQROutlier(OutlierDetector):
    """Parameters: ``fpr``, ``features``, ``threshold``, ``calibration`` (default 0), ``seed``."""

    name = "iqr"
    default_calibration = 0.0
    # the fitted quartiles (replaced, never changed in place, by _fit_model)
    _q1 = _q3 = _iqr = np.empty(0)

    def _fit_model(self, x: np.ndarray) -> None:
        self._q1, self._q3 = np.quantile(x, [0.25, 0.75], axis=0)
        iqr = self._q3 - self._q1
        self._iqr = np.where(iqr > 0, iqr, 1.0)

    def score(self, x: np.ndarray) -> np.ndarray:
        below = (self._q1 - x) / self._iqr
        above = (x - self._q3) / self._iqr
        return np.maximum(np.maximum(below, above), 0.0).max(axis=1)

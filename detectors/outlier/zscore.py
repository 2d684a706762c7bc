"""Per-feature z-score outliers.

Score of a row: the largest ``|x_f - mean_f| / std_f`` over its features (reference mean
and standard deviation). Threshold: the ``1 - fpr`` quantile of the reference rows'
scores, or a fixed ``threshold`` (e.g. 3.0).

>>> det = ZScoreOutlier(threshold=3.0).fit({"a": [0.0, 1.0, 2.0, 1.0, 0.0, 2.0]})
>>> det.update({"a": [1.0, 10.0]}).result().extra["outliers"]
[1]
"""

from __future__ import annotations

import numpy as np

from detectors.outlier._base import OutlierDetector

__all__ = ["ZScoreOutlier"]


class ZScoreOutlier(OutlierDetector):
    """Parameters: ``fpr``, ``features``, ``threshold``, ``calibration`` (default 0: the
    reference scores itself), ``seed``."""

    name = "zscore"
    default_calibration = 0.0
    # the fitted mean and spread (replaced, never changed in place, by _fit_model)
    _mean = _std = np.empty(0)

    def _fit_model(self, x: np.ndarray) -> None:
        self._mean = x.mean(axis=0)
        std = x.std(axis=0)
        self._std = np.where(std > 0, std, 1.0)

    def score(self, x: np.ndarray) -> np.ndarray:
        return np.abs((x - self._mean) / self._std).max(axis=1)

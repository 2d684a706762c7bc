"""Mahalanobis-distance outliers with a robust covariance (``sklearn`` ``MinCovDet``).

Score: squared Mahalanobis distance of each row to the reference's robust location under
its robust covariance (Minimum Covariance Determinant), so outliers in the reference do
not mask themselves. Threshold at the chosen false-positive rate on held-out reference rows.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = MahalanobisOutlier(fpr=0.01).fit({"a": rng.normal(size=1000).tolist(), "b": rng.normal(size=1000).tolist()})
>>> r = det.update({"a": [0.1, 8.0], "b": [0.0, -8.0]}).result()
>>> r.is_outlier, r.extra["outliers"]
(True, [1])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.covariance import MinCovDet

from detectors.outlier._base import OutlierDetector

__all__ = ["MahalanobisOutlier"]


class MahalanobisOutlier(OutlierDetector):
    """Parameters: ``fpr``, ``features``, ``threshold`` (fixed, overrides ``fpr``),
    ``calibration`` (held-out fraction), ``seed``, ``support_fraction`` (MCD)."""

    name = "mahalanobis"

    def __init__(
        self,
        fpr: float = 0.01,
        features: Sequence[str] | None = None,
        threshold: float | None = None,
        calibration: float = 0.5,
        seed: int = 0,
        support_fraction: float | None = None,
    ) -> None:
        super().__init__(fpr=fpr, features=features, threshold=threshold, calibration=calibration, seed=seed)
        self.support_fraction = support_fraction
        self._mcd: MinCovDet | None = None

    def _fit_model(self, x: np.ndarray) -> None:
        self._mcd = MinCovDet(support_fraction=self.support_fraction, random_state=self.seed).fit(x)

    def score(self, x: np.ndarray) -> np.ndarray:
        assert self._mcd is not None
        return np.asarray(self._mcd.mahalanobis(x), dtype=np.float64)

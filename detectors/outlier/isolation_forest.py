"""Isolation Forest outliers (``sklearn.ensemble.IsolationForest``).

Score: ``-score_samples`` (higher = easier to isolate = more unusual). Threshold at the
chosen false-positive rate on held-out reference rows.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = IsolationForestOutlier(fpr=0.01).fit({"a": rng.normal(size=1000).tolist()})
>>> det.update({"a": [0.0, 9.0]}).result().extra["outliers"]
[1]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import IsolationForest

from detectors.outlier._base import OutlierDetector

__all__ = ["IsolationForestOutlier"]


class IsolationForestOutlier(OutlierDetector):
    """Parameters: ``fpr``, ``features``, ``threshold``, ``calibration``, ``seed``,
    ``n_estimators``."""

    name = "isolation_forest"

    def __init__(
        self,
        fpr: float = 0.01,
        features: Sequence[str] | None = None,
        threshold: float | None = None,
        calibration: float = 0.5,
        seed: int = 0,
        n_estimators: int = 100,
    ) -> None:
        super().__init__(fpr=fpr, features=features, threshold=threshold, calibration=calibration, seed=seed)
        self.n_estimators = int(n_estimators)
        self._forest: IsolationForest | None = None

    def _fit_model(self, x: np.ndarray) -> None:
        self._forest = IsolationForest(n_estimators=self.n_estimators, random_state=self.seed).fit(x)

    def score(self, x: np.ndarray) -> np.ndarray:
        assert self._forest is not None
        return -np.asarray(self._forest.score_samples(x), dtype=np.float64)

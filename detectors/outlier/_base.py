"""Shared base of the per-row outlier detectors (private).

A detector learns a score (higher = more unusual) on numerical reference features and a
threshold: the ``1 - fpr`` quantile of the scores of held-out reference rows
(``calibration`` fraction; 0 scores the fitting rows themselves). ``result()`` scores every
window row: ``Detection.scores`` and ``row_ids`` hold them (the ids given to ``update``,
else the row position), ``is_outlier`` says whether any row is over
the threshold, ``extra["outliers"]`` lists the positions that are, and ``p_value`` is the
binomial probability of at least that many outliers at the nominal ``fpr``.
Missing cells are replaced by the reference median.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np
from scipy.stats import binom

from detectors.common._data import Columns, probability
from detectors.common._windowed import (
    WindowedDetector,
    median_filled_matrix,
    numeric_columns,
    numeric_matrix,
    window_columns,
)
from detectors.common.state import ColumnBuffer
from inferwatch.errors import DetectorError
from inferwatch.record import Detection, Kind

__all__ = ["OutlierDetector"]


class OutlierDetector(WindowedDetector):
    kind: Kind = "outlier"
    #: ``calibration`` when none is given: a detector whose reference scores are honest on the
    #: fitting rows themselves (per-feature ranges) says 0
    default_calibration: float = 0.5

    def __init__(
        self,
        fpr: float = 0.01,
        features: Sequence[str] | None = None,
        threshold: float | None = None,
        calibration: float | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if calibration is None:
            calibration = self.default_calibration
        if not 0.0 <= float(calibration) < 1.0:
            raise ValueError(f"calibration must be in [0, 1), got {calibration!r}")
        self.fpr = probability("fpr", fpr)
        self.features: list[str] | None = list(features) if features is not None else None
        self.fixed_threshold = threshold
        self.calibration = float(calibration)
        self.seed = int(seed)
        self.threshold: float = float("nan")
        self._fitted_features: list[str] = []
        self._median = np.empty(0)

    @property
    def fitted_features(self) -> list[str]:
        return list(self._fitted_features)

    @abc.abstractmethod
    def _fit_model(self, x: np.ndarray) -> None: ...

    @abc.abstractmethod
    def score(self, x: np.ndarray) -> np.ndarray:
        """Outlier score per row of a float matrix (features in ``fitted_features`` order)."""

    def _fit(self, cols: Columns) -> None:
        if self.features is None:
            feats = numeric_columns(cols)
        else:
            feats = list(self.features)
        if not feats:
            raise DetectorError(f"{self.name}: no numerical feature in the reference")
        x, self._median = median_filled_matrix(cols, feats)
        self._fitted_features = feats
        rng = np.random.default_rng(self.seed)
        n = len(x)
        n_cal = int(n * self.calibration) if n >= 100 else 0
        order = rng.permutation(n)
        fit_rows, cal_rows = (order[n_cal:], order[:n_cal]) if n_cal else (order, order)
        self._fit_model(x[fit_rows])
        if self.fixed_threshold is not None:
            self.threshold = float(self.fixed_threshold)
        else:
            scores = self.score(x[cal_rows])
            self.threshold = float(np.quantile(scores, 1.0 - self.fpr))

    def _result(self, window: ColumnBuffer) -> Detection:
        det = self._detection()
        det.threshold = self.threshold
        if window.n_rows == 0:
            return det
        cols = window_columns(window, self._fitted_features, det)
        if cols is None:
            return det
        try:
            x = numeric_matrix(cols, self._fitted_features, fill=self._median)
        except DetectorError as exc:
            det.extra["invalid_features"] = str(exc)
            return det
        scores = self.score(x)
        flags = scores > self.threshold
        k, n = int(flags.sum()), len(scores)
        det.row_ids = window.row_ids()
        det.scores = [float(s) for s in scores]
        det.is_outlier = bool(k)
        det.distance = float(scores.max())
        det.p_value = float(binom.sf(k - 1, n, self.fpr)) if k else 1.0
        det.extra.update(outliers=np.flatnonzero(flags).tolist(), n_outliers=k, expected_outliers=n * self.fpr)
        return det

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fpr={self.fpr}, features={self.features!r})"

"""Direct loss estimation (DLE): a regressor's MAE and RMSE before labels arrive.

Fitted on a labelled reference, a gradient-boosted model (scikit-learn's
``HistGradientBoostingRegressor``) learns each row's expected absolute error, and a second
one its expected squared error, from the inputs and the prediction. A window's estimated MAE
is the mean of the expected absolute errors (clipped at 0), its RMSE the square root of the
mean expected squared error. The method is NannyML's (which uses LightGBM); like CBPE it
assumes the error given the inputs stays as in the reference, and a tree model does not
extrapolate: inputs far outside the reference get the error of the reference's edge.

The window keeps each row's two expected errors (merged windows give exactly one window's figures). ``extra["standard_error"]["mae"]`` is
the reference's standard deviation of absolute errors over ``sqrt(n)``. The window fires when
``metric`` is estimated higher than the reference's realized figure by more than ``max_rise``
(relative: 0.2 is 20% worse).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=4000); y = x + rng.normal(size=4000) * (0.2 + (x > 1))  # noisier for x > 1
>>> est = DLE(features=["x"], min_rows=1).fit({"x": x, "prediction": x, "truth": y})
>>> calm = est.update({"x": np.full(500, -1.0), "prediction": np.full(500, -1.0)}).result()
>>> loud = est.reset().update({"x": np.full(500, 2.0), "prediction": np.full(500, 2.0)}).result()
>>> calm.extra["metrics"]["mae"] < 0.3 < 0.6 < loud.extra["metrics"]["mae"], loud.is_drift
(True, True)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Self

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from detectors.common._data import Data, as_float, columns_and_rows
from detectors.common._univariate import fingerprint
from inferwatch.errors import DetectorError
from inferwatch.record import Detection

__all__ = ["DLE"]


class DLE:
    """Parameters: ``features`` (numerical input columns), ``prediction``, ``truth``
    (reference only), ``metric`` (``"mae"`` or ``"rmse"``), ``max_rise``, ``min_rows``, ``seed``."""

    name = "dle"
    kind = "performance"

    def __init__(self, features: Sequence[str], prediction: str = "prediction", truth: str = "truth",
                 metric: str = "mae", max_rise: float = 0.2, min_rows: int = 100, seed: int = 0) -> None:
        if metric not in ("mae", "rmse"):
            raise ValueError(f"DLE estimates mae or rmse, not {metric!r}")
        self.features, self.prediction, self.truth = list(features), prediction, truth
        self.metric, self.max_rise, self.min_rows, self.seed = metric, float(max_rise), int(min_rows), seed
        self._abs: HistGradientBoostingRegressor | None = None
        self._sq: HistGradientBoostingRegressor | None = None
        self.reference_metrics: dict[str, float] = {}
        self._ref_abs_sd = 0.0
        self._ref_key = ""
        self._abs_rows: list[np.ndarray] = []  # each row's expected absolute and squared error
        self._sq_rows: list[np.ndarray] = []

    def _matrix(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        out = []
        for name in [*self.features, self.prediction]:
            col = cols.get(name)
            v = as_float(col) if col is not None else None
            if v is None:
                raise DetectorError(f"{self.name}: column {name!r} is {'missing' if col is None else 'not numerical'}")
            out.append(v)
        return np.column_stack(out)

    def fit(self, reference: Data) -> Self:
        cols, n = columns_and_rows(reference)
        if not n or self.truth not in cols:
            raise DetectorError(f"{self.name}: the reference needs rows with labels ({self.truth!r})")
        x = self._matrix(cols)
        y = as_float(cols[self.truth])
        if y is None:
            raise DetectorError(f"{self.name}: {self.truth!r} is not numerical")
        ok = ~np.isnan(y) & ~np.isnan(x[:, -1])
        if ok.sum() < 20:
            raise DetectorError(f"{self.name}: fewer than 20 labelled reference rows")
        x, err = x[ok], y[ok] - x[ok, -1]
        self._abs = HistGradientBoostingRegressor(random_state=self.seed).fit(x, np.abs(err))
        self._sq = HistGradientBoostingRegressor(random_state=self.seed).fit(x, err * err)
        self.reference_metrics = {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err * err).mean()))}
        self._ref_abs_sd = float(np.abs(err).std(ddof=1))
        self._ref_key = fingerprint(cols)
        return self.reset()

    def update(self, batch: Data, ids: Sequence[str] | None = None) -> Self:
        if self._abs is None or self._sq is None:
            raise DetectorError(f"{self.name}: call fit(reference) first")
        cols, n = columns_and_rows(batch)
        if n:
            x = self._matrix(cols)
            x = x[~np.isnan(x[:, -1])]
            if len(x):
                self._abs_rows.append(np.maximum(self._abs.predict(x), 0))
                self._sq_rows.append(np.maximum(self._sq.predict(x), 0))
        return self

    @property
    def _n(self) -> int:
        return sum(len(a) for a in self._abs_rows)

    def _means(self) -> tuple[float, float]:
        if len(self._abs_rows) > 1:  # one block from now on
            self._abs_rows, self._sq_rows = [np.concatenate(self._abs_rows)], [np.concatenate(self._sq_rows)]
        return float(self._abs_rows[0].mean()), float(self._sq_rows[0].mean())

    def result(self) -> Detection:
        if self._abs is None:
            raise DetectorError(f"{self.name}: call fit(reference) first")
        det = Detection(detector=self.name, kind="performance", model="", window_size=self._n,
                        threshold=self.max_rise)
        metrics: dict[str, float] = {}
        if self._n:
            mae, mse = self._means()
            metrics = {"mae": mae, "rmse": float(np.sqrt(mse))}
        det.extra.update(metric=self.metric, estimated=True, method="dle", metrics=metrics,
                         reference_metrics=dict(self.reference_metrics))
        if self._n:
            det.extra["standard_error"] = {"mae": self._ref_abs_sd / np.sqrt(self._n)}
        ref = self.reference_metrics.get(self.metric)
        if metrics and ref and self._n >= max(self.min_rows, 1):
            det.distance = metrics[self.metric] / ref - 1.0
            det.is_drift = det.distance > self.max_rise
        return det

    def reset(self) -> Self:
        self._abs_rows, self._sq_rows = [], []
        return self

    def merge(self, other: Self) -> Self:
        if self._abs is None or other._ref_key != self._ref_key or other.features != self.features:
            raise DetectorError(f"{self.name}: can only merge estimators fitted on the same reference")
        new = copy.copy(self)
        new._abs_rows, new._sq_rows = self._abs_rows + other._abs_rows, self._sq_rows + other._sq_rows
        return new

    @property
    def window_size(self) -> int:
        return self._n

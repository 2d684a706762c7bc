"""Page-Hinkley sequential test for a change in mean, per numerical feature.

Each value is standardized with the reference mean and standard deviation; the upward
statistic ``m_t = sum_{i<=t} (z_i - delta)`` alarms when ``m_t - min_{s<=t} m_s > threshold``
(and symmetrically downward). The window's rows are processed in order from the last
``reset()``; ``extra["alarm_at"]`` is the row of the first alarm. ``delta`` (slack) and
``threshold`` are in reference standard deviations.

With ``ert`` (expected run time, rows) the threshold is not taken as given but calibrated
at ``fit`` so that under no drift the mean run length (rows until the first alarm) is
``ert``: ``n_bootstraps`` streams resampled from the reference rows run through the same
statistic, and the threshold is the one whose simulated mean run length is ``ert``
(bisection; streams of ``4 * ert`` rows, the few that outlast them counted with the
geometric tail ``E[RL] = E[min(RL, L)] / P(RL <= L)``). This is what makes the run length
right on skewed or discrete columns (counts, flags), where a fixed threshold in standard
deviations means very different false-alarm rates. ``extra["ert"]`` reports it.

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


def _ph_paths(z: np.ndarray, delta: float, min_rows: int) -> np.ndarray:
    """Max-over-features Page-Hinkley statistic after each row; z: (..., rows, features)."""
    up = np.cumsum(z - delta, axis=-2)
    down = np.cumsum(-z - delta, axis=-2)
    zero = np.zeros((*z.shape[:-2], 1, z.shape[-1]))
    g_up = up - np.minimum.accumulate(np.concatenate([zero, up], axis=-2), axis=-2)[..., 1:, :]
    g_down = down - np.minimum.accumulate(np.concatenate([zero, down], axis=-2), axis=-2)[..., 1:, :]
    g = np.maximum(g_up, g_down)
    g[..., : max(min_rows - 1, 0), :] = 0.0
    return g


def _mean_run_length(peaks: np.ndarray, threshold: float) -> float:
    """Mean rows to the first ``peak > threshold`` (peaks: streams x rows), with the
    geometric tail for streams that never cross."""
    over = peaks > threshold
    crossed = over.any(axis=1)
    first = np.where(crossed, over.argmax(axis=1) + 1, peaks.shape[1])
    share = crossed.mean()
    return float(first.mean() / share) if share > 0 else float("inf")


class PageHinkley(WindowedDetector):
    """Parameters: ``delta``, ``threshold``, ``min_rows`` (no alarm before), ``features``,
    ``ert`` (calibrate the threshold to this expected run time; default: use ``threshold``),
    ``n_bootstraps``, ``seed``."""

    name = "page_hinkley"

    def __init__(
        self,
        delta: float = 0.1,
        threshold: float = 25.0,
        min_rows: int = 30,
        features: Sequence[str] | None = None,
        ert: float | None = None,
        n_bootstraps: int = 300,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if float(threshold) <= 0 or float(delta) < 0:
            raise ValueError("threshold must be positive and delta non-negative")
        if ert is not None and float(ert) <= max(1, int(min_rows)):
            raise ValueError(f"ert must be greater than min_rows, got {ert!r}")
        if int(n_bootstraps) < 50:
            raise ValueError(f"n_bootstraps must be at least 50, got {n_bootstraps!r}")
        self.ert = float(ert) if ert is not None else None
        self.n_bootstraps = int(n_bootstraps)
        self.seed = int(seed)
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
        if self.ert is not None:
            self.threshold = self._calibrate(x)

    def _calibrate(self, x: np.ndarray) -> float:
        """The threshold whose simulated no-drift mean run length is ``ert`` rows."""
        assert self.ert is not None
        rng = np.random.default_rng(self.seed)
        length = int(4 * self.ert) + self.min_rows
        filled = np.where(np.isnan(x), self._mean, x)
        peaks = np.empty((self.n_bootstraps, length))
        chunk = max(1, 4_000_000 // (length * x.shape[1]))
        for start in range(0, self.n_bootstraps, chunk):
            b = min(chunk, self.n_bootstraps - start)
            z = (filled[rng.integers(0, len(x), size=(b, length))] - self._mean) / self._std
            peaks[start : start + b] = _ph_paths(z, self.delta, self.min_rows).max(axis=-1)
        # a running maximum: the first crossing of h is where the running max passes h
        peaks = np.maximum.accumulate(peaks, axis=1)
        lo, hi = 0.0, float(peaks.max()) + 1.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if _mean_run_length(peaks, mid) < self.ert:
                lo = mid
            else:
                hi = mid
        return hi

    def _result(self, window: ColumnBuffer) -> Detection:
        det = self._detection()
        det.threshold = self.threshold
        if window.n_rows == 0:
            return det
        cols = window_columns(window, self._fitted_features, det)
        if cols is None:
            return det
        z = (numeric_matrix(cols, self._fitted_features, fill=self._mean) - self._mean) / self._std
        g = _ph_paths(z, self.delta, self.min_rows)
        if self.ert is not None:
            det.extra["ert"] = self.ert
        alarms = g > self.threshold
        per_feature = alarms.any(axis=0)
        det.is_drift = bool(per_feature.any())
        det.distance = float(g.max())
        det.feature_distances = dict(zip(self._fitted_features, g.max(axis=0).tolist(), strict=True))
        det.feature_drift = dict(zip(self._fitted_features, per_feature.tolist(), strict=True))
        if det.is_drift:
            det.extra["alarm_at"] = int(np.flatnonzero(alarms.any(axis=1))[0])
        return det

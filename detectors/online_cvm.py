"""Online (sequential) Cramér-von Mises drift detector calibrated to an expected run time.

Like alibi-detect's ``CVMDriftOnline``: rows arrive one at a time; after each row the
last ``window_size`` rows of every numerical feature are compared with the reference by a
Cramér-von Mises distance (here the one-sample CVM distance of the window's reference-ECDF
values ``u = F_ref(x)`` to the uniform), and the largest over features is compared with a
time-dependent threshold. The thresholds are calibrated at ``fit`` by simulation from the
reference: ``n_bootstraps`` streams resampled from the reference rows are run through the
same statistic, and the threshold at each step is the ``1 - 1/ert`` quantile among the
streams that have not alarmed yet, so that under no drift the probability of a first
false alarm at any step is ``1/ert`` and the expected run time is about ``ert`` rows.
Beyond the simulated horizon the last threshold is used.

The rows since the last ``reset()`` are processed in order; ``extra["alarm_at"]`` is the
row of the first alarm and ``extra["ert"]`` the configured expected run time.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = OnlineCVMDrift(ert=1000, window_size=30, n_bootstraps=200).fit({"a": rng.normal(size=2000).tolist()})
>>> r = det.update({"a": np.r_[rng.normal(size=100), rng.normal(1.5, size=100)].tolist()}).result()
>>> r.is_drift, 100 <= r.extra["alarm_at"] < 140
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detectors._data import Columns
from detectors._windowed import WindowedDetector, median_filled_matrix, numeric_matrix, window_columns
from detectors.state import ColumnBuffer
from inferwatch.record import Detection

__all__ = ["OnlineCVMDrift"]


class OnlineCVMDrift(WindowedDetector):
    """Parameters: ``ert`` (expected run time in rows under no drift), ``window_size``,
    ``n_bootstraps``, ``horizon`` (simulated steps after the first full window; default
    ``3 * window_size``), ``features``, ``seed``."""

    name = "online_cvm"

    def __init__(
        self,
        ert: float = 500.0,
        window_size: int = 50,
        n_bootstraps: int = 300,
        horizon: int | None = None,
        features: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if float(ert) <= 1:
            raise ValueError(f"ert must be greater than 1, got {ert!r}")
        if int(window_size) < 2:
            raise ValueError(f"window_size must be at least 2, got {window_size!r}")
        if int(n_bootstraps) < 50:
            raise ValueError(f"n_bootstraps must be at least 50, got {n_bootstraps!r}")
        self.ert = float(ert)
        self.ws = int(window_size)
        self.n_bootstraps = int(n_bootstraps)
        self.horizon = int(horizon) if horizon is not None else 3 * int(window_size)
        self.features: list[str] | None = list(features) if features is not None else None
        self.seed = int(seed)
        self._sorted: list[np.ndarray] = []
        self._fill = np.empty(0)
        self._thresholds = np.empty(0)
        self._fitted_features: list[str] = []

    @property
    def fitted_features(self) -> list[str]:
        return list(self._fitted_features)

    @property
    def thresholds(self) -> np.ndarray:
        """Threshold per step after the first full window (calibrated at ``fit``)."""
        return self._thresholds.copy()

    def _u(self, x: np.ndarray) -> np.ndarray:
        """Reference mid-ECDF value of every cell (rows x features)."""
        u = np.empty_like(x)
        for j, s in enumerate(self._sorted):
            u[:, j] = (np.searchsorted(s, x[:, j], "left") + np.searchsorted(s, x[:, j], "right")) / (2.0 * len(s))
        return u

    def _stats(self, u: np.ndarray) -> np.ndarray:
        """Max-over-features CVM distance of each full window; u: (..., rows, features)."""
        w = self.ws
        win = np.sort(sliding_window_view(u, w, axis=-2), axis=-1)  # (..., steps, features, w)
        grid = (2 * np.arange(1, w + 1) - 1) / (2.0 * w)
        omega = 1.0 / (12 * w) + ((win - grid) ** 2).sum(-1)
        return omega.max(-1)

    def _fit(self, cols: Columns) -> None:
        feats = self._numeric_features(cols, self.features)
        x, self._fill = median_filled_matrix(cols, feats)
        self._fitted_features = feats
        self._sorted = [np.sort(x[:, j]) for j in range(x.shape[1])]
        rng = np.random.default_rng(self.seed)
        length = self.ws + self.horizon - 1
        u_ref = self._u(x)
        stats = np.empty((self.n_bootstraps, self.horizon))
        chunk = max(1, 2_000_000 // (self.horizon * len(feats) * self.ws))
        for start in range(0, self.n_bootstraps, chunk):
            b = min(chunk, self.n_bootstraps - start)
            idx = rng.integers(0, len(x), size=(b, length))
            stats[start : start + b] = self._stats(u_ref[idx])
        q = 1.0 - 1.0 / self.ert
        alive = np.ones(self.n_bootstraps, dtype=bool)
        thresholds = np.empty(self.horizon)
        for t in range(self.horizon):
            if alive.sum() < 20:
                thresholds[t:] = thresholds[t - 1]
                break
            thresholds[t] = np.quantile(stats[alive, t], q)
            alive &= stats[:, t] <= thresholds[t]
        self._thresholds = thresholds

    def _result(self, window: ColumnBuffer) -> Detection:
        det = self._detection()
        det.extra["ert"] = self.ert
        det.threshold = float(self._thresholds[-1])
        if window.n_rows < self.ws:
            det.is_drift = False if window.n_rows else None
            return det
        cols = window_columns(window, self._fitted_features, det)
        if cols is None:
            det.is_drift = None
            return det
        x = numeric_matrix(cols, self._fitted_features, fill=self._fill)
        s = self._stats(self._u(x))
        thr = np.r_[self._thresholds, np.full(max(0, len(s) - len(self._thresholds)), self._thresholds[-1])][: len(s)]
        over = np.flatnonzero(s > thr)
        det.is_drift = bool(len(over))
        det.distance = float(s.max())
        if len(over):
            det.extra["alarm_at"] = int(over[0] + self.ws - 1)
            det.threshold = float(thr[over[0]])
        return det

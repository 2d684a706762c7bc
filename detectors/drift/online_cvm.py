"""Online (sequential) Cramér-von Mises drift detector calibrated to an expected run time.

Like alibi-detect's ``CVMDriftOnline``: rows arrive one at a time; after each row the
last ``window_size`` rows of every numerical feature are compared with the reference by a
Cramér-von Mises distance (here the one-sample CVM distance of the window's reference-ECDF
values ``u = F_ref(x)`` to the uniform), and the largest over features is compared with a
time-dependent threshold. The thresholds are calibrated at ``fit`` by simulation from the
reference: ``n_bootstraps`` streams resampled from the reference rows are run through the
same statistic, and the thresholds are set (:func:`calibrate_thresholds`) so that a stream
that has not alarmed yet alarms at the next step with probability ``1/ert``: under no drift
the run length is geometric and its mean is ``ert`` rows (measured: 0.87-1.07 x ERT over
seeds and settings; ``n_bootstraps`` should be well above ``ert / 10``). One threshold per
step while the windows still overlap the stream's start, then one stationary threshold,
which also serves beyond the simulated horizon.

Discrete data: with tied reference values the reference-ECDF value of a row is an atom,
the statistic takes few values and no threshold gives the target hazard (a binary flag
stream ran about 8 x ERT before alarming). So a value that occurs at least twice in the
reference gets the randomised probability integral transform ``u = (F(x-) + V (F(x) -
F(x-)))`` with ``V`` uniform (seeded by ``seed`` and the row's position since ``reset()``,
so results are reproducible), which is exactly uniform under no drift, in the simulated
streams and in the monitored one alike; other values keep the mid-ECDF value as before.

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

import hashlib
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from detectors.common._data import Columns
from detectors.common._windowed import WindowedDetector, median_filled_matrix, numeric_matrix, window_columns
from detectors.common.state import ColumnBuffer
from inferwatch.record import Detection

__all__ = ["OnlineCVMDrift", "calibrate_thresholds"]


def _hazard(stats: np.ndarray, threshold: float) -> float:
    """Fraction of surviving stream-steps that alarm at ``threshold`` (stats: streams x steps)."""
    over = stats > threshold
    first = np.where(over.any(1), over.argmax(1), stats.shape[1])
    alarms = int((first < stats.shape[1]).sum())
    at_risk = int(np.minimum(first + 1, stats.shape[1]).sum())
    return alarms / max(at_risk, 1)


def calibrate_thresholds(stats: np.ndarray, ert: float, warmup: int) -> np.ndarray:
    """Thresholds per step from simulated no-drift streams (``stats``: streams x steps) so that
    a stream that has not alarmed yet alarms at the next step with probability ``1/ert`` (so
    the run length is geometric with mean ``ert``).

    The first ``warmup`` steps (while the sliding windows still overlap the stream's start, the
    statistic's law among survivors changes) get one threshold each: the ``1 - 1/ert``
    quantile of the survivors, taken with the unbiased plotting position (``weibull``: a fresh
    draw exceeds it with probability ``1/ert``, where the default interpolation would let
    about one and a half times as many through with a few hundred streams). After that the
    law is stationary and one threshold serves every later step; it is found by bisection so
    that the hazard pooled over all remaining survivor-steps is ``1/ert``, which uses every
    simulated step instead of a few hundred samples at the last one.
    """
    target = 1.0 / ert
    n, horizon = stats.shape
    warmup = min(warmup, horizon)
    thresholds = np.empty(horizon)
    alive = np.ones(n, dtype=bool)
    for t in range(warmup):
        if t and alive.sum() < 20:
            thresholds[t:warmup] = thresholds[t - 1]
            alive &= (stats[:, t:warmup] <= thresholds[t - 1]).all(1)
            break
        thresholds[t] = np.quantile(stats[alive, t], 1.0 - target, method="weibull")
        alive &= stats[:, t] <= thresholds[t]
    if warmup == horizon:
        return thresholds
    rest = stats[alive, warmup:]
    if len(rest) < 20:
        thresholds[warmup:] = thresholds[warmup - 1]
        return thresholds
    lo, hi = float(rest.min()), float(rest.max())
    if _hazard(rest, lo) <= target:
        thresholds[warmup:] = lo
        return thresholds
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _hazard(rest, mid) > target:
            lo = mid
        else:
            hi = mid
    thresholds[warmup:] = hi
    return thresholds


def _chained_uniforms(x: np.ndarray, seed: int) -> np.ndarray:
    """Uniforms (rows x features): row ``t``'s from a hash of ``seed`` and rows ``0..t-1``."""
    rows, k = x.shape
    out = np.empty((rows, k))
    state = hashlib.blake2b(f"online_cvm:{seed}".encode(), digest_size=32).digest()
    data = np.ascontiguousarray(x, dtype=np.float64)
    blocks = (k + 7) // 8
    for t in range(rows):
        raw = b"".join(hashlib.blake2b(state + bytes([b]), digest_size=64).digest() for b in range(blocks))
        out[t] = (np.frombuffer(raw, dtype="<u8")[:k] >> np.uint64(11)) * (1.0 / 2**53)
        state = hashlib.blake2b(state + data[t].tobytes(), digest_size=32).digest()
    return out


class OnlineCVMDrift(WindowedDetector):
    """Parameters: ``ert`` (expected run time in rows under no drift), ``window_size``,
    ``n_bootstraps``, ``horizon`` (simulated steps after the first full window; default
    ``3 * window_size``), ``features``, ``seed``."""

    name = "online_cvm"

    def __init__(
        self,
        ert: float = 500.0,
        window_size: int = 50,
        n_bootstraps: int = 1000,
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

    def _bounds(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per cell (rows x features): the reference counts below and at-or-below it."""
        lo = np.empty_like(x)
        hi = np.empty_like(x)
        for j, s in enumerate(self._sorted):
            lo[:, j] = np.searchsorted(s, x[:, j], "left")
            hi[:, j] = np.searchsorted(s, x[:, j], "right")
        return lo, hi

    def _u_from(self, lo: np.ndarray, hi: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Mid-ECDF value, randomised (``v`` uniform) where the reference repeats the value."""
        tied = hi - lo >= 2
        u = (lo + hi) / 2.0
        if tied.any():
            u = np.where(tied, lo + v * (hi - lo), u)
        return u / len(self._sorted[0])

    def _u(self, x: np.ndarray) -> np.ndarray:
        """Reference ECDF value of every cell of the window (rows x features)."""
        lo, hi = self._bounds(x)
        if not (hi - lo >= 2).any():
            return self._u_from(lo, hi, lo)
        return self._u_from(lo, hi, _chained_uniforms(x, self.seed))

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
        lo, hi = self._bounds(x)
        stats = np.empty((self.n_bootstraps, self.horizon))
        chunk = max(1, 2_000_000 // (self.horizon * len(feats) * self.ws))
        for start in range(0, self.n_bootstraps, chunk):
            b = min(chunk, self.n_bootstraps - start)
            idx = rng.integers(0, len(x), size=(b, length))
            stats[start : start + b] = self._stats(self._u_from(lo[idx], hi[idx], rng.random(lo[idx].shape)))
        self._thresholds = calibrate_thresholds(stats, self.ert, self.ws)

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

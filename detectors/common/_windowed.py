"""Shared base of detectors that keep the current window's rows (private).

Subclasses implement ``_fit(cols)`` and ``_result(window) -> Detection``; this base does
input conversion, the mergeable window (:class:`~detectors.common.state.ColumnBuffer`),
``reset``/``merge`` and the fitted-reference check.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Self

import numpy as np

from detectors.common._data import Columns, Data, as_float, columns
from detectors.common._univariate import MergeableWindow, fingerprint
from detectors.common.state import ColumnBuffer
from inferwatch.errors import DetectorError
from inferwatch.record import Detection, Kind

__all__ = ["ReferenceSampleDetector", "WindowedDetector", "median_filled_matrix", "numeric_columns", "numeric_matrix", "subsample_rows", "window_columns"]


def numeric_matrix(cols: Columns, features: Sequence[str], fill: np.ndarray | None = None) -> np.ndarray:
    """Rows x features float matrix; ``nan`` cells replaced by ``fill`` (per feature)."""
    n = len(next(iter(cols.values()))) if cols else 0
    out = np.empty((n, len(features)))
    for j, f in enumerate(features):
        col = cols.get(f)
        v = as_float(col) if col is not None else None
        if v is None:
            raise DetectorError(f"feature {f!r} is {'missing' if col is None else 'not numerical'}")
        out[:, j] = v
    if fill is not None:
        bad = np.isnan(out)
        if bad.any():
            out[bad] = np.broadcast_to(fill, out.shape)[bad]
    return out


def numeric_columns(cols: Columns) -> list[str]:
    """Names of the numerical columns."""
    return [k for k, v in cols.items() if v.dtype.kind in "iuf"]


def median_filled_matrix(cols: Columns, features: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`numeric_matrix` with ``nan`` cells replaced by the feature's median (0 for a
    feature with no value), and those medians."""
    med = np.nanmedian(numeric_matrix(cols, features), axis=0)
    fill = np.where(np.isnan(med), 0.0, med)
    return numeric_matrix(cols, features, fill=fill), fill


def subsample_rows(x: np.ndarray, most: int, seed: int) -> np.ndarray:
    """``x``, or ``most`` of its rows drawn at random (``seed``) if it has more, in their order."""
    if len(x) > most:
        rng = np.random.default_rng(seed)
        x = x[np.sort(rng.choice(len(x), most, replace=False))]
    return x


def window_columns(window: ColumnBuffer, features: Sequence[str], det: Detection) -> Columns | None:
    """The window's columns; ``None`` if one of ``features`` is absent (listed in
    ``det.extra["missing_features"]``)."""
    cols = {f: window.column(f) for f in window.names()}
    missing = [f for f in features if f not in cols]
    if missing:
        det.extra["missing_features"] = missing
        return None
    return cols


class WindowedDetector(MergeableWindow):
    """Base of detectors whose window is a :class:`ColumnBuffer`."""

    name: str = "detector"
    kind: Kind = "drift"

    def __init__(self) -> None:
        self._fitted = False
        self._ref_key = ""
        self._window = ColumnBuffer.zero()

    @abc.abstractmethod
    def _fit(self, cols: Columns) -> None:
        """Learn from the reference columns."""

    @abc.abstractmethod
    def _result(self, window: ColumnBuffer) -> Detection:
        """Test the window."""

    def fit(self, reference: Data) -> Self:
        cols = columns(reference)
        if not cols or not len(next(iter(cols.values()))):
            raise DetectorError(f"{self.name}: empty reference")
        self._fit(cols)
        self._ref_key = fingerprint(cols)
        self._fitted = True
        self._window = ColumnBuffer.zero()
        return self

    def _numeric_features(self, cols: Columns, features: list[str] | None) -> list[str]:
        """``features`` if given (and not empty), else the reference's numerical columns."""
        feats = features or numeric_columns(cols)
        if not feats:
            raise DetectorError(f"{self.name}: no numerical feature in the reference")
        return feats

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise DetectorError(f"{self.name}: call fit(reference) first")

    def update(self, batch: Data, ids: Sequence[str] | None = None) -> Self:
        self._check_fitted()
        self._window.append(batch, ids=ids)
        return self

    def result(self) -> Detection:
        self._check_fitted()
        return self._result(self._window)

    def _detection(self) -> Detection:
        return Detection(detector=self.name, kind=self.kind, model="", window_size=self._window.n_rows)


class ReferenceSampleDetector(WindowedDetector):
    """Base of the multivariate tests that keep the reference as a matrix: its numerical
    ``features`` (default: all), missing cells as the reference median, at most
    ``max_reference`` rows (a seeded random subsample). Subclasses learn more from that matrix
    in :meth:`_fit_reference` and read a window with :meth:`_window_matrix`."""

    def __init__(self, features: Sequence[str] | None, max_reference: int, seed: int) -> None:
        super().__init__()
        self.features: list[str] | None = list(features) if features is not None else None
        self.max_reference = int(max_reference)
        self.seed = int(seed)
        self._x_ref = np.empty((0, 0))
        self._fitted_features: list[str] = []
        self._median = np.empty(0)

    @property
    def fitted_features(self) -> list[str]:
        return list(self._fitted_features)

    def _fit(self, cols: Columns) -> None:
        feats = self._numeric_features(cols, self.features)
        x, self._median = median_filled_matrix(cols, feats)
        self._x_ref = subsample_rows(x, self.max_reference, self.seed)
        self._fitted_features = feats
        self._fit_reference(self._x_ref)

    def _fit_reference(self, x: np.ndarray) -> None:
        """What more a subclass learns from the reference matrix."""

    def _window_matrix(self, window: ColumnBuffer, det: Detection) -> np.ndarray | None:
        """The window's rows x fitted features (missing cells: the reference median); ``None``
        when a feature is absent (listed in ``det``)."""
        cols = window_columns(window, self._fitted_features, det)
        return None if cols is None else numeric_matrix(cols, self._fitted_features, fill=self._median)

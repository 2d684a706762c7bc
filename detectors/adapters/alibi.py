"""Run any detector saved with alibi-detect's ``save_detector`` on inferwatch windows.

``AlibiDetector(path)`` loads the detector with ``alibi_detect.saving.load_detector``
(alibi-detect is optional: without it construction raises
:class:`~inferwatch.errors.MissingExtraError` naming ``pip install 'inferwatch[alibi]'``).
``fit(reference)`` only fixes the column order (``features`` or the reference's numerical
columns): the saved detector carries its own reference. ``result()`` calls
``predict`` on the window as a float matrix and maps alibi's ``{'meta', 'data'}`` dict to a
:class:`~inferwatch.record.Detection`: drift detectors give ``is_drift``, ``p_value`` (the
smallest per-feature p-value for feature-wise detectors, with all of them in
``feature_p_values``), ``distance`` and ``threshold``; outlier detectors give
``is_outlier`` and per-row ``scores``. Pickling keeps the path and reloads on unpickle.

Note alibi-detect's licence (Business Source License 1.1 since 0.11.5).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detectors.common._data import Columns
from detectors.common._windowed import WindowedDetector, numeric_matrix, window_columns
from detectors.common.state import ColumnBuffer
from inferwatch.errors import DetectorError, require
from inferwatch.record import Detection, Kind

__all__ = ["AlibiDetector"]


def _load(path: Path) -> Any:
    require("alibi_detect", "alibi")
    saving = require("alibi_detect.saving", "alibi")
    try:
        return saving.load_detector(str(path))
    except Exception as exc:  # alibi raises many kinds; report one
        raise DetectorError(f"cannot load alibi-detect detector from {str(path)!r}: {exc}") from exc


def _floats(v: Any) -> np.ndarray:
    return np.atleast_1d(np.asarray(v, dtype=np.float64))


class AlibiDetector(WindowedDetector):
    """Parameters: ``path`` (a ``save_detector`` directory), ``features``, ``name``."""

    def __init__(self, path: str | os.PathLike[str], features: Sequence[str] | None = None, name: str | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.features: list[str] | None = list(features) if features is not None else None
        self._detector = _load(self.path)
        meta = getattr(self._detector, "meta", {}) or {}
        self.name = name or f"alibi_{str(meta.get('name', 'detector')).lower()}"
        self.kind: Kind = "outlier" if meta.get("detector_type") == "outlier" else "drift"
        self._fitted_features: list[str] = []

    @property
    def fitted_features(self) -> list[str]:
        return list(self._fitted_features)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_detector"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._detector = _load(self.path)

    def _fit(self, cols: Columns) -> None:
        feats = self._numeric_features(cols, self.features)
        missing = [f for f in feats if f not in cols]
        if missing:
            raise DetectorError(f"{self.name}: features {missing} not in the reference")
        self._fitted_features = feats

    def _result(self, window: ColumnBuffer) -> Detection:
        det = self._detection()
        if window.n_rows == 0:
            return det
        cols = window_columns(window, self._fitted_features, det)
        if cols is None:
            return det
        x = numeric_matrix(cols, self._fitted_features)
        out = self._detector.predict(x)
        data = out.get("data", {})
        det.extra["alibi_meta"] = {k: v for k, v in out.get("meta", {}).items() if isinstance(v, (str, int, float, bool))}
        if self.kind == "outlier":
            flags = _floats(data.get("is_outlier", []))
            scores = data.get("instance_score")
            det.is_outlier = bool(flags.any())
            det.row_ids = window.row_ids()
            if scores is not None:
                det.scores = _floats(scores).tolist()
            det.extra["outliers"] = np.flatnonzero(flags).tolist()
            return det
        det.is_drift = bool(np.asarray(data.get("is_drift")).any())
        if data.get("threshold") is not None:
            thr = _floats(data["threshold"])
            det.threshold = float(thr.min()) if thr.size else None
        if data.get("p_val") is not None:
            p = _floats(data["p_val"])
            det.p_value = float(p.min())
            if p.size == len(self._fitted_features) and p.size > 1:
                det.feature_p_values = dict(zip(self._fitted_features, p.tolist(), strict=True))
        if data.get("distance") is not None:
            d = _floats(data["distance"])
            det.distance = float(d.max())
            if d.size == len(self._fitted_features) and d.size > 1:
                det.feature_distances = dict(zip(self._fitted_features, d.tolist(), strict=True))
        return det

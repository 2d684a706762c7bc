"""One contract test over every detector class (river-style checks).

For each: fit / update / result give a typed Detection; reset keeps the reference; the
detector pickles; merging partial windows equals the whole window (the monoid law, with
the empty window as identity); misuse raises DetectorError.
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest

import detectors
from detectors.base import Detector
from detectors.common.state import ColumnBuffer
from inferwatch.errors import DetectorError
from inferwatch.record import Detection


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet([5, 2, 1], size=n)
    return pd.DataFrame(
        {
            "a": rng.normal(shift, size=n),
            "b": rng.normal(size=n) * (1 + shift),
            "c": rng.exponential(size=n),
            "cat": rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2]),
            "flag": (rng.random(n) < 0.2 + 0.1 * shift).astype(int),
            "p0": p[:, 0],
            "p1": p[:, 1],
            "p2": p[:, 2],
        }
    )


NUM = ["a", "b", "c"]
CASES: dict[str, dict[str, Any]] = {
    "KSDrift": {"features": NUM},
    "CVMDrift": {"features": NUM},
    "AndersonDrift": {"features": NUM},
    "ChiSquareDrift": {"features": ["cat"]},
    "FETDrift": {"features": ["flag"]},
    "TabularDrift": {"features": ["a", "b", "cat", "flag"]},
    "PSIDrift": {"features": ["a", "cat"]},
    "JSDrift": {"features": ["a", "cat"]},
    "HellingerDrift": {"features": ["a", "cat"]},
    "WassersteinDrift": {"features": NUM},
    "MMDDrift": {"features": NUM, "n_permutations": 50},
    "ClassifierDrift": {"features": NUM, "n_folds": 3},
    "OnlineCVMDrift": {"features": NUM, "window_size": 20, "n_bootstraps": 100},
    "PageHinkley": {"features": NUM},
    "PredictionDrift": {"features": ["cat"]},
    "ConfidenceDrift": {"features": ["p0", "p1", "p2"]},
    "MahalanobisOutlier": {"features": NUM},
    "IsolationForestOutlier": {"features": NUM, "n_estimators": 20},
    "ZScoreOutlier": {"features": NUM},
    "IQROutlier": {"features": NUM},
    "DataQuality": {},
}


def test_every_exported_detector_is_covered() -> None:
    classes = {
        name
        for name in detectors.__all__
        if isinstance(getattr(detectors, name), type)
        and name not in {"Detector", "ReferenceStore", "ReferenceInfo", "Monitor", "DetectorSpec", "CountWindow",
                         "TimeWindow", "ClosedWindow", "ColumnBuffer"}
    }
    assert classes == set(CASES)


def test_public_surface_is_pinned() -> None:
    assert sorted(detectors.__all__) == detectors.__all__
    assert {"KSDrift", "Monitor", "build_monitor", "ReferenceStore", "Detector"} <= set(detectors.__all__)


def _key(d: Detection) -> dict[str, Any]:
    out = dataclasses.asdict(d)
    out.pop("timestamp")
    return out


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _frame(1500, 0), _frame(160, 1, shift=0.6)


@pytest.mark.parametrize("cls_name", sorted(CASES))
def test_contract(cls_name: str, data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref, window = data
    cls = getattr(detectors, cls_name)
    det = cls(**CASES[cls_name])
    assert isinstance(det, Detector)
    assert isinstance(det.name, str) and det.kind in ("drift", "outlier", "quality", "performance")
    with pytest.raises(DetectorError):
        cls(**CASES[cls_name]).update(window)

    assert det.fit(ref) is det
    assert det.update(window.iloc[:70]) is det
    assert det.update(window.iloc[70:].to_dict(orient="list")) is det  # a Table works too
    whole = det.result()
    assert isinstance(whole, Detection)
    assert whole.detector == det.name and whole.kind == det.kind
    assert whole.window_size == len(window)
    assert (whole.is_drift is not None) or (whole.is_outlier is not None)

    # pickle round trip keeps reference and window
    clone = pickle.loads(pickle.dumps(det))
    assert _key(clone.result()) == _key(whole)

    # monoid: merge of partial windows == whole window; the empty window is the identity
    left = cls(**CASES[cls_name]).fit(ref).update(window.iloc[:55])
    right = cls(**CASES[cls_name]).fit(ref).update(window.iloc[55:])
    merged = left.merge(right)
    assert _key(merged.result()) == _key(whole)
    assert left.window_size == 55  # merge returns a new detector
    empty = cls(**CASES[cls_name]).fit(ref)
    assert _key(empty.merge(det).result()) == _key(whole)
    assert _key(det.merge(empty).result()) == _key(whole)

    # reset keeps the reference
    assert det.reset() is det and det.window_size == 0
    again = det.update(window).result()
    assert _key(again) == _key(whole)

    with pytest.raises(DetectorError):
        det.merge(cls(**CASES[cls_name]).fit(_frame(300, 9)))


def test_column_buffer_monoid_laws() -> None:
    a = ColumnBuffer.zero().append({"x": [1.0, 2.0], "s": ["a", "b"]})
    b = ColumnBuffer.zero().append({"x": [3.0]})
    c = ColumnBuffer.zero().append({"s": ["c"], "x": [None]})
    left = a.merge(b).merge(c)
    right = a.merge(b.merge(c))
    for name in ("x", "s"):
        np.testing.assert_array_equal(left.column(name).astype(str), right.column(name).astype(str))
    assert left.n_rows == 4
    assert ColumnBuffer.zero().merge(a).column("x").tolist() == a.column("x").tolist()
    assert left.column("s").tolist() == ["a", "b", None, "c"]

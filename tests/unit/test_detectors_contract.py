"""One contract test over every registered detector type (river-style checks).

The protocol is :class:`inferwatch.detector.Detector`; the types are the wiring's registry,
:data:`inferwatch.wiring.DETECTORS` (what a ``detectors:`` entry's ``type`` may name). For
each: fit / update / result give a typed Detection; reset keeps the reference; the detector
pickles; merging partial windows equals the whole window (the monoid law, with the empty
window as identity); misuse raises DetectorError. The laws are
:func:`tests.contracts.check_detector_contract`, which a new detector's test calls too
(tests/unit/test_recipes.py).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

import detectors
import detectors.performance
from detectors.common.state import ColumnBuffer
from inferwatch.wiring import DETECTORS
from tests.contracts import check_detector_contract
from tests.optional import require


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet([5, 2, 1], size=n)
    a = rng.normal(shift, size=n)
    return pd.DataFrame(
        {
            # performance: a classifier's label and its true class drawn from its probabilities, a
            # regressor's target, and the live version each row came from
            "label": p.argmax(axis=1),
            "truth": (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1).clip(0, 2),
            "target": a + rng.normal(size=n) * (0.5 + shift),
            "variant": rng.choice(["v1", "v2"], n),
            "a": a,
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
CASES: dict[str, dict[str, Any]] = {  # registered type -> keyword arguments for the contract's data
    "ks": {"features": NUM},
    "cvm": {"features": NUM},
    "anderson": {"features": NUM},
    "chi2": {"features": ["cat"]},
    "fet": {"features": ["flag"]},
    "tabular": {"features": ["a", "b", "cat", "flag"]},
    "psi": {"features": ["a", "cat"]},
    "js": {"features": ["a", "cat"]},
    "hellinger": {"features": ["a", "cat"]},
    "wasserstein": {"features": NUM},
    "mmd": {"features": NUM, "n_permutations": 50},
    "classifier": {"features": NUM, "n_folds": 3},
    "online_cvm": {"features": NUM, "window_size": 20, "n_bootstraps": 100},
    "page_hinkley": {"features": NUM},
    "prediction": {"features": ["cat"]},
    "confidence": {"features": ["p0", "p1", "p2"]},
    "mahalanobis": {"features": NUM},
    "isolation_forest": {"features": NUM, "n_estimators": 20},
    "zscore": {"features": NUM},
    "iqr": {"features": NUM},
    "quality": {},
    "alibi": {"features": NUM},  # + the path of a detector saved with alibi-detect (fixture below)
    "realized": {"prediction": "label", "scores": ["p0", "p1", "p2"], "min_labelled": 10},
    "cbpe": {"scores": ["p0", "p1", "p2"], "prediction": "label", "min_rows": 50},
    "dle": {"features": ["b", "c"], "prediction": "a", "truth": "target", "min_rows": 50},
    "variant_drift": {"features": ["a", "cat"], "prediction": "label", "min_rows": 20},
}


def test_every_registered_type_has_a_case() -> None:
    assert set(DETECTORS.names()) == set(CASES)


def test_every_exported_detector_is_registered() -> None:
    classes = {
        getattr(detectors, name)
        for name in detectors.__all__
        if isinstance(getattr(detectors, name), type)
        and name not in {"Detector", "ReferenceStore", "ReferenceInfo", "Monitor", "DetectorSpec", "CountWindow",
                         "TimeWindow", "ClosedWindow", "ColumnBuffer"}
    }
    registered = {DETECTORS.get(n).load() for n in DETECTORS}
    assert len(classes) == 21 and classes <= registered
    # the performance detectors too; PerformanceTracker is the engine that revises windows of
    # prediction time as late labels come (detect.performance), not a detector
    performance = {getattr(detectors.performance, n) for n in detectors.performance.__all__} - {
        detectors.performance.PerformanceTracker}
    assert len(performance) == 4 and performance <= registered


def test_public_surface_is_pinned() -> None:
    assert sorted(detectors.__all__) == detectors.__all__
    assert {"KSDrift", "Monitor", "build_monitor", "ReferenceStore", "Detector"} <= set(detectors.__all__)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _frame(1500, 0), _frame(160, 1, shift=0.6)


@pytest.fixture(scope="module")
def alibi_path(tmp_path_factory: pytest.TempPathFactory, data: tuple[pd.DataFrame, pd.DataFrame]) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cd = require("alibi_detect.cd", extra="alibi")
        saving = require("alibi_detect.saving", extra="alibi")
        path = tmp_path_factory.mktemp("alibi") / "ks"
        saving.save_detector(cd.KSDrift(data[0][NUM].to_numpy(), p_val=0.05), str(path))
    return str(path)


@pytest.mark.parametrize("type_name", DETECTORS.names())
def test_contract(type_name: str, data: tuple[pd.DataFrame, pd.DataFrame], request: pytest.FixtureRequest) -> None:
    ref, window = data
    kwargs = dict(CASES[type_name])
    if type_name == "alibi":
        kwargs["path"] = request.getfixturevalue("alibi_path")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # alibi-detect and tensorflow warn on import
        check_detector_contract(DETECTORS.get(type_name).load(), kwargs, ref, window, _frame(300, 9))


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

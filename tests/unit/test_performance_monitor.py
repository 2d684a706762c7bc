"""The ground-truth join on records: predictions and feedback in any order, partly missing,
replayed after a restart; figures per window equal scikit-learn's, and a degraded version
fires the variants comparison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from detectors.performance.monitor import build_performance_monitor
from inferwatch.errors import ConfigError
from inferwatch.record import InferenceRecord

T0 = datetime(2026, 5, 1, tzinfo=UTC)
CONFIG = {"window_seconds": 3600, "classes": [0, 1], "scores": "proba", "prediction": "label",
          "reference_metrics": {"accuracy": 0.9}, "max_drop": 0.05, "min_labelled": 50, "baseline": "v1"}


def dataset(seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 4000
    version = np.where(rng.random(n) < 0.5, "v1", "v2")
    y = rng.integers(0, 2, n)
    right = rng.random(n) < np.where(version == "v1", 0.9, 0.78)  # v2 is degraded
    pred = np.where(right, y, 1 - y)
    proba = np.clip(np.where(pred == 1, 0.5, 0.0) + rng.random(n) * 0.5, 0, 1).round(3)
    ts = [T0 + timedelta(seconds=float(s)) for s in np.sort(rng.uniform(0, 2 * 3600, n))]
    return rng, version, y, pred, proba, ts


def predictions(version, pred, proba, ts, idx):
    return [InferenceRecord(id=f"q{i}", model="churn", version=str(version[i]), timestamp=ts[i], part="response",
                            outputs={"label": [int(pred[i])], "proba": [float(proba[i])]}) for i in idx]


def feedback(y, idx, missing=()):
    return [InferenceRecord(id=f"q{i}", model="churn", part="feedback",
                            truth={"truth": [None if i in missing else int(y[i])]}) for i in idx]


def test_join_equals_sklearn_through_a_restart_and_a_replay() -> None:
    rng, version, y, pred, proba, ts = dataset()
    n = len(y)
    missing = set(rng.choice(n, n // 5, replace=False).tolist())  # a fifth never labelled
    early = rng.choice(n, n // 10, replace=False)  # labels before their prediction
    mon = build_performance_monitor(CONFIG)
    mon.process(feedback(y, early, missing))
    mon.process(predictions(version, pred, proba, ts, range(n)))
    late = rng.permutation(np.setdiff1d(np.arange(n), early))
    half = len(late) // 2
    mon.process(feedback(y, late[:half], missing))
    state = mon.snapshot()
    mon = build_performance_monitor(CONFIG)  # a restart
    mon.restore(state)
    mon.process(feedback(y, late[: half // 3], missing))  # replayed from an older offset
    mon.process(predictions(version, pred, proba, ts, range(0, n, 7)))
    dets = mon.process(feedback(y, late[half:], missing))
    windows = {(d.version, d.window_start): d for d in dets if d.detector == "performance"}
    assert len(windows) == 4
    slot = np.array([int((t - T0).total_seconds() // 3600) for t in ts])
    labelled = np.array([i not in missing for i in range(n)])
    for (v, start), d in windows.items():
        rows = (version == v) & (slot == int((start - T0).total_seconds() // 3600))
        lab = rows & labelled
        assert d.window_size == rows.sum() and d.extra["labelled"] == lab.sum()
        assert d.extra["metrics"]["accuracy"] == pytest.approx(accuracy_score(y[lab], pred[lab]), rel=1e-12)
        assert d.extra["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(y[lab], proba[lab]), rel=1e-9)
        assert d.is_drift is (v == "v2")  # 0.78 vs the reference's 0.9, max_drop 0.05
    variants = [d for d in dets if d.detector == "variants"]
    assert len(variants) == 2 and all(d.is_drift for d in variants)
    for d in variants:
        acc = d.extra["variants"]["v2"]["accuracy"]
        assert d.extra["baseline"] == "v1" and acc["ci"][1] < 0 and "accuracy" in d.extra["fired"]["v2"]
    assert mon.tracker.waiting == 0


def test_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="classes"):
        build_performance_monitor({})
    with pytest.raises(ConfigError, match="task"):
        build_performance_monitor({"task": "ranking"})


def test_models_with_settings_of_their_own_and_a_restart():
    from sklearn.metrics import mean_absolute_error

    mon = build_performance_monitor({**CONFIG, "per_model": {"sales": {"task": "regression", "prediction": "forecast",
                                                                       "scores": None, "classes": None}}})
    recs = [InferenceRecord(id="s1", model="sales", timestamp=T0, outputs={"forecast": [10.0, 20.0]}),
            InferenceRecord(id="c1", model="churn", version="v1", timestamp=T0,
                            outputs={"label": [1, 0], "proba": [0.9, 0.2]})]
    mon.process(recs)
    state = mon.snapshot()
    mon = build_performance_monitor({**CONFIG, "per_model": {"sales": {"task": "regression", "prediction": "forecast",
                                                                       "scores": None, "classes": None}}})
    mon.restore(state)
    dets = mon.process([InferenceRecord(id="s1", model="sales", part="feedback", truth={"y": [12.0, 15.0]}),
                        InferenceRecord(id="c1", model="churn", part="feedback", truth={"y": [1, 1]})])
    by_model = {d.model: d for d in dets if d.detector == "performance"}
    assert by_model["sales"].extra["metrics"]["mae"] == pytest.approx(mean_absolute_error([12, 15], [10, 20]))
    assert by_model["churn"].extra["metrics"]["accuracy"] == 0.5

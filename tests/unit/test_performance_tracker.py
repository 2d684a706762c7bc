"""Windows of prediction time: late, early, missing and replayed labels, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from detectors.performance import RealizedPerformance
from detectors.performance.tracker import PerformanceTracker

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def proto() -> RealizedPerformance:
    return RealizedPerformance(scores="p", min_labelled=1).fit({"prediction": [0, 1], "truth": [0, 1]})


def test_late_out_of_order_partial_labels_and_a_restart_match_sklearn_per_window() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    ts = [T0 + timedelta(seconds=float(s)) for s in np.sort(rng.uniform(0, 4 * 3600, n))]
    p = rng.random(n)
    y = (rng.random(n) < p).astype(int)
    pred = (p > 0.5).astype(int)
    ids = [f"req{i // 3}-{i % 3}" for i in range(n)]  # batch requests of three rows
    labelled = rng.random(n) < 0.8  # a fifth never gets a label
    early = labelled & (rng.random(n) < 0.1)  # a tenth of the labels come before the prediction

    tracker = PerformanceTracker(proto(), seconds=3600)
    tracker.labels([ids[i] for i in np.flatnonzero(early)], y[early].tolist())
    for i in range(0, n, 3):  # requests in time order
        tracker.predictions("m", "v1", ts[i], {"prediction": pred[i:i + 3],
                                               "p": p[i:i + 3]}, ids=ids[i:i + 3])
    revised = tracker.revised()
    assert len(revised) == 4
    # a restart halfway through the late labels: snapshot, new tracker, restore
    late = rng.permutation(np.flatnonzero(labelled & ~early))
    half = len(late) // 2
    tracker.labels([ids[i] for i in late[:half]], y[late[:half]].tolist())
    snap = tracker.snapshot()
    tracker = PerformanceTracker(proto(), seconds=3600)
    tracker.restore(snap)
    # the log is replayed from an older offset: the first labels and some predictions again
    tracker.labels([ids[i] for i in late[: half // 2]], y[late[: half // 2]].tolist())
    tracker.predictions("m", "v1", ts[0], {"prediction": pred[0:3], "p": p[0:3]}, ids=ids[0:3])
    tracker.predictions("m", "v1", ts[-1], {"prediction": pred[3:6], "p": p[3:6]}, ids=ids[3:6])  # re-sent later
    tracker.labels([ids[i] for i in late[half:]], y[late[half:]].tolist())
    by_window = {d.window_start: d for d in tracker.revised()}
    assert len(by_window) == 4
    slot = np.array([int((ts[i - i % 3] - T0).total_seconds() // 3600) for i in range(n)])  # request time
    for w in range(4):
        d = by_window[T0 + timedelta(hours=w)]
        rows = slot == w
        lab = rows & labelled
        assert d.window_size == rows.sum()
        assert d.extra["labelled"] == lab.sum()
        assert d.extra["labelled_share"] == pytest.approx(lab.sum() / rows.sum())
        assert d.extra["metrics"]["accuracy"] == pytest.approx(accuracy_score(y[lab], pred[lab]), rel=1e-12)
        assert d.extra["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(y[lab], p[lab]), rel=1e-9)
        assert d.model == "m" and d.version == "v1" and d.window_end - d.window_start == timedelta(hours=1)
        assert d.id == next(r for r in revised if r.window_start == d.window_start).id  # same window, same id
    assert tracker.waiting == 0 and tracker.revised() == []


def test_labels_waiting_are_bounded_and_counted() -> None:
    tracker = PerformanceTracker(proto(), max_waiting=5)
    tracker.labels([f"x{i}" for i in range(8)], [1] * 8)
    assert tracker.waiting == 5 and tracker.counts["dropped_waiting"] == 3
    tracker.predictions("m", None, T0, {"prediction": [1, 1], "p": [0.9, 0.8]}, ids=["x0", "x7"])
    d = tracker.revised()[0]
    assert d.extra["labelled"] == 1  # x0 was dropped from the waiting labels, x7 matched
    assert tracker.waiting == 4


def test_only_the_newest_windows_are_kept() -> None:
    tracker = PerformanceTracker(proto(), seconds=60, keep=3)
    for m in range(5):
        tracker.predictions("m", "v", T0 + timedelta(minutes=m), {"prediction": [1], "p": [0.7]}, ids=[f"r{m}"])
    assert [d.window_start for d in tracker.windows()] == [T0 + timedelta(minutes=m) for m in (2, 3, 4)]
    assert tracker.counts["windows_evicted"] == 2
    tracker.labels(["r0"], [1])  # its window is gone: the label waits (bounded) instead
    assert tracker.waiting == 1
    tracker.predictions("m", "v", T0, {"prediction": [1], "p": [0.7]}, ids=["old"])
    assert len(tracker.windows()) == 3  # a prediction older than every kept window opens none

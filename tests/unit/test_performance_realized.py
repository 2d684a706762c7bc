"""Realized performance equals scikit-learn's metrics on the same labelled rows.

Hypothesis draws labels (some missing), predictions and scores (from a coarse grid, so ties
are common, and single-class windows happen), sends predictions and labels in separate
batches in random order (labels before or after their prediction, some twice), and checks
every figure against scikit-learn on the rows that ended up labelled. Floating-point sums
run in a different order than scikit-learn's, so "equal" is ``rel_tol=1e-9``.
"""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from detectors.performance import RealizedPerformance
from detectors.performance._stats import ClassificationStats, RegressionStats

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def close(ours: float | None, theirs: float) -> bool:
    if ours is None:
        return math.isnan(theirs)
    return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)


@st.composite
def classification_rows(draw):
    k = draw(st.integers(2, 4))
    n = draw(st.integers(1, 60))
    truth = draw(st.lists(st.one_of(st.none(), st.integers(0, k - 1)), min_size=n, max_size=n))
    if draw(st.booleans()):  # one class only among the labels
        only = draw(st.integers(0, k - 1))
        truth = [None if t is None else only for t in truth]
    weights = draw(st.lists(st.lists(st.integers(0, 4), min_size=k, max_size=k), min_size=n, max_size=n))
    scores = np.array(weights, dtype=np.float64)
    scores[scores.sum(axis=1) == 0, 0] = 1.0
    scores /= scores.sum(axis=1, keepdims=True)
    # predictions mostly the argmax, sometimes another class (a thresholded classifier)
    preds = [int(np.argmax(s)) if draw(st.booleans()) else draw(st.integers(0, k - 1)) for s in scores]
    seed = draw(st.integers(0, 2**32 - 1))
    return k, truth, preds, scores, seed


def sklearn_classification(k, y, yhat, scores) -> dict[str, float]:
    labels = list(range(k))
    out = {"accuracy": skm.accuracy_score(y, yhat)}
    for avg in ("macro", "micro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y, yhat, labels=labels, average=avg, zero_division=0)
        out |= {f"precision_{avg}": p, f"recall_{avg}": r, f"f1_{avg}": f}
    if k == 2:
        p, r, f, _ = skm.precision_recall_fscore_support(y, yhat, labels=labels, pos_label=1,
                                                         average="binary", zero_division=0)
        out |= {"precision": p, "recall": r, "f1": f}
        out["roc_auc"] = skm.roc_auc_score(y, scores[:, 1]) if len(set(y)) == 2 else math.nan
    else:
        for avg in ("macro", "weighted"):
            key = "roc_auc" if avg == "macro" else "roc_auc_weighted"
            try:
                out[key] = skm.roc_auc_score(y, scores, multi_class="ovr", labels=labels, average=avg)
            except ValueError:  # a class without positives: undefined
                out[key] = math.nan
    out["log_loss"] = skm.log_loss(y, scores, labels=labels)
    # expected calibration error from scikit-learn's reliability diagram (top-label)
    conf, correct = scores.max(axis=1), (scores.argmax(axis=1) == np.asarray(y)).astype(int)
    frac, mean_conf = calibration_curve(correct, conf, n_bins=10, strategy="uniform", pos_label=1)
    edges = np.linspace(0, 1, 11)
    counts = np.bincount(np.searchsorted(edges[1:-1], conf), minlength=10)
    counts = counts[counts > 0]
    out["ece"] = float((counts * np.abs(frac - mean_conf)).sum() / counts.sum())
    return out


def feed(det: RealizedPerformance, truth, preds, scores, rng: np.random.Generator) -> None:
    """Predictions and labels in separate, shuffled batches; some labels first, some twice."""
    n, k = len(truth), scores.shape[1]
    ids = [f"r{i}" for i in range(n)]
    events = [("p", i) for i in range(n)] + [("t", i) for i in range(n) if truth[i] is not None]
    events += [("t", i) for i in range(n) if truth[i] is not None and rng.random() < 0.2]  # replays
    events += [("p", i) for i in range(n) if rng.random() < 0.2]
    order = rng.permutation(len(events))
    for chunk in np.array_split(order, max(1, len(order) // 7)):
        p = [events[j][1] for j in chunk if events[j][0] == "p"]
        t = [events[j][1] for j in chunk if events[j][0] == "t"]
        if p:
            det.update({"prediction": [preds[i] for i in p],
                        **{f"p{c}": scores[p, c] for c in range(k)}}, ids=[ids[i] for i in p])
        if t:
            det.update({"truth": [truth[i] for i in t]}, ids=[ids[i] for i in t])


@SETTINGS
@given(classification_rows())
def test_classification_equals_sklearn(case) -> None:
    k, truth, preds, scores, seed = case
    rng = np.random.default_rng(seed)
    det = RealizedPerformance(scores=[f"p{c}" for c in range(k)], classes=list(range(k)), min_labelled=1)
    det.fit({"prediction": list(range(k)), "truth": list(range(k))})
    feed(det, truth, preds, scores, rng)
    r = det.result()
    lab = [i for i, t in enumerate(truth) if t is not None]
    assert r.window_size == len(truth)
    assert r.extra["labelled"] == len(lab)
    assert r.extra["labelled_share"] == len(lab) / len(truth)
    got = r.extra["metrics"]
    if not lab:
        assert "accuracy" not in got and r.is_drift is None
        return
    y = [truth[i] for i in lab]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = sklearn_classification(k, y, [preds[i] for i in lab], scores[lab])
    for name, value in want.items():
        assert close(got.get(name), value), (name, got.get(name), value)
    per = r.extra["per_class"]
    p, rc, f, s = skm.precision_recall_fscore_support(y, [preds[i] for i in lab], labels=list(range(k)),
                                                      average=None, zero_division=0)
    for c in range(k):
        assert close(per[str(c)]["precision"], p[c]) and close(per[str(c)]["recall"], rc[c])
        assert close(per[str(c)]["f1"], f[c]) and per[str(c)]["support"] == s[c]


@SETTINGS
@given(classification_rows(), st.integers(1, 5))
def test_classification_state_merges(case, parts) -> None:
    """Rows split over detectors (workers), merged, give one detector's figures; so do the
    windows' statistics merged (a day from its hours); and a pickled detector resumes."""
    k, truth, preds, scores, seed = case
    rng = np.random.default_rng(seed)
    cols = [f"p{c}" for c in range(k)]
    proto = RealizedPerformance(scores=cols, classes=list(range(k)), min_labelled=1)
    proto.fit({"prediction": list(range(k)), "truth": list(range(k))})
    whole = pickle.loads(pickle.dumps(proto))
    feed(whole, truth, preds, scores, rng)
    split = rng.integers(0, parts, size=len(truth))
    dets, stats = [], ClassificationStats.zero(list(range(k)))
    for j in range(parts):
        d = pickle.loads(pickle.dumps(proto))
        idx = np.flatnonzero(split == j)
        d.update({"prediction": [preds[i] for i in idx],
                  "truth": [truth[i] for i in idx], **{c: scores[idx, m] for m, c in enumerate(cols)}}, ids=[f"r{i}" for i in idx])
        dets.append(pickle.loads(pickle.dumps(d)))
        stats = stats.merge(d.stats())
    merged = dets[0]
    for d in dets[1:]:
        merged = merged.merge(d)
    a, b = whole.result().extra["metrics"], merged.result().extra["metrics"]
    c = stats.metrics()
    assert a.keys() == b.keys() == (c.keys() - {"labelled"})
    for name in a:
        assert a[name] == b[name] or close(a[name], b[name] if b[name] is not None else math.nan), name
        assert a[name] == c[name] or close(a[name], c[name] if c[name] is not None else math.nan), name


@st.composite
def regression_rows(draw):
    n = draw(st.integers(1, 60))
    cents = st.integers(-100_000, 100_000)
    y = draw(st.lists(st.one_of(st.none(), cents), min_size=n, max_size=n))
    if draw(st.booleans()):  # a constant truth (R2's degenerate case)
        y = [None if v is None else y[0] for v in y]
    yhat = draw(st.lists(cents, min_size=n, max_size=n))
    if draw(st.booleans()):  # perfect predictions
        yhat = [v if v is not None else 0 for v in y]
    seed = draw(st.integers(0, 2**32 - 1))
    return ([None if v is None else v / 100 for v in y], [v / 100 for v in yhat], seed)


@SETTINGS
@given(regression_rows(), st.integers(1, 4))
def test_regression_equals_sklearn(case, parts) -> None:
    truth, preds, seed = case
    rng = np.random.default_rng(seed)
    det = RealizedPerformance(task="regression", min_labelled=1).fit({"prediction": [0.0], "truth": [0.0]})
    order = rng.permutation(len(truth))
    for chunk in np.array_split(order, parts):  # labels first, then predictions, out of order
        det.update({"truth": [truth[i] for i in chunk]}, ids=[f"r{i}" for i in chunk])
    for chunk in np.array_split(rng.permutation(len(truth)), parts):
        det.update({"prediction": [preds[i] for i in chunk]}, ids=[f"r{i}" for i in chunk])
    lab = [i for i, t in enumerate(truth) if t is not None]
    r = det.result()
    assert r.window_size == len(truth) and r.extra["labelled"] == len(lab)
    got = r.extra["metrics"]
    if not lab:
        assert "mae" not in got
        return
    y, p = np.array([truth[i] for i in lab]), np.array([preds[i] for i in lab])
    assert close(got["mae"], skm.mean_absolute_error(y, p))
    assert close(got["rmse"], skm.root_mean_squared_error(y, p))
    assert close(got["mape"], skm.mean_absolute_percentage_error(y, p))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r2 = skm.r2_score(y, p)
    if len(y) < 2:
        assert got["r2"] is None and math.isnan(r2)
    elif np.ptp(y) == 0:
        # scikit-learn's documented rule (1 if perfect, else 0); its own mean of identical
        # values can round off zero, so its figure is not the oracle here
        assert got["r2"] == (1.0 if np.array_equal(y, p) else 0.0)
    else:
        assert math.isclose(got["r2"], r2, rel_tol=1e-9, abs_tol=1e-9)
    # the mergeable state: one chunk per part, merged
    stats = RegressionStats.zero()
    for chunk in np.array_split(np.arange(len(y)), parts):
        stats = stats.merge(RegressionStats.zero().add(y[chunk], p[chunk]))
    m = stats.metrics()
    for name in ("mae", "rmse", "mape"):
        assert close(m[name], got[name] if got[name] is not None else math.nan)
    assert m["r2"] == got["r2"] or math.isclose(m["r2"], got["r2"], rel_tol=1e-9, abs_tol=1e-9)


def test_binary_single_score_column_and_string_labels() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(500)
    y = np.where(rng.random(500) < p, "spam", "ham")
    yhat = np.where(p > 0.5, "spam", "ham")
    det = RealizedPerformance(scores="p_spam", min_labelled=1).fit({"prediction": ["ham", "spam"],
                                                                    "truth": ["ham", "spam"]})
    det.update({"prediction": yhat, "p_spam": p, "truth": y})
    got = det.result().extra["metrics"]
    assert close(got["roc_auc"], skm.roc_auc_score(y == "spam", p))
    assert close(got["f1"], skm.f1_score(y, yhat, pos_label="spam"))
    assert close(got["log_loss"], skm.log_loss(y, np.column_stack([1 - p, p]), labels=["ham", "spam"]))


def test_degradation_fires_against_the_reference_and_waits_for_labels() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 2000)
    good = np.where(rng.random(2000) < 0.9, y, 1 - y)
    det = RealizedPerformance(max_drop=0.05, min_labelled=100).fit({"prediction": good[:1000], "truth": y[:1000]})
    assert math.isclose(det.reference_metrics["accuracy"], skm.accuracy_score(y[:1000], good[:1000]))
    bad = np.where(rng.random(1000) < 0.75, y[1000:], 1 - y[1000:])
    ids = [f"x{i}" for i in range(1000)]
    det.update({"prediction": bad}, ids=ids)
    assert det.result().is_drift is None  # no label yet: no verdict
    det.update({"truth": y[1000:1050]}, ids=ids[:50])
    assert det.result().is_drift is None  # 50 < min_labelled
    det.update({"truth": y[1000:]}, ids=ids)
    r = det.result()
    # the drop: reference accuracy 0.9 over 1,000 rows (sd 0.0095) against 0.75 over 1,000 (sd
    # 0.0137), 0.15 expected against max_drop 0.05: a miss is 6 sd of the difference away (< 1e-9)
    assert r.is_drift is True and r.extra["labelled_share"] == 1.0
    assert math.isclose(r.distance, det.reference_metrics["accuracy"] - skm.accuracy_score(y[1000:], bad))
    assert det.reset().result().window_size == 0


def test_rows_over_the_limit_are_counted_not_silently_dropped() -> None:
    det = RealizedPerformance(max_rows=10, min_labelled=1).fit({"prediction": [0, 1], "truth": [0, 1]})
    det.update({"prediction": [0] * 15, "truth": [0] * 15})
    r = det.result()
    assert r.window_size == 10 and r.extra["rows_over_limit"] == 5


def test_unfitted_and_bad_input_are_clear_errors() -> None:
    from inferwatch.errors import DetectorError

    with pytest.raises(DetectorError, match="fit"):
        RealizedPerformance().update({"prediction": [1]})
    with pytest.raises(DetectorError, match="class"):
        RealizedPerformance().fit({"prediction": [1, 1], "truth": [1, 1]})
    det = RealizedPerformance(scores="p").fit({"prediction": [0, 1, 2], "truth": [0, 1, 2]})
    with pytest.raises(DetectorError, match="two classes"):
        det.update({"prediction": [1], "p": [0.3]})

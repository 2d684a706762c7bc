"""KSDrift against scipy.stats.ks_2samp(mode='asymp') and alibi-detect's KSDrift on the same data."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from detectors import KSDrift
from detectors.common.corrections import correct
from inferwatch.errors import DetectorError
from tests.optional import require


def _cases(seed: int = 0, n: int = 400):
    rng = np.random.default_rng(seed)
    for i in range(n):
        n1, n2 = int(rng.integers(1, 400)), int(rng.integers(1, 150))
        kind = i % 4
        if kind == 0:
            a, b = rng.normal(size=n1), rng.normal(0.2, size=n2)
        elif kind == 1:  # heavy ties between and within samples
            a, b = rng.integers(0, 5, n1).astype(float), rng.integers(0, 6, n2).astype(float)
        elif kind == 2:
            a, b = np.round(rng.normal(size=n1), 1), np.round(rng.normal(size=n2) * 1.3, 1)
        else:  # disjoint / identical supports
            a, b = rng.uniform(size=n1), rng.uniform(0.5, 2.0, size=n2)
        yield a, b


def test_statistic_and_p_value_equal_scipy() -> None:
    """The statistic is always scipy's; the p-value too, except for tied samples that are
    small or hold two distinct values (there: the conditional p-value, tested against a
    shuffling oracle in test_detectors_ties.py)."""
    conditional = 0
    for a, b in _cases():
        r = KSDrift().fit({"x": a}).update({"x": b}).result()
        s = ks_2samp(a, b, method="asymp")
        assert r.feature_distances["x"] == s.statistic
        method = r.extra["methods"]["x"]
        tied = len(np.unique(np.r_[a, b])) < len(a) + len(b)
        assert method == ("asymptotic-conservative" if tied else "asymptotic") or (
            tied and method in ("permutation", "exact-hypergeometric", "constant")
        ), method
        if method.startswith("asymptotic"):
            assert abs(r.feature_p_values["x"] - s.pvalue) <= 1e-8
        else:
            conditional += 1
    # not vacuous: the 400 cases are independent, the count measured 114 +- 7 over 40 seeds; by
    # Hoeffding, missing 0 < count < 200 has probability <= 2 exp(-2 * 86^2 / 400) ~ 2e-16
    assert 0 < conditional < 200


def test_many_features_equal_scipy_and_corrections() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame(rng.normal(size=(3000, 12)), columns=[f"f{i}" for i in range(12)])
    x = pd.DataFrame(rng.normal(size=(300, 12)), columns=ref.columns)
    # a half-sd shift of f3 (300 rows against 3,000): KS statistic ~0.217 +- 0.027 (20,000
    # simulated windows), Bonferroni's cut at 12 features ~0.104: a miss is 4.2 sd away
    # (~1e-5; 0 of 20,000 missed). The 0.4 sd this replaces missed 2.75e-3 of windows.
    x["f3"] += 0.5
    for method in ("bonferroni", "fdr"):
        det = KSDrift(p_val=0.05, correction=method).fit(ref)
        r = det.update(x).result()
        p = np.array([ks_2samp(ref[c], x[c], method="asymp").pvalue for c in ref.columns])
        np.testing.assert_allclose([r.feature_p_values[c] for c in ref.columns], p, rtol=0, atol=1e-8)
        c = correct(p, 0.05, method)
        assert r.is_drift == c.is_drift is True
        assert r.drifted_features == [col for col, f in zip(ref.columns, c.feature_drift, strict=True) if f]
        assert "f3" in r.drifted_features


def test_equal_to_alibi_detect() -> None:
    cd = require("alibi_detect.cd", extra="alibi")
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(2000, 8)).astype(np.float64)
    x = rng.normal(size=(250, 8))
    x[:, 2] *= 1.5
    for method in ("bonferroni", "fdr"):
        ours = KSDrift(p_val=0.05, correction=method).fit(pd.DataFrame(ref)).update(pd.DataFrame(x)).result()
        theirs = cd.KSDrift(ref, p_val=0.05, correction=method).predict(x, drift_type="batch")["data"]
        mine = np.array(list(ours.feature_p_values.values()))
        # alibi stores p-values as float32: ours rounded to float32 must be identical.
        np.testing.assert_array_equal(mine.astype(np.float32), theirs["p_val"])
        np.testing.assert_array_equal(
            np.array(list(ours.feature_distances.values())).astype(np.float32), theirs["distance"]
        )
        assert int(ours.is_drift) == theirs["is_drift"]


def test_table_input_none_and_missing_feature() -> None:
    rng = np.random.default_rng(1)
    ref = {"a": rng.normal(size=500).tolist(), "b": rng.normal(size=500).tolist(), "c": ["x"] * 500}
    det = KSDrift().fit(ref)
    assert det.fitted_features == ["a", "b"]  # numeric columns only
    window_a = rng.normal(size=100).tolist()
    r = det.update({"a": [*window_a, None]}).result()
    assert r.extra["missing_features"] == ["b"]
    assert r.window_size == 101
    assert abs(r.feature_p_values["a"] - ks_2samp(ref["a"], window_a, method="asymp").pvalue) <= 1e-8
    bad = KSDrift().fit(ref).update({"a": ["not a number"], "b": [1.0]}).result()
    assert bad.extra["invalid_features"] == ["a"]


def test_errors() -> None:
    with pytest.raises(ValueError, match="correction"):
        KSDrift(correction="holm")
    with pytest.raises(ValueError, match="p_val"):
        KSDrift(p_val=2)
    with pytest.raises(DetectorError, match="fit"):
        KSDrift().update({"a": [1.0]})
    with pytest.raises(DetectorError, match="not in the reference"):
        KSDrift(features=["zz"]).fit({"a": [1.0, 2.0]})


def test_merge_pickle_reset() -> None:
    rng = np.random.default_rng(2)
    ref = {"a": rng.normal(size=800).tolist()}
    w = rng.normal(0.1, size=300)
    whole = KSDrift().fit(ref).update({"a": w.tolist()})
    left = KSDrift().fit(ref).update({"a": w[:120].tolist()})
    right = KSDrift().fit(ref).update({"a": w[120:].tolist()})
    merged = left.merge(right)
    assert merged.result().feature_p_values == whole.result().feature_p_values
    assert left.window_size == 120  # merge does not mutate
    clone = pickle.loads(pickle.dumps(whole))
    assert clone.result().feature_p_values == whole.result().feature_p_values
    assert whole.reset().window_size == 0 and whole.fitted_features == ["a"]
    with pytest.raises(DetectorError, match="same reference"):
        left.merge(KSDrift().fit({"a": [0.0, 1.0]}))


def test_vectorised_kstwo_sf_equals_scipy() -> None:
    from scipy.stats import kstwo

    from detectors.drift._kstwo import kstwo_sf

    rng = np.random.default_rng(9)
    for n in (30.0, 90.0, 141.0, 200.0, 909.0, 5000.0, 100_001.0):
        d = np.r_[rng.uniform(0.0005, 0.2, 300), rng.uniform(0, 1, 50), [0.0, 1.0, 0.5]]
        np.testing.assert_allclose(kstwo_sf(d, np.full(len(d), n)), kstwo.sf(d, n), rtol=1e-13, atol=1e-15)

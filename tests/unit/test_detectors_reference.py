"""p-values against scipy and alibi-detect on the same data.

alibi-detect stores per-feature p-values as float32, so against alibi ours are compared
after rounding to float32 (bit-identical); against scipy within 1e-8 in float64.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import anderson_ksamp, chi2_contingency, cramervonmises_2samp, fisher_exact

from detectors import AndersonDrift, ChiSquareDrift, CVMDrift, FETDrift, MMDDrift
from detectors.common._categorical import cochran_ok
from tests.optional import require


def _numeric_cases(seed: int, n: int):
    rng = np.random.default_rng(seed)
    for i in range(n):
        n1, n2 = int(rng.integers(2, 400)), int(rng.integers(2, 150))
        kind = i % 4
        if kind == 0:
            yield rng.normal(size=n1), rng.normal(0.2, size=n2)
        elif kind == 1:
            yield rng.integers(0, 5, n1).astype(float), rng.integers(0, 6, n2).astype(float)
        elif kind == 2:
            yield np.round(rng.normal(size=n1), 1), np.round(rng.normal(size=n2) * 1.3, 1)
        else:
            yield rng.uniform(size=n1), rng.uniform(0.5, 2.0, size=n2)


def _tied(a: np.ndarray, b: np.ndarray) -> bool:
    return len(np.unique(np.r_[a, b])) < len(a) + len(b)


def test_cvm_equals_scipy() -> None:
    """Untied samples: scipy's statistic and p-value. Tied ones (half the cases): scipy's
    p-value is invalid there, so the conditional test runs (test_detectors_ties.py)."""
    tied = 0
    for a, b in _numeric_cases(1, 400):
        r = CVMDrift().fit({"x": a}).update({"x": b}).result()
        if _tied(a, b):
            tied += 1
            assert r.extra["methods"]["x"] in ("discrete-asymptotic", "permutation", "exact-hypergeometric", "constant")
            continue
        s = cramervonmises_2samp(a, b, method="auto")
        assert r.extra["methods"]["x"] == ("exact" if max(len(a), len(b)) <= 20 else "asymptotic")
        assert abs(r.feature_distances["x"] - s.statistic) <= 1e-10 * max(1.0, abs(s.statistic))
        assert abs(r.feature_p_values["x"] - s.pvalue) <= 1e-8
    assert 150 <= tied <= 250


def test_anderson_equals_scipy() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a, b in _numeric_cases(2, 200):
            if len(np.union1d(a, b)) < 2:
                continue
            r = AndersonDrift().fit({"x": a}).update({"x": b}).result()
            if _tied(a, b):
                assert r.extra["methods"]["x"] in ("discrete-asymptotic", "permutation", "exact-hypergeometric")
                continue
            s = anderson_ksamp([a, b], variant="midrank")
            assert abs(r.feature_distances["x"] - s.statistic) <= 1e-9
            assert abs(r.feature_p_values["x"] - s.pvalue) <= 1e-8


def test_chi2_and_fisher_equal_scipy() -> None:
    rng = np.random.default_rng(3)
    for _ in range(100):
        k_ref, k_x = int(rng.integers(2, 6)), int(rng.integers(1, 7))
        ref = rng.integers(0, k_ref, int(rng.integers(20, 500))).astype(str)
        x = rng.integers(0, k_x, int(rng.integers(5, 200))).astype(str)
        r = ChiSquareDrift().fit({"c": ref}).update({"c": x}).result()
        cats = sorted(set(ref) | set(x))
        table = np.array([[np.sum(ref == c) for c in cats], [np.sum(x == c) for c in cats]])
        if len(cats) < 2:
            assert r.feature_p_values["c"] == 1.0
            continue
        s = chi2_contingency(table)
        if r.extra["methods"]["c"] == "asymptotic":  # Cochran's rule holds: scipy's value
            assert cochran_ok(table.sum(axis=0).astype(float), float(len(x)))
            assert abs(r.feature_p_values["c"] - s.pvalue) <= 1e-8
        else:  # sparse: conditional p-value (test_detectors_ties.py)
            assert not cochran_ok(table.sum(axis=0).astype(float), float(len(x)))
        b_ref, b_x = (ref == "0").astype(int), (x == "0").astype(int)
        for alt in ("two-sided", "greater", "less"):
            f = FETDrift(alternative=alt).fit({"b": b_ref}).update({"b": b_x}).result()
            t = [[b_x.sum(), b_ref.sum()], [len(b_x) - b_x.sum(), len(b_ref) - b_ref.sum()]]
            assert abs(f.feature_p_values["b"] - fisher_exact(t, alternative=alt)[1]) <= 1e-8


@pytest.fixture(scope="module")
def cd():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return require("alibi_detect.cd", extra="alibi")


def test_cvm_chi2_fet_equal_alibi(cd) -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(1500, 6))
    x = rng.normal(size=(200, 6))
    x[:, 1] *= 1.4
    for method in ("bonferroni", "fdr"):
        ours = CVMDrift(correction=method).fit(pd.DataFrame(ref)).update(pd.DataFrame(x)).result()
        theirs = cd.CVMDrift(ref, p_val=0.05, correction=method).predict(x)["data"]
        np.testing.assert_array_equal(np.array(list(ours.feature_p_values.values()), dtype=np.float32), theirs["p_val"])
        assert int(ours.is_drift) == theirs["is_drift"]

    cref = rng.integers(0, 4, size=(2000, 5))
    cx = rng.integers(0, 5, size=(300, 5))
    cx[:, 2] = rng.choice(4, 300, p=[0.4, 0.2, 0.2, 0.2])
    names = [f"f{i}" for i in range(5)]
    ours = ChiSquareDrift(correction="fdr").fit(pd.DataFrame(cref.astype(str), columns=names))
    res = ours.update(pd.DataFrame(cx.astype(str), columns=names)).result()
    theirs = cd.ChiSquareDrift(cref, p_val=0.05, correction="fdr").predict(cx)["data"]
    np.testing.assert_array_equal(np.array(list(res.feature_p_values.values()), dtype=np.float32), theirs["p_val"])
    assert int(res.is_drift) == theirs["is_drift"]

    bref = rng.integers(0, 2, size=(1000, 3))
    bx = (rng.random((150, 3)) < [0.5, 0.6, 0.45]).astype(int)
    ours_f = FETDrift(alternative="greater").fit(pd.DataFrame(bref, columns=list("abc")))
    rf = ours_f.update(pd.DataFrame(bx, columns=list("abc"))).result()
    tf = cd.FETDrift(bref, p_val=0.05).predict(bx)["data"]
    np.testing.assert_allclose(list(rf.feature_p_values.values()), tf["p_val"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(list(rf.feature_distances.values()), tf["distance"], rtol=1e-12)


def _numpy_mmd_permutation(ref: np.ndarray, x: np.ndarray, sigma: float, n_perm: int, seed: int):
    """A straightforward permutation test: re-index the pooled kernel matrix each time."""
    z = np.vstack([ref, x])
    k = np.exp(-cdist(z, z, "sqeuclidean") / (2 * sigma**2))  # scipy, not the code under test's sq_dists
    np.fill_diagonal(k, 0.0)
    n, m = len(ref), len(x)

    def mmd2(kk: np.ndarray) -> float:
        return kk[:n, :n].sum() / (n * (n - 1)) + kk[n:, n:].sum() / (m * (m - 1)) - 2 * kk[n:, :n].mean()

    obs = mmd2(k)
    rng = np.random.default_rng(seed)
    perms = []
    for _ in range(n_perm):
        idx = rng.permutation(n + m)
        perms.append(mmd2(k[np.ix_(idx, idx)]))
    return float(np.mean(obs <= np.array(perms))), obs


def _same_rate(p1: float, p2: float, n: int) -> bool:
    """Two Monte Carlo p-values from ``n`` draws each are consistent with one rate: Fisher's exact
    test of their counts does not reject at 1.5e-4."""
    k1, k2 = round(p1 * n), round(p2 * n)
    # counts out of n (alibi reports float32)
    assert k1 == pytest.approx(p1 * n, abs=1e-3) and k2 == pytest.approx(p2 * n, abs=1e-3)
    return bool(fisher_exact([[k1, n - k1], [k2, n - k2]]).pvalue > 1.5e-4)


@pytest.mark.parametrize("shift", [0.0, 0.15, 0.3])
def test_mmd_matches_straightforward_permutation_and_alibi(shift: float, cd) -> None:
    rng = np.random.default_rng(int(shift * 100))
    ref = rng.normal(size=(200, 5))
    x = rng.normal(size=(80, 5))
    x[:, 0] += shift
    det = MMDDrift(n_permutations=500, seed=1).fit(pd.DataFrame(ref)).update(pd.DataFrame(x))
    ours = det.result()
    # the bandwidth from alibi's sigma_median definition, written here: the median of all n^2
    # pairwise squared distances (diagonal zeros included, upper median), halved, square-rooted
    n = len(ref)
    sigma = float(np.sqrt(0.5 * np.sort(cdist(ref, ref, "sqeuclidean").ravel())[n + (n * n - n) // 2 - 1]))
    assert det._sigma == pytest.approx(sigma, rel=1e-12)
    p_np, obs = _numpy_mmd_permutation(ref, x, sigma, 500, seed=7)
    assert ours.distance == pytest.approx(obs, rel=1e-9, abs=1e-12)
    # Given the data, each p-value is the share of 500 independent uniform permutations whose MMD^2
    # reaches the observed one: counts Binomial(500, p) with the same p, independent (their own
    # permutation draws). Compared by Fisher's exact test of the 2x2 table, whose p-value is below
    # 1.5e-4 with probability <= 1.5e-4 under equal p whatever p is: two comparisons, false failure
    # <= 3e-4 per run, derived. (Four standard errors with p estimated from one side, as before,
    # fail with probability up to 2.5e-3 per comparison near p = 0.026, summed exactly over both
    # binomials.)
    assert _same_rate(ours.p_value, p_np, 500), (ours.p_value, p_np)
    torch = require("torch", extra="torch")  # compared with the numpy permutation test above either way
    torch.set_num_threads(1)
    a = cd.MMDDrift(ref, backend="pytorch", p_val=0.05, n_permutations=500, device="cpu")
    theirs = a.predict(x)["data"]
    assert float(a._detector.kernel.sigma) == pytest.approx(det._sigma, rel=1e-6)
    assert ours.distance == pytest.approx(theirs["distance"], rel=1e-5, abs=1e-9)
    assert _same_rate(ours.p_value, float(theirs["p_val"]), 500), (ours.p_value, float(theirs["p_val"]))

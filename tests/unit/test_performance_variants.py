"""The A/B comparison validated by simulation.

Each rate is checked against the binomial distribution of the count it comes from: under no
difference, the false-positive rate must not exceed the 1 - 2e-4 upper quantile of
Binomial(n_sims, alpha) / n_sims, so the assertion fails falsely with probability <= 2e-4 when
the true rate is alpha, and less when it is below. Confidence intervals must cover the true
difference at a rate inside the central 1 - 2e-4 interval of Binomial(n_sims, nominal level)
(false failure <= 2e-4). Five such assertions in the no-difference test: <= 1e-3 together; two
in the degraded-variant test (with a power assertion below 1e-6): <= 5e-4. (The 99% intervals
this replaces allowed 0.5-1% per assertion, a few percent per test.) Power assertions state
their own false-failure probability, computed below from the binomial with the
normal-approximation power as the true rate.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, norm
from sklearn.metrics import roc_auc_score

from detectors.performance import VariantComparison
from detectors.performance.variants import delong, two_proportions

ALPHA = 0.05
SIMS = 400


FALSE_FAILURE = 2e-4  # per assertion (module docstring)


def upper(rate: float, n: int = SIMS) -> float:
    return float(binom.ppf(1 - FALSE_FAILURE, n, rate) / n)


def interval(rate: float, n: int = SIMS) -> tuple[float, float]:
    lo, hi = binom.interval(1 - FALSE_FAILURE, n, rate)
    return lo / n, hi / n


def scored(rng: np.random.Generator, n: int, separation: float) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels and scores whose AUC is Phi(separation / sqrt(2)); scores rounded (ties)."""
    y = rng.integers(0, 2, n)
    s = np.round(1 / (1 + np.exp(-(rng.normal(size=n) + separation * y))), 2)
    return y, s


def test_delong_auc_is_scikit_learns_and_its_variance_matches_the_spread() -> None:
    rng = np.random.default_rng(1)
    aucs, variances = [], []
    for _ in range(SIMS):
        y, s = scored(rng, 300, 1.0)
        auc, var = delong(y, s)  # type: ignore[misc]
        assert auc == pytest.approx(roc_auc_score(y, s), rel=1e-12)
        aucs.append(auc)
        variances.append(var)
    # the mean DeLong variance against the AUC's variance over independent samples: the sample
    # variance of 400 draws has relative standard deviation sqrt(2/399) = 7%; 4 of them: 28%
    assert np.mean(variances) == pytest.approx(np.var(aucs, ddof=1), rel=0.28)
    assert delong(np.ones(5), np.arange(5.0)) is None


def test_two_proportion_test_is_the_textbook_one() -> None:
    r = two_proportions(450, 500, 420, 500)
    p1, p2, pooled = 0.9, 0.84, 0.87
    z = (p2 - p1) / np.sqrt(pooled * (1 - pooled) * (2 / 500))
    assert r["p_value"] == pytest.approx(2 * norm.sf(abs(z)))
    half = norm.ppf(0.975) * np.sqrt(p1 * (1 - p1) / 500 + p2 * (1 - p2) / 500)
    assert r["ci"] == pytest.approx([p2 - p1 - half, p2 - p1 + half])


def run(rng: np.random.Generator, n: int, acc: tuple[float, float], sep: tuple[float, float],
        shift: float = 0.0) -> dict:
    rows: dict[str, list] = {"variant": [], "x": [], "c": [], "prediction": [], "score": [], "truth": []}
    for name, a, s, sh in (("a", acc[0], sep[0], 0.0), ("b", acc[1], sep[1], shift)):
        y, score = scored(rng, n, s)
        right = rng.random(n) < a
        rows["variant"] += [name] * n
        rows["x"] += (rng.normal(size=n) + sh).tolist()
        rows["c"] += rng.choice(["u", "v", "w"], size=n, p=[0.5, 0.3, 0.2]).tolist()
        rows["prediction"] += np.where(right, y, 1 - y).tolist()
        rows["score"] += score.tolist()
        rows["truth"] += y.tolist()
    det = VariantComparison(score="score", baseline="a", alpha=ALPHA).fit({"variant": ["a"]})
    return det.update(rows).result().to_dict()


def test_false_positive_rate_under_no_difference() -> None:
    rng = np.random.default_rng(2)
    fired = {"any": 0, "inputs": 0, "outputs": 0, "accuracy": 0, "roc_auc": 0}
    raw = {"accuracy": 0, "roc_auc": 0}
    covered = {"accuracy": 0, "roc_auc": 0}
    for _ in range(SIMS):
        r = run(rng, 400, (0.85, 0.85), (1.0, 1.0))
        b = r["extra"]["variants"]["b"]
        fired["any"] += bool(r["is_drift"])
        for k, p in b["tests"].items():
            fired[k] += p < ALPHA
        for k in raw:
            raw[k] += b[k]["p_value"] < ALPHA
            lo, hi = b[k]["ci"]
            covered[k] += lo <= 0.0 <= hi
    rates = {k: v / SIMS for k, v in fired.items()}
    print(f"under no difference: alarm rates {rates}, unadjusted {raw}, CI coverage {covered} of {SIMS}")
    assert rates["any"] <= upper(ALPHA), rates  # the detector's alarm rate, all families together
    for k in raw:  # each test alone, unadjusted, at its nominal level
        assert raw[k] / SIMS <= upper(ALPHA), (k, raw[k] / SIMS)
        lo, hi = interval(0.95)
        assert lo <= covered[k] / SIMS <= hi, (k, covered[k] / SIMS)


def test_power_and_coverage_with_a_degraded_variant() -> None:
    rng = np.random.default_rng(3)
    n = 1500
    acc, sep = (0.85, 0.78), (1.2, 0.6)
    true_auc = [norm.cdf(s / np.sqrt(2)) for s in sep]  # ignoring the rounding of scores (ties)
    fired = acc_fired = 0
    covered = 0
    sims = 200
    for _ in range(sims):
        r = run(rng, n, acc, sep)
        b = r["extra"]["variants"]["b"]
        fired += bool(r["is_drift"])
        acc_fired += b["tests"]["accuracy"] < ALPHA
        lo, hi = b["accuracy"]["ci"]
        covered += lo <= acc[1] - acc[0] <= hi
        assert r["distance"] == pytest.approx(-b["accuracy"]["difference"])
    # normal-approximation power of the accuracy test at alpha / 4 (Bonferroni over 4 families)
    se = np.sqrt(acc[0] * (1 - acc[0]) / n + acc[1] * (1 - acc[1]) / n)
    power = norm.sf(norm.ppf(1 - ALPHA / 8) - (acc[0] - acc[1]) / se)
    # false failure of the next assertion: P(Binomial(200, power) < 0.9 * 200), below 1e-6
    print(f"degraded variant: detector fired {fired}/{sims}, accuracy test {acc_fired}/{sims} "
          f"(normal-approximation power {power:.3f}), CI coverage {covered}/{sims}")
    assert power > 0.98 and binom.cdf(0.9 * sims - 1, sims, power) < 1e-6
    assert acc_fired / sims >= 0.9 and fired >= acc_fired
    lo, hi = interval(0.95, sims)
    assert lo <= covered / sims <= hi
    assert true_auc[0] - true_auc[1] > 0.1


def test_input_shift_between_variants_is_reported_per_feature() -> None:
    rng = np.random.default_rng(4)
    r = run(rng, 1000, (0.85, 0.85), (1.0, 1.0), shift=0.5)
    b = r["extra"]["variants"]["b"]
    assert r["is_drift"] and "inputs" in r["extra"]["fired"]["b"]
    assert b["inputs"]["p_values"]["x"] < 1e-6 and b["inputs"]["p_values"]["c"] > 1e-3


def test_merge_and_small_variants() -> None:
    det = VariantComparison(features=[], min_rows=50).fit({"variant": ["a"]})
    a = det.update({"variant": ["a"] * 60, "prediction": [1] * 60, "truth": [1] * 60})
    b = VariantComparison(features=[], min_rows=50).fit({"variant": ["a"]})
    b.update({"variant": ["b"] * 10, "prediction": [0] * 10, "truth": [1] * 10})
    r = a.merge(b).result()
    assert r.window_size == 70 and r.extra["rows_per_variant"] == {"a": 60, "b": 10}
    assert r.extra["variants"] == {} and r.is_drift is None  # 10 rows: no verdict

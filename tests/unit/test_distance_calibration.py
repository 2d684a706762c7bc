"""PSI, Jensen-Shannon, Hellinger and Wasserstein as level-alpha tests (their default).

With no ``threshold`` the distance detectors calibrate the distance's null distribution from
the reference (random reference/window splits, see ``detectors/drift/_distance.py``) and
report Monte Carlo p-values through the usual correction. The oracle for validity is the
definition of a level: on windows drawn from the reference population the share that fires
is at most ``alpha``. Every window here is a fresh reference and a fresh window drawn
independently from one population, so the number of windows that fire is a sum of independent
Bernoulli trials with rate <= alpha when the test is valid; each bound below is the
Binomial(N, alpha) quantile at 1 - 1e-3, so a valid test fails it with probability <= 1e-3.
The old rule-of-thumb thresholds fire on most of these small null windows (bench/validity.py
prints both).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import binom, wasserstein_distance

from detectors import HellingerDrift, JSDrift, PSIDrift, WassersteinDrift
from detectors.drift._distance import calibration_size

SEED = 20261202
ALPHA = 0.05
FACTORIES = [PSIDrift, JSDrift, HellingerDrift, WassersteinDrift]


def _population(rng: np.random.Generator, n: int, categorical: bool, shift: float = 0.0,
                continuous: bool = True) -> dict[str, np.ndarray]:
    """Continuous, count (ties) and one-decimal (ties) columns, and for the binned
    distances a category column; ``shift`` moves ``normal`` by that many sds."""
    d = {"normal": rng.normal(shift, 1.0, n)} if continuous else {}
    d |= {
        "counts": rng.poisson(2.0, n).astype(float),
        "rounded": np.round(rng.normal(0.0, 1.0, n), 1),
    }
    if categorical:
        d["colour"] = rng.choice(np.array(["red", "green", "blue", "grey"], dtype=object), n, p=[0.4, 0.3, 0.2, 0.1])
    return d


def _categorical(factory: type) -> bool:
    return factory is not WassersteinDrift


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_the_default_test_holds_its_level_on_null_windows(factory) -> None:
    """Plant caught: the rule-of-thumb threshold as the default (fires on most of these
    windows), p-values from the window alone, ties not counted against drift. Small windows
    of tie-heavy columns (the hard case; bench/validity.py runs more sizes and tables)."""
    rng = np.random.default_rng(SEED)
    windows, m, n = 100, 200, 20
    cat = _categorical(factory)
    fired = features_fired = features_tested = 0
    for _ in range(windows):
        det = factory(p_val=ALPHA, draws=99).fit(_population(rng, m, cat, continuous=False))
        r = det.update(_population(rng, n, cat, continuous=False)).result()
        fired += r.is_drift
        p = np.array(list(r.feature_p_values.values()))
        features_tested += len(p)
        features_fired += int((p < ALPHA).sum())
    # false-failure probability <= 1e-3 each (binomial quantiles at 1 - 1e-3; see the docstring)
    assert fired <= binom.ppf(1 - 1e-3, windows, ALPHA), fired
    # per feature, without the correction: the columns of a window are independent draws
    assert features_fired <= binom.ppf(1 - 1e-3, features_tested, ALPHA), (features_fired, features_tested)


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_a_one_sd_shift_fires_on_that_feature(factory) -> None:
    """Not vacuous: a one-sd shift of ``normal`` in a 200-row window fires on ``normal`` with
    the smallest p-value there is, 1/(draws + 1): every one of the 400 null distances below the
    shifted window's. False-failure probability measured by simulation with this design
    (``python bench/false_failure_budgets.py distance-power --rows 200``: 300 references x 2,000
    shifted windows, the detector's own null draws): no window of 600,000 reached the largest
    null draw for any of the four distances, so P(a run fails) < 3 x 5e-6 = 1.5e-5 (95% upper
    bound, three windows a run). At 100 rows it was ~4.5e-2 for PSI (an empty bin in a null
    window costs it ~0.7; sweep seed 15 failed), ~1.3e-3 Hellinger, ~2e-4 JS."""
    rng = np.random.default_rng(SEED + 1)
    cat = _categorical(factory)
    det = factory(p_val=ALPHA, draws=400).fit(_population(rng, 1000, cat))
    for _ in range(3):
        r = det.reset().update(_population(rng, 200, cat, shift=1.0)).result()
        assert r.is_drift and r.feature_drift["normal"], r.feature_p_values
        assert r.feature_p_values["normal"] == pytest.approx(1 / 401)


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_p_values_are_monte_carlo_p_values_through_the_correction(factory) -> None:
    """p = (1 + k) / (draws + 1) for an integer k; the batch p-value and decision are
    Bonferroni's over them (written out here); a larger distance never gets a larger p."""
    rng = np.random.default_rng(SEED + 2)
    cat = _categorical(factory)
    draws = 249
    det = factory(p_val=ALPHA, draws=draws).fit(_population(rng, 800, cat))
    seen: list[tuple[float, float]] = []
    for shift in (0.0, 0.1, 0.2, 0.3, 0.5):
        r = det.reset().update(_population(rng, 80, cat, shift=shift)).result()
        p = r.feature_p_values
        for v in p.values():
            k = v * (draws + 1) - 1
            assert 0 <= round(k) <= draws and k == pytest.approx(round(k), abs=1e-9)
        assert r.p_value == pytest.approx(min(1.0, len(p) * min(p.values())))
        assert r.is_drift == (r.p_value < ALPHA) == any(v < ALPHA / len(p) for v in p.values())
        assert r.feature_drift == {f: v < ALPHA / len(p) for f, v in p.items()}
        assert r.threshold == ALPHA
        seen.append((r.feature_distances["normal"], p["normal"]))
    # all five windows have 80 rows: one calibration, so p is non-increasing in the distance
    seen.sort()
    assert all(b[1] <= a[1] for a, b in itertools.pairwise(seen)), seen


@pytest.mark.parametrize("factory,threshold", [(PSIDrift, 0.2), (JSDrift, 0.1), (HellingerDrift, 0.1),
                                               (WassersteinDrift, 0.1)], ids=lambda v: getattr(v, "__name__", str(v)))
def test_an_explicit_threshold_decides_by_the_distance(factory, threshold: float) -> None:
    rng = np.random.default_rng(SEED + 3)
    cat = _categorical(factory)
    det = factory(threshold=threshold).fit(_population(rng, 20_000, cat))
    decisions = set()
    for shift in (0.0, 0.3, 1.0):  # null distances at these sizes are far below the thresholds
        r = det.reset().update(_population(rng, 5000, cat, shift=shift)).result()
        assert r.feature_drift == {f: d > threshold for f, d in r.feature_distances.items()}
        assert r.is_drift == any(d > threshold for d in r.feature_distances.values())
        assert r.threshold == threshold and r.p_value is None
        assert all(np.isnan(v) for v in r.feature_p_values.values())
        decisions.add(r.is_drift)
    # both sides of the threshold exercised: the null window stays under it with false-failure
    # probability < 1e-20 (same sizes and thresholds as the null assertions of test_oracles.py,
    # derived there), and a 1-sd shift at 5,000 rows is far over it (PSI ~1, Wasserstein ~1 sd)
    assert decisions == {True, False}


def test_window_sizes_are_calibrated_rounded_down() -> None:
    sizes = range(1, 100_000, 7)
    assert all(calibration_size(n) <= n and calibration_size(n) >= 0.9 * n for n in sizes)
    assert all(calibration_size(n) == n for n in range(1, 101))
    assert len({calibration_size(n) for n in range(1000, 10_000)}) == 90


def test_a_reference_smaller_than_two_windows_still_gives_p_values() -> None:
    rng = np.random.default_rng(SEED + 4)
    det = WassersteinDrift(draws=199).fit(_population(rng, 60, False))
    r = det.update(_population(rng, 50, False, shift=2.0)).result()
    # false failure measured (bench/false_failure_budgets.py distance-power --ref-rows 60 --rows 50
    # --shift 2 --draws 199 --tests 1): no bootstrap null draw reached the shifted distance in
    # 600,000 windows (< 5e-6; drift needs fewer than 3 to)
    assert r.is_drift and r.feature_drift["normal"]
    assert all(0 < v <= 1 for v in r.feature_p_values.values())


@pytest.mark.parametrize("kwargs,message", [({"threshold": 0}, "threshold must be positive"),
                                            ({"threshold": -1}, "threshold must be positive"),
                                            ({"draws": 98}, "draws must be at least 99"), ({"p_val": 0}, "p_val"),
                                            ({"bins": 1}, "bins must be at least 2")])
def test_bad_parameters_are_refused(kwargs, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PSIDrift(**kwargs)
    PSIDrift(draws=99, bins=2)  # the smallest allowed


# --- the distances themselves, against formulas written here (pandas bins, scipy) -------------------


def _binned(ref: np.ndarray, x: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference-quantile bins open at both ends, closed on the left, via pandas."""
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins))
    cuts = [-np.inf, *edges, np.inf]
    p = pd.Series(pd.cut(ref, cuts, right=False)).value_counts(sort=False).to_numpy() / len(ref)
    q = pd.Series(pd.cut(x, cuts, right=False)).value_counts(sort=False).to_numpy() / len(x)
    return p, q


@pytest.mark.parametrize("bins", [2, 5, 10, 17])
def test_binned_distances_equal_their_formulas(bins: int) -> None:
    rng = np.random.default_rng(SEED + 5)
    ref, x = rng.gamma(2.0, size=3000), rng.gamma(2.3, size=400)
    x[:3] = np.quantile(ref, 0.5)  # values on an edge
    p, q = _binned(ref, x, bins)
    eps = 1e-3
    pe, qe = np.maximum(p, eps), np.maximum(q, eps)
    expected = {
        PSIDrift: float(((qe - pe) * np.log(qe / pe)).sum()),
        HellingerDrift: float(np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum() / 2)),
        JSDrift: float(jensenshannon(p, q, base=2)),
    }
    for factory, want in expected.items():
        kw = {"eps": eps} if factory is PSIDrift else {}
        r = factory(threshold=1e9, bins=bins, **kw).fit({"a": ref}).update({"a": x}).result()
        assert r.feature_distances["a"] == pytest.approx(want, rel=1e-9), factory.__name__


def test_psi_empty_bins_take_eps() -> None:
    ref = np.repeat([1.0, 2.0, 3.0, 4.0], 50)
    x = np.full(20, 1.0)  # three of four bins empty in the window
    for eps in (1e-4, 1e-2):
        p, q = _binned(ref, x, 4)
        pe, qe = np.maximum(p, eps), np.maximum(q, eps)
        r = PSIDrift(threshold=1e9, bins=4, eps=eps).fit({"a": ref}).update({"a": x}).result()
        assert r.feature_distances["a"] == pytest.approx(float(((qe - pe) * np.log(qe / pe)).sum()))


def test_categories_new_in_the_window_get_their_own_bin() -> None:
    ref = np.array(["a"] * 60 + ["b"] * 40, dtype=object)
    x = np.array(["a"] * 5 + ["b"] * 10 + ["c"] * 5, dtype=object)
    p, q = np.array([0.6, 0.4, 0.0]), np.array([0.25, 0.5, 0.25])
    r = HellingerDrift(threshold=1e9).fit({"k": ref}).update({"k": x}).result()
    assert r.feature_distances["k"] == pytest.approx(float(np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum() / 2)))
    r = JSDrift(threshold=1e9).fit({"k": ref}).update({"k": x}).result()
    assert r.feature_distances["k"] == pytest.approx(float(jensenshannon(p, q, base=2)))


@pytest.mark.parametrize("normalize", [True, False])
def test_wasserstein_equals_scipy_in_reference_sds_or_raw(normalize: bool) -> None:
    rng = np.random.default_rng(SEED + 6)
    ref, x = rng.normal(3.0, 2.5, 2000), rng.normal(3.4, 2.5, 300)
    want = wasserstein_distance(ref, x) / (np.std(ref) if normalize else 1.0)
    r = WassersteinDrift(threshold=1e9, normalize=normalize).fit({"a": ref}).update({"a": x}).result()
    assert r.feature_distances["a"] == pytest.approx(want, rel=1e-9)
    const = WassersteinDrift(threshold=1e9).fit({"a": np.full(50, 2.0)}).update({"a": np.full(5, 3.0)}).result()
    assert const.feature_distances["a"] == pytest.approx(1.0)  # a constant reference: scale 1, not 0


def test_features_and_correction_are_used() -> None:
    rng = np.random.default_rng(SEED + 7)
    ref = _population(rng, 600, True)
    win = _population(rng, 60, True, shift=1.5)
    r = PSIDrift(features=["counts", "normal"], draws=199).fit(ref).update(win).result()
    assert sorted(r.feature_distances) == ["counts", "normal"]
    assert r.extra["correction"] == "bonferroni" and r.extra["n_tested"] == 2
    fdr = PSIDrift(correction="fdr", draws=199).fit(ref).update(win).result()
    p = sorted(fdr.feature_p_values.values())
    n = len(p)
    assert fdr.extra["correction"] == "fdr"
    assert fdr.p_value == pytest.approx(min(1.0, min(v * n / (i + 1) for i, v in enumerate(p))))
    none = PSIDrift(correction="none", p_val=0.2, draws=199).fit(ref).update(win).result()
    assert none.p_value == pytest.approx(min(none.feature_p_values.values()))
    assert none.extra["feature_threshold"] == 0.2


@pytest.mark.parametrize("p_val,n_features,draws", [(0.05, 1, 199), (0.01, 1, 400), (0.05, 3, 240), (0.01, 3, 1200)])
def test_default_draws_resolve_a_quarter_of_the_bonferroni_cut(p_val: float, n_features: int, draws: int) -> None:
    """draws = max(199, ceil(4 k / p_val)): seen as the smallest p-value a far shift gets."""
    rng = np.random.default_rng(SEED + 8)
    names = ["normal", "counts", "rounded"][:n_features]
    ref = {k: v for k, v in _population(rng, 400, False).items() if k in names}
    win = {k: v for k, v in _population(rng, 40, False, shift=3.0).items() if k in names}
    r = WassersteinDrift(p_val=p_val).fit(ref).update(win).result()
    # false failure (a null draw reaching a 3-sd shift) measured: 0 of 200,000 windows at 1,200
    # draws (bench/false_failure_budgets.py distance-power --ref-rows 400 --rows 40 --shift 3
    # --draws 1200 --tests 1; the largest null draw 21 null sds below the shifted windows' 0.1%
    # quantile at worst): < 1.5e-5 (95% upper bound)
    assert r.feature_p_values["normal"] == pytest.approx(1 / (draws + 1))


def test_repr_names_the_decision() -> None:
    assert repr(PSIDrift(threshold=0.3, features=["a"])) == (
        "PSIDrift(threshold=0.3, p_val=0.05, correction='bonferroni', features=['a'])")
    assert repr(WassersteinDrift(p_val=0.01, correction="fdr")) == (
        "WassersteinDrift(threshold=None, p_val=0.01, correction='fdr', features=None)")


def test_calibration_is_reproducible_for_a_reference() -> None:
    """Two detectors fitted on the same reference give the same p-values (the null windows
    are seeded by the reference and the feature; not by the clock)."""
    rng = np.random.default_rng(SEED + 9)
    ref = _population(rng, 300, True)
    wins = [_population(rng, 30, True) for _ in range(2)]
    a, b = PSIDrift(draws=99).fit(ref), PSIDrift(draws=99).fit(ref)
    for w in wins:
        assert a.reset().update(w).result().feature_p_values == b.reset().update(w).result().feature_p_values


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_the_null_windows_are_splits_down_to_half_the_reference_then_a_bootstrap(factory) -> None:
    rng = np.random.default_rng(SEED + 10)
    cat = _categorical(factory)
    ref = _population(rng, 120, cat)
    det = factory(draws=99).fit(ref)
    for n, method in ((60, "simulated (reference splits)"), (61, "simulated (bootstrap)"),
                      (20, "simulated (reference splits)"), (100, "simulated (bootstrap)")):
        r = det.reset().update(_population(rng, n, cat)).result()
        assert set(r.extra["methods"].values()) == {method}, (n, r.extra["methods"])
    fixed = factory(threshold=0.5).fit(ref).update(_population(rng, 20, cat)).result()
    assert "methods" not in fixed.extra


def test_a_window_like_the_reference_is_no_evidence_ties_count_against_drift() -> None:
    """A window with exactly the reference's proportions has distance 0; null windows tie with
    it often on two-valued data: counted as at least as extreme, p = 1."""
    ref = {"flag": np.repeat([0.0, 1.0], 100), "colour": np.array(["a", "b"] * 100, dtype=object)}
    win = {"flag": np.repeat([0.0, 1.0], 10), "colour": np.array(["a", "b"] * 10, dtype=object)}
    for factory in (PSIDrift, JSDrift, HellingerDrift):
        r = factory(draws=99).fit(ref).update(win).result()
        assert r.feature_p_values == {"flag": 1.0, "colour": 1.0}, factory.__name__
    r = WassersteinDrift(draws=99).fit({"flag": ref["flag"]}).update({"flag": win["flag"]}).result()
    assert r.feature_p_values == {"flag": 1.0}


def test_many_categories_are_simulated_as_categories() -> None:
    """40 categories with the default 10 bins: the null windows must keep the categories (not
    quantile bins of their codes). A valid p-value is <= 0.02 in all of 5 null windows with
    probability 0.02**5 = 3e-9; null distances from 10 merged bins would put every one at the
    minimum 1/200."""
    rng = np.random.default_rng(SEED + 11)
    cats = np.array([f"c{i}" for i in range(40)], dtype=object)
    det = PSIDrift(draws=199).fit({"k": rng.choice(cats, 800)})
    ps = [det.reset().update({"k": rng.choice(cats, 80)}).result().feature_p_values["k"] for _ in range(5)]
    assert max(ps) > 0.02, ps


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_every_detector_takes_p_val_correction_draws_and_features(factory) -> None:
    rng = np.random.default_rng(SEED + 12)
    cat = _categorical(factory)
    det = factory(p_val=0.2, correction="none", draws=99, features=["counts", "normal"])
    r = det.fit(_population(rng, 300, cat)).update(_population(rng, 30, cat, shift=2.0)).result()
    assert sorted(r.feature_p_values) == ["counts", "normal"]
    assert r.threshold == 0.2 and r.extra["correction"] == "none" and r.extra["feature_threshold"] == 0.2
    # 99 draws: the far shift's p. False failure (a null draw at or above the 2-sd shifted window's
    # distance) measured (bench/false_failure_budgets.py distance-power --ref-rows 300 --rows 30
    # --shift 2 --draws 99 --tests 1, 600,000 windows): PSI ~2e-4, Hellinger ~1.3e-5, JS and
    # Wasserstein 0 seen (< 5e-6)
    assert r.feature_p_values["normal"] == pytest.approx(1 / 100)
    assert r.feature_drift == {f: v < 0.2 for f, v in r.feature_p_values.items()}


def test_default_bins_are_ten() -> None:
    rng = np.random.default_rng(SEED + 13)
    ref, x = rng.normal(size=2000), rng.normal(0.2, size=300)
    p, q = _binned(ref, x, 10)
    for factory, want in ((HellingerDrift, float(np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum() / 2))),
                          (JSDrift, float(jensenshannon(p, q, base=2)))):
        r = factory(threshold=1e9).fit({"a": ref}).update({"a": x}).result()
        assert r.feature_distances["a"] == pytest.approx(want, rel=1e-9)
    pe, qe = np.maximum(p, 1e-4), np.maximum(q, 1e-4)  # PSI's default eps too
    r = PSIDrift(threshold=1e9).fit({"a": ref}).update({"a": x}).result()
    assert r.feature_distances["a"] == pytest.approx(float(((qe - pe) * np.log(qe / pe)).sum()), rel=1e-9)


def test_null_distances_are_kept_for_at_most_32_window_sizes() -> None:
    rng = np.random.default_rng(SEED + 14)
    det = WassersteinDrift(draws=99, features=["normal"]).fit(_population(rng, 200, False))
    for n in range(2, 40):
        det.reset().update(_population(rng, n, False)).result()
    kept = det._ref["normal"].null  # type: ignore[index]
    assert sorted(kept) == list(range(7, 40))[-32:]


def test_one_row_windows_and_categories_missing_from_the_window() -> None:
    ref = np.array(["a"] * 60 + ["b"] * 40, dtype=object)
    for x, q in ((np.array(["a"], dtype=object), [1.0, 0.0]), (np.array(["c", "c", "b"], dtype=object), [0, 1 / 3, 2 / 3])):
        p = np.array([0.6, 0.4, 0.0][: len(q)])
        r = HellingerDrift(threshold=1e9).fit({"k": ref}).update({"k": x}).result()
        want = float(np.sqrt(((np.sqrt(p) - np.sqrt(np.array(q))) ** 2).sum() / 2))
        assert r.feature_distances["k"] == pytest.approx(want), x
    num = np.arange(100, dtype=float)
    p, q = _binned(num, np.array([95.0]), 10)
    r = JSDrift(threshold=1e9).fit({"a": num}).update({"a": [95.0]}).result()
    assert r.feature_distances["a"] == pytest.approx(float(jensenshannon(p, q, base=2)))
    r = HellingerDrift(threshold=1e9).fit({"a": num}).update({"a": [95.0]}).result()
    assert r.feature_distances["a"] == pytest.approx(float(np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum() / 2)))


def test_an_explicit_threshold_is_strict_and_reports_no_correction() -> None:
    """Hellinger between all-"a" and all-"b" is exactly 1: at threshold 1.0 that is not drift."""
    ref, win = {"k": np.array(["a"] * 10, dtype=object)}, {"k": np.array(["b"] * 4, dtype=object)}
    r = HellingerDrift(threshold=1.0).fit(ref).update(win).result()
    assert r.feature_distances["k"] == 1.0 and not r.is_drift and r.feature_drift == {"k": False}
    assert "correction" not in r.extra and r.extra["n_tested"] == 1 and r.extra["untested"] == {}
    assert HellingerDrift(threshold=0.999).fit(ref).update(win).result().is_drift


def test_numbers_sent_as_text_are_binned_as_numbers() -> None:
    rng = np.random.default_rng(SEED + 15)
    ref, x = np.round(rng.normal(size=500), 2), np.round(rng.normal(0.5, size=60), 2)
    as_text = PSIDrift(threshold=1e9).fit({"a": ref.astype(str).astype(object)})
    r = as_text.update({"a": x.astype(str).astype(object)}).result()
    r_num = PSIDrift(threshold=1e9).fit({"a": ref}).update({"a": x}).result()
    assert r.feature_distances["a"] == pytest.approx(r_num.feature_distances["a"])


def test_wasserstein_normalizes_by_default_also_below_one_sd() -> None:
    rng = np.random.default_rng(SEED + 16)
    ref, x = rng.normal(0.0, 0.5, 1000), rng.normal(0.1, 0.5, 200)
    r = WassersteinDrift(threshold=1e9).fit({"a": ref}).update({"a": x}).result()
    assert r.feature_distances["a"] == pytest.approx(wasserstein_distance(ref, x) / np.std(ref), rel=1e-9)

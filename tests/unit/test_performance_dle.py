"""DLE held against NannyML's DLE on the same data, and against the realized figures.

Tolerances, derived:

* against NannyML: both fit the same conditional expectation (a row's expected absolute or
  squared error given its inputs and prediction) on the same reference, with different
  boosting libraries (scikit-learn's histogram GBM here, LightGBM there); the difference is
  learner noise, and we require it under one NannyML sampling error per chunk — below the
  resolution NannyML itself claims for the figure.
* against the realized figures: the data's noise is known (standard deviation 0.5, or 1.5
  where ``x0 > 0.5``; a linear truth the linear model recovers), so the realized MAE/RMSE of a
  chunk scatter, given its inputs, by a standard deviation we compute by redrawing the noise
  400 times. To that the estimator adds its own error from a finite reference, about 1.3 times
  NannyML's sampling error of the reference (not at most once, as first assumed: with a bound
  of 4 spreads + 1 sampling error the 6 assertions failed ~4e-3 a run). We allow 1.5 times
  that: 6 spreads + 1.5 sampling errors (REALIZED_BOUND). This is asserted for the chunks
  inside the reference's dense range only: where a shift moves the inputs to the reference's
  edge, the boosted trees extrapolate flat and the estimate lags the realized error (by 5% at a
  shift of one standard deviation here; NannyML's LightGBM the same) — printed, and only its
  direction asserted.

False-failure probabilities, each stated at its assertion, from ``python
bench/false_failure_budgets.py dle`` (this design for 100 other seeds, our DLE and NannyML's;
normal tails of the asserted quantities, union bounds over the figures a run asserts on):
~3e-6 a run for the slow test altogether, 5e-5 with every sd at its 95% upper confidence
bound (x 1.13); the realized bound's share is the largest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from detectors.performance.dle import DLE
from tests.reference import run_nannyml

CHUNK = 5000
W = np.array([1.0, -2.0, 0.5])
SHIFTS = (0.0, 0.0, 0.5, 1.0, -0.7)
#: |estimated - realized| <= REALIZED_BOUND x (4 spreads + NannyML's sampling error of the reference)
REALIZED_BOUND = 1.5


def noise_sd(x: np.ndarray) -> np.ndarray:
    return 0.5 + 1.0 * (x[:, 0] > 0.5)


def calm_and_loud(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """300 inputs where the noise is quiet (sd 0.5) and 300 where it is loud (sd 1.5): spread over
    a range, so a window's estimate averages many of the trees' leaves, not one."""
    return rng.uniform(-2.0, -0.5, 300), rng.uniform(1.0, 2.5, 300)


def world(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The slow test's data (also bench/false_failure_budgets.py dle's, per seed): a linear model
    fitted on 5,000 rows, a 10,000-row reference and one chunk per shift of SHIFTS, with their
    predictions and truths, drawn from ``rng`` in that order."""

    def make(n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, 3)) + shift
        return x, x @ W + rng.normal(size=n) * noise_sd(x)

    model = LinearRegression().fit(*make(5000, 0.0))
    xr, yr = make(10_000, 0.0)
    parts = [make(CHUNK, s) for s in SHIFTS]
    xa, ya = np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return {"ref_x": xr, "ref_pred": model.predict(xr), "ref_truth": yr,
            "ana_x": xa, "ana_pred": model.predict(xa), "ana_truth": ya}


@pytest.mark.slow
def test_dle_agrees_with_nannyml_and_tracks_realized(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    d = world(rng)
    xr, yr, xa, ya = d["ref_x"], d["ref_truth"], d["ana_x"], d["ana_truth"]
    np.savez(tmp_path / "data.npz", **d)
    theirs = run_nannyml.run("nannyml_dle.py", tmp_path / "data.npz", CHUNK)
    assert len(theirs) == 5
    feats = ["x0", "x1", "x2"]
    est = DLE(features=feats, min_rows=1).fit({**{f: xr[:, j] for j, f in enumerate(feats)},
                                               "prediction": d["ref_pred"], "truth": yr})
    worst = {"nannyml": 0.0, "realized": 0.0}
    gaps_nml: list[float] = []
    estimates: dict[str, list[float]] = {"mae": [], "rmse": []}
    actual: dict[str, list[float]] = {"mae": [], "rmse": []}
    for i, chunk in enumerate(theirs):
        sl = slice(chunk["start"], chunk["end"])
        x, pred = xa[sl], d["ana_pred"][sl]
        ours = est.reset().update({**{f: x[:, j] for j, f in enumerate(feats)}, "prediction": pred}).result()
        # the realized figures' scatter given these inputs: the noise redrawn
        mean = x @ W - pred
        draws = mean + rng.normal(size=(400, len(x))) * noise_sd(x)
        spread = {"mae": np.abs(draws).mean(axis=1).std(ddof=1),
                  "rmse": np.sqrt((draws**2).mean(axis=1)).std(ddof=1)}
        err = ya[sl] - pred
        realized = {"mae": np.abs(err).mean(), "rmse": np.sqrt((err**2).mean())}
        for m in ("mae", "rmse"):
            value, ref = ours.extra["metrics"][m], chunk[m]
            assert realized[m] == pytest.approx(ref["realized"], rel=1e-9)
            gap_nml = abs(value - ref["value"]) / ref["sampling_error"]
            # a gross disagreement (another metric, another scale). Over 100 seeds (bench dle) the
            # signed gap per figure had mean within +-0.06 and sd 0.15-0.69 (widest: shift +1.0,
            # MAE; largest |gap| 1.97): 4 is >= 5.7 sd out, false failure ~7e-9 a run (10 figures)
            assert gap_nml <= 4, (chunk["start"], m, value, ref)
            gaps_nml.append(gap_nml)
            worst["nannyml"] = max(worst["nannyml"], gap_nml)
            gap = (value - realized[m]) / spread[m]
            print(f"shift {SHIFTS[i]:+.1f} {m}: ours {value:.4f}, NannyML {ref['value']:.4f}, realized "
                  f"{realized[m]:.4f} ({gap:+.1f} standard deviations)")
            estimates[m].append(value)
            actual[m].append(realized[m])
            if SHIFTS[i] in (0.0, -0.7):  # inside the reference's dense range
                # (ours - realized) / (4 spreads + 1 se) over 100 seeds (bench dle): mean 0.00 to
                # +0.10, sd 0.27-0.30 per figure, largest |.| 0.96; at 1.5 the nearest side is
                # (1.5 - 0.10) / 0.297 = 4.7 sd out: ~2e-6 a run (6 figures), 4e-5 with the sds at
                # their 95% upper confidence bounds (x 1.13)
                bound = REALIZED_BOUND * (4 * spread[m] + ref["sampling_error"] * np.sqrt(CHUNK / len(yr)))
                assert abs(value - realized[m]) <= bound, (chunk["start"], m, value, realized[m], bound)
                worst["realized"] = max(worst["realized"], abs(gap))
    # agreement with NannyML on average: the mean |ours - NannyML| over the 10 figures, in NannyML's
    # sampling errors, was 0.23 (sd 0.055, largest 0.385) over 40 sweep seeds, 0.222 (sd 0.077,
    # largest 0.44) over 100 seeds of bench dle; 0.6 is 4.9 sd above the mean: ~5e-7 a run. (Each
    # figure within one sampling error, asked before, failed for 8 of 30 seeds: the two
    # estimators' models differ, not only their samples.)
    assert np.mean(gaps_nml) <= 0.6, gaps_nml
    # further out the trees extrapolate flat and the estimate lags (NannyML's as much: see the
    # printed figures); it still rises and falls with the realized error. Over 100 seeds (bench
    # dle) each step between consecutive shifts was >= 5.0 of its sds above 0 for the estimates
    # (nearest: RMSE 0.5 -> 1.0, mean 0.160, sd 0.032) and >= 7.4 for the realized figures:
    # false failure ~3e-7 a run (12 steps)
    for m in ("mae", "rmse"):
        order = [4, 0, 2, 3]  # shifts -0.7, 0, 0.5, 1.0
        assert np.all(np.diff([estimates[m][i] for i in order]) > 0)
        assert np.all(np.diff([actual[m][i] for i in order]) > 0)
    print(f"largest |ours - NannyML| = {worst['nannyml']:.2f} sampling errors; largest |estimated - realized| "
          f"inside the reference's range = {worst['realized']:.2f} standard deviations")


def test_dle_windows_merge_and_fire() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 1))
    y = x[:, 0] + rng.normal(size=4000) * noise_sd(x)
    est = DLE(features=["x0"], min_rows=10, max_rise=0.2).fit({"x0": x[:, 0], "prediction": x[:, 0], "truth": y})
    # the reference's MAE is 0.80 x (0.5 + P(x0 > 0.5)) = 0.65; the calm window's expected 0.40
    # (a rise of -0.38), the loud one's 1.20 (+0.86). Over 300 references (bench/
    # false_failure_budgets.py dle) the estimated rises were -0.381 (sd 0.019, largest -0.331) and
    # +0.853 (sd 0.064, smallest +0.680): 30 and 10 sd from 0.2, false failure ~2e-24 a run.
    # (Windows of one repeated input, as before, read one leaf of the trees: the loud rise had sd
    # 0.32, smallest -0.006 of 300, and missed 0.2 in ~1.7e-2 of runs.)
    calm, loud = calm_and_loud(rng)
    a = est.reset().update({"x0": calm, "prediction": calm}).result()
    assert a.is_drift is False
    b = DLE(features=["x0"], min_rows=10).fit({"x0": x[:, 0], "prediction": x[:, 0], "truth": y})
    b.update({"x0": loud, "prediction": loud})
    est.reset().update({"x0": calm, "prediction": calm})
    merged = est.merge(b).result()
    whole = b.reset().update({"x0": np.r_[calm, loud], "prediction": np.r_[calm, loud]}).result()
    assert merged.extra["metrics"]["mae"] == pytest.approx(whole.extra["metrics"]["mae"], rel=1e-12)
    assert est.reset().update({"x0": loud, "prediction": loud}).result().is_drift is True

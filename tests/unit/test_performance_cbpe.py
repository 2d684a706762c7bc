"""CBPE held against NannyML's on the same data, and against the realized figures.

NannyML runs in its own venv (``make nannyml-venv``; ``make test`` builds it and sets
``INFERWATCH_NANNYML_PYTHON``) in a subprocess on the same ``.npz`` file.

Tolerances, derived:

* against NannyML: both are the same estimator, so any difference is implementation detail
  (NannyML rounds its cumulative ROC counts to 5 decimals); we require the difference to be
  under 1% of NannyML's own sampling error for that chunk and metric — at that size it moves
  a decision taken at +-3 sampling errors by at most 1/300 of the band.
* against the realized figures (labels revealed afterwards): with calibrated probabilities and
  no concept shift, a chunk's labels are independent draws from the calibrated probabilities,
  so the realized figure scatters around the estimate by the standard deviation of the metric
  over labels drawn that way (computed by simulation here with scikit-learn's metrics; for
  accuracy it is also the estimator's closed-form ``standard_error``, checked). NannyML's
  sampling error is not used for this: it is extrapolated from the reference and too small
  where a shift changes the share of positive predictions (precision under a shift of -0.8).
  The estimate has an error of its own, which that spread leaves out: the calibration is
  learned from the 10,000 labelled reference rows, about sqrt(1 + 5,000 / 10,000) = 1.22 times
  the spread together. Measured for accuracy (its closed-form standard error) over 300 chunks
  (30 seeds, both problems): (estimate - realized) / sd had mean -0.27, sd 1.27, largest
  |z| 4.12 — the 4 sd allowed before (budgeted at 6e-5 per assertion, 2e-3 per problem,
  the calibration left out) failed about 1 chunk-metric in 300. We allow 6 sd: (6 - 0.27) /
  1.27 = 4.5 of the combined sd, ~7e-6 per assertion, 50 assertions (correlated): <= 4e-4,
  the other metrics taken to scatter like accuracy (the same calibration error moves them).
  The simulated spread itself (300 label draws) has a relative error of sqrt(1 / 598) = 4%.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

from detectors.performance import CBPE, RealizedPerformance
from detectors.performance.cbpe import expected_auc
from tests.reference import run_nannyml

METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")
CHUNK = 5000


def dataset(k: int, seed: int) -> dict[str, np.ndarray]:
    """A logistic model; a labelled reference; analysis chunks under covariate shift only.

    Labels are drawn from a fixed, miscalibrated function of the model's own probabilities
    (``q = s**1.5``, renormalised), so the chance of each class given the score is the same in
    every chunk — CBPE's assumption, held exactly — and calibration has work to do.
    """
    rng = np.random.default_rng(seed)
    w = np.array([[1.5, -1, 0.5, 0.0], [-0.5, 1.2, 0, 1], [0.3, 0.3, -1.5, 0.5]])[: k if k > 2 else 1]
    x0 = rng.normal(size=(5000, 4))
    logits = x0 @ w.T + rng.normal(size=(5000, w.shape[0]))
    model = LogisticRegression(max_iter=1000).fit(x0, (logits[:, 0] > 0).astype(int) if k == 2 else logits.argmax(1))

    def make(n: int, shift: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = model.predict_proba(rng.normal(size=(n, 4)) + shift)
        q = s**1.5 / (s**1.5).sum(axis=1, keepdims=True)
        y = (rng.random((n, 1)) > np.cumsum(q, axis=1)).sum(axis=1).clip(0, k - 1)
        return s, s.argmax(axis=1), y

    ref = make(10_000, 0.0)
    parts = [make(CHUNK, s) for s in (0.0, 0.0, 0.5, 1.0, -0.8)]
    return {"ref_scores": ref[0], "ref_pred": ref[1], "ref_truth": ref[2],
            "ana_scores": np.vstack([p[0] for p in parts]), "ana_pred": np.concatenate([p[1] for p in parts]),
            "ana_truth": np.concatenate([p[2] for p in parts])}


def table(d: dict[str, np.ndarray], part: str, truth: bool) -> dict[str, np.ndarray]:
    k = d[f"{part}_scores"].shape[1]
    out = {"prediction": d[f"{part}_pred"], **{f"p{j}": d[f"{part}_scores"][:, j] for j in range(k)}}
    if truth:
        out["truth"] = d[f"{part}_truth"]
    return out


def sampling_sd(cal: np.ndarray, pred: np.ndarray, raw: np.ndarray, draws: int = 300) -> dict[str, float]:
    """Standard deviation of each realized metric when labels are drawn from the calibrated
    probabilities (what the realized figure would scatter by if the estimate were exact)."""
    rng = np.random.default_rng(0)
    k = cal.shape[1]
    cum = np.cumsum(cal, axis=1)
    avg = "binary" if k == 2 else "macro"
    values: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(draws):
        y = (rng.random((len(cal), 1)) > cum).sum(axis=1).clip(0, k - 1)
        values["accuracy"].append(accuracy_score(y, pred))
        p, r, f, _ = precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        values["precision"].append(p)
        values["recall"].append(r)
        values["f1"].append(f)
        values["roc_auc"].append(roc_auc_score(y, raw[:, 1]) if k == 2 else
                                 roc_auc_score(y, raw, multi_class="ovr"))
    return {m: float(np.std(v, ddof=1)) for m, v in values.items()}


@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 3])
def test_cbpe_equals_nannyml_and_tracks_realized(k: int, tmp_path: Path) -> None:
    d = dataset(k, seed=k)
    np.savez(tmp_path / "data.npz", **d)
    theirs = run_nannyml.run("nannyml_cbpe.py", tmp_path / "data.npz", CHUNK)
    assert len(theirs) == 5
    cols = [f"p{j}" for j in range(k)]
    est = CBPE(scores=cols, min_rows=1).fit(table(d, "ref", truth=True))
    real = RealizedPerformance(scores=cols, min_labelled=1).fit(table(d, "ref", truth=True))
    worst = {"nannyml": 0.0, "realized": 0.0}
    for chunk in theirs:
        sl = slice(chunk["start"], chunk["end"])
        window = {name: col[sl] for name, col in table(d, "ana", truth=False).items()}
        ours = est.reset().update(window).result()
        realized = real.reset().update(window | {"truth": d["ana_truth"][sl]}).result().extra["metrics"]
        spread = sampling_sd(est.calibrate(d["ana_scores"][sl]), d["ana_pred"][sl], d["ana_scores"][sl])
        for m in METRICS:
            value, ref = ours.extra["metrics"][m], chunk[m]
            se = ref["sampling_error"]
            assert abs(value - ref["value"]) <= 0.01 * se, (k, chunk["start"], m, value, ref)
            worst["nannyml"] = max(worst["nannyml"], abs(value - ref["value"]) / se)
            # NannyML's realized figure is ours too (scikit-learn's on the same rows)
            got = realized[m if k == 2 or m in ("accuracy", "roc_auc") else f"{m}_macro"]
            assert got == pytest.approx(ref["realized"], rel=1e-9)
            bound = spread[m]
            assert abs(value - got) <= 6 * bound, (k, chunk["start"], m, value, got, bound)
            worst["realized"] = max(worst["realized"], abs(value - got) / bound)
        # the closed form is the exact sd of the realized accuracy under calibrated labels; the
        # simulated one (300 draws) is off by 4% (relative sd): 20% is 4.9 of them, ~1e-6 per
        # chunk, 10 chunks ~1e-5 (the 15% before was 3.7 of them: ~2.5e-3 over 10 chunks)
        assert spread["accuracy"] == pytest.approx(ours.extra["standard_error"]["accuracy"], rel=0.2)
    print(f"k={k}: largest |ours - NannyML| = {worst['nannyml']:.2e} sampling errors; "
          f"largest |estimated - realized| = {worst['realized']:.2f} standard errors")


def test_expected_auc_is_scikit_learns_weighted_auc() -> None:
    """The expected ROC curve is the ROC of each row counted p times positive and 1-p negative."""
    rng = np.random.default_rng(7)
    s = np.round(rng.random(400), 2)  # ties
    p = rng.random(400)
    tally: dict[float, list[float]] = {}
    for score, q in zip(s.tolist(), p.tolist(), strict=True):
        cell = tally.setdefault(score, [0.0, 0.0])
        cell[0] += q
        cell[1] += 1 - q
    want = roc_auc_score(np.r_[np.ones(400), np.zeros(400)], np.r_[s, s], sample_weight=np.r_[p, 1 - p])
    assert expected_auc(tally) == pytest.approx(want, rel=1e-12)


def test_cbpe_windows_merge_and_estimate_without_labels() -> None:
    d = dataset(3, seed=11)
    est = CBPE(scores=["p0", "p1", "p2"], min_rows=1, calibration="isotonic").fit(table(d, "ref", truth=True))
    whole = est.reset().update(table(d, "ana", truth=False)).result().extra["metrics"]
    n = len(d["ana_pred"])
    a = CBPE(scores=["p0", "p1", "p2"], min_rows=1, calibration="isotonic").fit(table(d, "ref", truth=True))
    b = CBPE(scores=["p0", "p1", "p2"], min_rows=1, calibration="isotonic").fit(table(d, "ref", truth=True))
    a.update({c: v[: n // 3] for c, v in table(d, "ana", truth=False).items()})
    b.update({c: v[n // 3:] for c, v in table(d, "ana", truth=False).items()})
    merged = a.merge(b).result().extra["metrics"]
    for m in METRICS:
        assert merged[m] == pytest.approx(whole[m], rel=1e-9, abs=1e-12), m


def test_cbpe_fires_on_an_estimated_drop() -> None:
    """A shift into the region where the model is unsure lowers the estimate without labels."""
    rng = np.random.default_rng(2)
    p = rng.random(20_000)
    y = (rng.random(20_000) < p).astype(int)
    est = CBPE(scores="p", max_drop=0.05, min_rows=500).fit({"p": p[:10_000], "truth": y[:10_000],
                                                             "prediction": (p[:10_000] > 0.5).astype(int)})
    sure = p[10_000:][np.abs(p[10_000:] - 0.5) > 0.3]
    unsure = p[10_000:][np.abs(p[10_000:] - 0.5) < 0.15]
    assert est.reset().update({"p": sure, "prediction": (sure > 0.5).astype(int)}).result().is_drift is False
    r = est.reset().update({"p": unsure, "prediction": (unsure > 0.5).astype(int)}).result()
    assert r.is_drift is True and r.distance > 0.05


if __name__ == "__main__":  # pragma: no cover - `python tests/unit/test_performance_cbpe.py` for the figures
    sys.exit(pytest.main([__file__, "-s", "-q"]))

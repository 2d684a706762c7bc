"""Independent oracles for the bugs of issue 16 that the suite did not catch.

Each test names the bug it exists for (planted locally to prove the test fails on it). Every
statistical assertion states its false-failure probability: the chance the assertion fails on
correct code, over the random draws (or hash values) it depends on. ``bench/seed_sweep.py``
runs the seeded ones across many seeds.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from detectors.common.corrections import correct
from detectors.drift.hellinger import HellingerDrift
from detectors.drift.jensen_shannon import JSDrift
from detectors.drift.ks import KSDrift
from detectors.drift.psi import PSIDrift
from detectors.drift.wasserstein import WassersteinDrift
from detectors.runtime.windows import CountWindow, TimeWindow, window_from_state
from inferwatch.config import load_config
from inferwatch.metrics import Metrics
from inferwatch.record import InferenceRecord, record_documents
from inferwatch.sqlite_log import SQLiteLog
from inferwatch.workers import AuditWorker
from tests.optional import require
from tests.seeds import swept

T0 = datetime(2026, 1, 1, tzinfo=UTC)  # a multiple of every step used below since the epoch
SEED = 20261201
"""Seeds every draw below (the reservoir's through its pane key); ``bench/seed_sweep.py`` re-runs
the statistical tests over many (tests/seeds.py)."""


# --- Benjamini-Hochberg against its definition and statsmodels ------------------------------------


def _bh_brute_force(p: list[float], alpha: float) -> tuple[list[bool], float]:
    """BH from its definition, written without numpy tricks: k = the largest rank i with
    p_(i) < alpha * i / n (strict, alibi-detect's convention); reject every p <= p_(k).
    The batch p-value is the smallest BH-adjusted p-value, min_i p_(i) * n / i (capped at 1)."""
    n = len(p)
    ranked = sorted(p)
    k = 0
    for i in range(1, n + 1):
        if ranked[i - 1] < alpha * i / n:
            k = i
    reject = [k > 0 and v <= ranked[k - 1] for v in p]
    adjusted = min(1.0, min(ranked[i - 1] * n / i for i in range(1, n + 1)))
    return reject, adjusted


def _p_vectors(rng: np.random.Generator, count: int) -> list[list[float]]:
    out = []
    for _ in range(count):
        n = int(rng.integers(1, 30))
        null = rng.uniform(size=n)
        signal = rng.uniform(size=n) ** rng.uniform(2, 12)  # small p-values of varying strength
        out.append(np.where(rng.uniform(size=n) < rng.uniform(), signal, null).tolist())
    return out


def test_fdr_matches_benjamini_hochberg_by_definition() -> None:
    """Plant caught: the batch p-value of the FDR correction taken as max(p_(i) n / i) (a
    p-value above alpha while drift is flagged). Exact oracle, no statistics."""
    rng = np.random.default_rng(SEED)
    alphas = (0.01, 0.05, 0.1)
    for p in _p_vectors(rng, 3000):
        alpha = alphas[int(rng.integers(len(alphas)))]
        got = correct(p, alpha, "fdr")
        reject, adjusted = _bh_brute_force(p, alpha)
        assert got.feature_drift.tolist() == reject, (p, alpha)
        assert got.is_drift == any(reject)
        assert math.isclose(got.p_value, adjusted, rel_tol=1e-12, abs_tol=1e-15)
        # the reported p-value says what the decision says: drift exactly when it is below alpha
        assert got.is_drift == (got.p_value < alpha), (p, alpha, got)


def test_fdr_matches_statsmodels() -> None:
    """The same against statsmodels' ``multipletests(method='fdr_bh')`` (which rejects at
    ``<=``; equality has probability 0 for these continuous p-values)."""
    multitest = require("statsmodels.stats.multitest", extra="dev")
    rng = np.random.default_rng(SEED + 1)
    for p in _p_vectors(rng, 1000):
        reject, corrected, _, _ = multitest.multipletests(p, alpha=0.05, method="fdr_bh")
        got = correct(p, 0.05, "fdr")
        assert got.feature_drift.tolist() == reject.tolist()
        assert math.isclose(got.p_value, float(corrected.min()), rel_tol=1e-12, abs_tol=1e-15)


def test_fdr_decision_of_a_detector_matches_statsmodels() -> None:
    """Through a detector: its batch decision and p-value are BH over its own per-feature
    p-values, and a flagged window never reports a p-value above alpha. No statistical
    assertion: the oracle is computed from the same per-feature p-values."""
    multitest = require("statsmodels.stats.multitest", extra="dev")
    rng = np.random.default_rng(SEED + 2)
    names = [f"f{i}" for i in range(8)]
    det = KSDrift(p_val=0.05, correction="fdr").fit({f: rng.normal(size=2000).tolist() for f in names})
    flagged = 0
    for w in range(40):
        shift = rng.uniform(0, 0.25, size=len(names)) * (rng.uniform(size=len(names)) < 0.4)
        window = {f: rng.normal(s, size=300).tolist() for f, s in zip(names, shift, strict=True)}
        r = det.reset().update(window).result()
        p = [r.feature_p_values[f] for f in names]
        reject, corrected, _, _ = multitest.multipletests(p, alpha=0.05, method="fdr_bh")
        assert r.is_drift == bool(reject.any()), w
        assert [r.feature_drift[f] for f in names] == reject.tolist(), w
        assert r.p_value is not None and math.isclose(r.p_value, float(corrected.min()), rel_tol=1e-12)
        if r.is_drift:
            flagged += 1
            assert r.p_value <= 0.05
    assert 0 < flagged < 40  # both branches exercised (checked for this seed; exact, not statistical)


# --- windows ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["bonferroni", "fdr", "none"])
def test_corrections_with_nothing_tested_decide_nothing(method: str) -> None:
    for p in ([], [float("nan")] * 3, [None, None]):
        c = correct(p, 0.05, method)
        assert c.is_drift is False
        assert math.isnan(c.p_value) and math.isnan(c.feature_threshold)
        assert c.feature_drift.dtype == bool and c.feature_drift.shape == (len(p),) and not c.feature_drift.any()


def test_corrections_ignore_missing_p_values_and_default_to_bonferroni() -> None:
    c = correct([None, 0.004, float("nan"), 0.3], 0.05)  # None is missing, like nan
    assert c.is_drift is True and c.feature_threshold == 0.025  # n = 2 tested
    assert c.p_value == pytest.approx(0.008)
    assert c.feature_drift.tolist() == [False, True, False, False]


def test_correction_none_is_each_feature_at_alpha() -> None:
    """``none``: drift where p < alpha, the batch p-value the smallest p (by definition)."""
    c = correct([0.02, 0.03, 0.5, 0.05], 0.05, "none")
    assert c.is_drift and c.p_value == 0.02 and c.feature_threshold == 0.05
    assert c.feature_drift.tolist() == [True, True, False, False]  # 0.05 is not < 0.05
    quiet = correct([0.2, 0.05], 0.05, "none")
    assert not quiet.is_drift and quiet.p_value == 0.05 and not quiet.feature_drift.any()


def test_an_unknown_correction_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="correction must be one of"):
        correct([0.01, 0.2], 0.05, "holm")


def test_corrections_are_strict_at_their_cut() -> None:
    """alibi-detect's rule: p < cut (a p-value equal to the cut is not drift)."""
    alpha, n = 0.05, 2
    assert not correct([alpha / n, 0.9], alpha, "bonferroni").is_drift
    assert correct([np.nextafter(alpha / n, 0), 0.9], alpha, "bonferroni").is_drift
    # BH: p_(1) = alpha * 1 / n and p_(2) = 0.9 > alpha: nothing below its line
    fdr = correct([alpha / n, 0.9], alpha, "fdr")
    assert not fdr.is_drift and fdr.feature_threshold == alpha / n
    assert fdr.feature_drift.dtype == bool and fdr.feature_drift.tolist() == [False, False]
    assert fdr.p_value == pytest.approx(min(alpha / n * n / 1, 0.9 * n / 2))


def test_sliding_time_window_spans_its_size() -> None:
    """Plant caught: a sliding window's start computed as end - step instead of end - size."""
    w = TimeWindow(seconds=60, step=20)
    closed = []
    for s in range(200):
        closed += w.add({"t": [s]}, T0 + timedelta(seconds=s))
    assert len(closed) >= 5
    for c in closed:
        assert c.start is not None and c.end is not None
        assert c.end - c.start == timedelta(seconds=60)
        assert all(c.start <= T0 + timedelta(seconds=t) < c.end for t in c.rows["t"])
        assert c.size == 60  # full windows: one row per second over 60 s
    ends = [c.end for c in closed]
    assert all(b - a == timedelta(seconds=20) for a, b in itertools.pairwise(ends))


def test_late_rows_are_counted_per_row() -> None:
    """Plant caught: late rows counted once per late batch instead of once per row."""
    w = TimeWindow(seconds=10)
    w.add({"x": [1, 2, 3]}, T0 + timedelta(seconds=30))
    w.add({"x": [0] * 5}, T0)  # five late rows in one batch
    w.add({"x": [0] * 2}, T0 + timedelta(seconds=1))
    assert w.late_rows == 7


# chi-squared quantile for each uniformity assertion below: with 2 assertions at 5e-4 each, the
# test's false-failure probability is <= 1e-3. Sampling without replacement makes decile counts
# hypergeometric, with less variance than the multinomial the chi-squared law assumes, so the
# true probability is lower still.
_CHI2_CUT = float(stats.chi2.ppf(1 - 5e-4, df=9))


def _decile_chi2(kept: list[int], total: int) -> float:
    counts = np.bincount(np.asarray(kept) * 10 // total, minlength=10)
    expected = len(kept) / 10
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("batch", [5000, 100, 1])
def test_reservoir_sample_is_uniform(batch: int) -> None:
    """Plant caught: a reservoir that keeps only recent rows (a "uniform" sample of 0..4,999
    with mean ~4,900). The kept row indices are tested against uniform over the stream (a
    chi-squared test over deciles; false-failure probability <= 5e-4 per parametrisation over
    the window's hash draws) and their mean against its exact sampling distribution."""
    total, keep = 5000, 500
    w = TimeWindow(seconds=60, max_rows=keep)
    at = T0 + timedelta(minutes=swept(SEED) % 1_000_000, seconds=1)  # the pane key seeds the reservoir's draws
    for start in range(0, total, batch):
        w.add({"i": list(range(start, start + batch))}, at)
    (c,) = w.flush()
    kept = c.rows["i"]
    assert c.size == keep and c.seen == total
    assert len(set(kept)) == keep and set(kept) <= set(range(total))
    assert _decile_chi2(kept, total) < _CHI2_CUT
    # mean of a uniform 500-subset of 0..4999: expectation 2499.5, sd = sqrt((N^2-1)/12 / n *
    # (N-n)/(N-1)); |z| > 3.48 has probability 5e-4 (normal approximation, n = 500)
    sd = math.sqrt((total**2 - 1) / 12 / keep * (total - keep) / (total - 1))
    assert abs(np.mean(kept) - (total - 1) / 2) / sd < 3.48


# --- distance detectors on null windows --------------------------------------------------------------


def _draw(rng: np.random.Generator, n: int, categorical: bool = True) -> dict[str, list]:
    d: dict[str, list] = {"normal": rng.normal(size=n).tolist(), "uniform": rng.uniform(size=n).tolist()}
    if categorical:
        d["colour"] = rng.choice(["red", "green", "blue", "grey"], p=[0.4, 0.3, 0.2, 0.1], size=n).tolist()
    return d


# The rule-of-thumb thresholds (explicit ``threshold``; the default is a calibrated test, see
# tests/unit/test_distance_calibration.py).
RULE_OF_THUMB = {PSIDrift: 0.2, JSDrift: 0.1, HellingerDrift: 0.1, WassersteinDrift: 0.1}


# False-failure probability of the null assertions below (5 windows of 5,000 rows against a
# 20,000-row reference, every feature at its rule-of-thumb threshold):
# * PSI ~ (1/n + 1/m) chi2_9 = 2.5e-4 chi2_9 under the null: > 0.2 needs chi2_9 > 800 (< 1e-100).
# * Hellinger H^2 ~ (1/8)(1/n + 1/m) chi2_9: H > 0.1 needs chi2_9 > 320 (< 1e-60).
# * Jensen-Shannon (base 2) JSD ~ (1/(8 ln 2))(1/n + 1/m) chi2_9: distance > 0.1 needs
#   chi2_9 > 222 (< 1e-40).
# * Wasserstein / reference sd: measured null mean 0.021, sd 0.0073 over 4,000 windows of this
#   size (normal and uniform features); 0.1 is 11 sd away (Gaussian tail < 1e-20).
# Summed over 5 windows and 3 features: far below 1e-3.
@pytest.mark.parametrize("factory,categorical", [
    (PSIDrift, True), (JSDrift, True), (HellingerDrift, True), (WassersteinDrift, False),
])
def test_distance_detectors_stay_quiet_on_null_windows_and_fire_on_a_shift(factory, categorical) -> None:
    """Plant caught: a distance detector reporting drift on every window (e.g. ``dist >= 0``)."""
    rng = np.random.default_rng(SEED + 3)
    det = factory(threshold=RULE_OF_THUMB[factory]).fit(_draw(rng, 20_000, categorical))
    for w in range(5):
        r = det.reset().update(_draw(rng, 5000, categorical)).result()
        assert not r.is_drift, (w, r.feature_distances)
        assert not any(r.feature_drift.values())
        assert max(r.feature_distances.values()) < det.threshold
    # not vacuous: a one-sd shift of one feature is flagged on that feature only. Power: the
    # shifted distances are ~0.3 (PSI ~1) against null sd < 0.01 (probability of a miss < 1e-20).
    shifted = _draw(rng, 5000, categorical)
    shifted["normal"] = (np.asarray(shifted["normal"]) + 1.0).tolist()
    r = det.reset().update(shifted).result()
    assert r.is_drift and r.drifted_features == ["normal"], r.feature_distances


# --- a feedback record's rows --------------------------------------------------------------------------


def test_a_feedback_records_rows_are_its_truth_rows() -> None:
    """Plant caught: the record's row count ignoring ``truth`` (a feedback record of 3 labels
    counted as 1 row: the Elasticsearch store looks up the row documents a label lands on by
    ``n_rows``, and the rows metric and the collector's answer count it). Exact, no statistics."""
    fb = InferenceRecord(id="fb", model="m", part="feedback", truth={"label": [1, 0, 1]})
    assert fb.n_rows == 3
    assert fb.doc_ids() == ["fb-0", "fb-1", "fb-2"] == [d["doc_id"] for d in record_documents(fb)]
    both = InferenceRecord(id="r", model="m", inputs={"x": [1.0]}, outputs={"y": [0]}, truth={"label": [1, 0]})
    assert both.n_rows == 2 == len(record_documents(both))


# --- the audit worker commits only what is durable ----------------------------------------------------


class _Store:
    """An audit-store double: refuses every write (``fail``) or records the log position seen
    by each write."""

    def __init__(self, lg: SQLiteLog, topic: str, group: str, fail: bool) -> None:
        self.lg, self.topic, self.group, self.fail = lg, topic, group, fail
        self.lag_at_write: list[int] = []

    def write_records(self, records):
        self.lag_at_write.append(self.lg.group_lag(self.topic, self.group))
        if self.fail:
            raise RuntimeError("disk gone")  # not backpressure: the worker stops, uncommitted
        return sum(r.n_rows for r in records)

    write_detections = write_deadletters = write_records


def _worker(tmp_path, fail: bool) -> tuple[AuditWorker, SQLiteLog, _Store, str, str]:
    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path)})
    lg = SQLiteLog(tmp_path / "log.db")
    topic, group = cfg.log.records_topic, cfg.audit.group
    lg.append(topic, [(None, InferenceRecord(id=f"r{i}", model="m", inputs={"x": [i]}).to_json())
                      for i in range(5)])
    store = _Store(lg, topic, group, fail)
    return AuditWorker(cfg, lg, store, Metrics()), lg, store, topic, group  # type: ignore[arg-type]


def test_a_failed_audit_write_commits_nothing(tmp_path) -> None:
    """Plants caught deterministically (no timing): the position committed before the write
    returned (in ``_finish`` before ``fut.result()``, or right after the write is submitted).
    The store refuses the write; nothing may be committed, so a restart re-reads all 5."""
    worker, lg, store, topic, group = _worker(tmp_path, fail=True)
    assert worker.step() == 5
    with contextlib.suppress(RuntimeError):  # close() may log the refusal instead of raising it
        worker.close()
    assert store.lag_at_write == [5]
    assert lg.group_lag(topic, group) == 5
    lg.close()


def test_a_durable_audit_write_is_committed_after_it_returns(tmp_path) -> None:
    worker, lg, store, topic, group = _worker(tmp_path, fail=False)
    assert worker.step() == 5
    worker.close()
    assert store.lag_at_write == [5]  # nothing was committed while the write ran
    assert lg.group_lag(topic, group) == 0 and worker.documents == 5
    lg.close()


# --- window state and validation (mutation survivors of detectors/runtime/windows.py) ----------------


def _closed(ws) -> list[tuple]:
    return [(c.rows, c.start, c.end, c.size, c.seen) for c in ws]


@pytest.mark.parametrize("make", [lambda: TimeWindow(seconds=60, step=20, max_rows=5),
                                  lambda: CountWindow(size=6, step=2)])
def test_window_state_round_trip_continues_identically(make) -> None:
    """A window restored from its JSON state closes exactly the windows the original closes
    (panes, sampled rows, times, late-row counts), and so does a restore of a fresh one."""
    import json

    fresh = make()
    assert _closed(window_from_state(json.loads(json.dumps(fresh.state()))).flush()) == _closed(fresh.flush())
    a = make()
    for s in range(0, 90, 3):
        a.add({"x": list(range(s, s + 4)), "y": [str(s)] * 4}, T0 + timedelta(seconds=s))
    a.add({"x": [-1, -2]}, T0)  # late rows (time windows), a missing column
    b = window_from_state(json.loads(json.dumps(a.state())))
    assert type(b) is type(a) and b.state() == a.state()
    for s in range(90, 200, 7):
        batch, at = {"x": [s, s + 1]}, T0 + timedelta(seconds=s)
        assert _closed(b.add(batch, at)) == _closed(a.add(batch, at))
    assert _closed(b.advance(T0 + timedelta(seconds=400))) == _closed(a.advance(T0 + timedelta(seconds=400)))
    assert _closed(b.flush()) == _closed(a.flush())
    assert getattr(b, "late_rows", 0) == getattr(a, "late_rows", 0)


def test_window_sizes_must_be_positive() -> None:
    for bad in (lambda: CountWindow(size=0), lambda: CountWindow(size=-3), lambda: TimeWindow(seconds=0),
                lambda: TimeWindow(seconds=10, step=0), lambda: TimeWindow(seconds=10, max_rows=0)):
        with pytest.raises(ValueError):
            bad()

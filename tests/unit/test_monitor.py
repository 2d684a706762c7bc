"""Monitor: config validation, drift in a shifted window, snapshot/restore mid-window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from inferwatch.errors import DetectorError
from inferwatch.record import InferenceRecord
from inferwatch.references import ReferenceStore
from inferwatch.wiring import monitor_from as build_monitor

T0 = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture()
def store(tmp_path) -> ReferenceStore:
    rng = np.random.default_rng(0)
    s = ReferenceStore(tmp_path / "refs")
    s.register("m", pd.DataFrame({"a": rng.normal(size=3000), "b": rng.normal(size=3000)}), version="v1")
    return s


def _records(n_records: int, rows: int, shift_from: int | None = None, seed: int = 1, model: str = "m"):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_records):
        a = rng.normal(size=rows)
        if shift_from is not None and i >= shift_from:
            a = a + 1.0
        out.append(
            InferenceRecord(
                id=f"r{i}",
                model=model,
                version="v1",
                timestamp=T0 + timedelta(seconds=i),
                inputs={"a": a.tolist(), "b": rng.normal(size=rows).tolist()},
                outputs={"y": [0.5] * rows},
            )
        )
    return out


CFG = {"window": {"type": "count", "size": 100}, "detectors": [{"type": "ks", "p_val": 0.01}]}


def test_drift_found_in_shifted_window(store: ReferenceStore) -> None:
    mon = build_monitor(CFG, store)
    recs = _records(40, 10, shift_from=20)
    dets = mon.process(recs)
    assert [d.window_size for d in dets] == [100] * 4
    # which windows and features fire, from scipy and the Bonferroni definition (not a fixed
    # [False, False, True, True] / ["a"]: at p_val 0.01 a null window fires with probability up to
    # 1%, feature b of a shifted window up to 0.5%)
    ref = store.load(store.latest("m", "v1").id)  # type: ignore[union-attr]
    for k, d in enumerate(dets):
        rows = {f: np.concatenate([r.inputs[f] for r in recs[10 * k : 10 * (k + 1)]]) for f in ("a", "b")}
        p = {f: ks_2samp(ref[f], rows[f], method="asymp").pvalue for f in rows}
        assert d.feature_p_values == pytest.approx(p, rel=1e-9)
        assert d.drifted_features == [f for f in rows if p[f] < 0.01 / 2], (k, p)
        assert d.is_drift == (min(p.values()) < 0.01 / 2)
    # the shifted windows fire on "a": a 1 sd shift of 100 rows against 3,000 (KS D ~ 0.38 against
    # the Bonferroni cut's ~0.17). A miss measured: over 1,000,000 simulated shifted windows (200
    # references) the largest asymptotic p-value was 4e-4 against the cut 5e-3, so a miss has
    # probability < 3e-6 per window (95% bound), < 6e-6 a run
    assert all(d.is_drift and "a" in d.drifted_features for d in dets[2:]), [d.feature_p_values for d in dets]
    d = dets[2]
    assert d.model == "m" and d.version == "v1" and d.detector == "ks" and d.kind == "drift"
    assert d.reference_id == store.latest("m", "v1").id  # type: ignore[union-attr]
    assert d.window_start == T0 + timedelta(seconds=20) and d.window_end == T0 + timedelta(seconds=29)


def test_snapshot_restore_mid_window_equals_uninterrupted(store: ReferenceStore) -> None:
    for window in ({"type": "count", "size": 70, "step": 35}, {"type": "time", "seconds": 10, "step": 5}):
        cfg = {**CFG, "window": window}
        recs = _records(60, 7, shift_from=30)
        whole = build_monitor(cfg, store)
        expected = whole.process(recs) + whole.flush()
        first = build_monitor(cfg, store)
        got = first.process(recs[:23])
        snap = first.snapshot()
        resumed = build_monitor(cfg, store)  # a new process: restart
        resumed.restore(snap)
        got += resumed.process(recs[23:]) + resumed.flush()
        key = [(d.id, d.window_size, d.is_drift, d.p_value) for d in expected]
        assert [(d.id, d.window_size, d.is_drift, d.p_value) for d in got] == key
        # not vacuous: drift seen. Windows of 70 rows wholly past the 1 sd shift (row 210 of 420)
        # each miss with probability ~4e-6 (2 of 500,000 simulated; largest p 0.01 against the cut
        # 0.005), so this fails with probability < 1e-5
        assert any(d.is_drift for d in got)


def test_skips_models_without_reference_and_reports_missing_columns(store: ReferenceStore) -> None:
    mon = build_monitor(CFG, store)
    assert mon.process(_records(5, 10, model="unknown")) == []
    assert mon.stats["skipped"] == 5
    recs = _records(10, 10)
    for r in recs:
        r.inputs = {"a": r.inputs["a"]}  # type: ignore[index]
    dets = mon.process(recs)
    quality = [d for d in dets if d.kind == "quality"]
    assert len(quality) == 1 and quality[0].extra["missing_columns"] == ["b"]
    drift = [d for d in dets if d.kind == "drift"]
    assert drift[0].extra["missing_features"] == ["b"] and "a" in drift[0].feature_p_values


def test_allow_list_and_outputs(store: ReferenceStore) -> None:
    mon = build_monitor({**CFG, "models": ["other"]}, store)
    assert mon.process(_records(20, 10)) == [] and mon.stats["ignored"] == 20
    cfg = {"window": {"type": "count", "size": 50}, "detectors": [{"type": "ks", "on": "outputs"}]}
    dets = build_monitor(cfg, store).process(_records(5, 10))
    # the reference has no output column `y`: a quality detection, not a crash
    assert [d.kind for d in dets] == ["quality"] and dets[0].detector == "schema"
    assert "ks_outputs" in dets[0].extra["fit_errors"]


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"windw": {}}, "unknown monitor key"),
        ({"window": {"type": "hour"}}, "window.type"),
        ({"window": {"type": "count", "size": 10, "step": 3}}, "step"),
        ({"window": {"type": "count", "sise": 10}}, "sise"),
        ({"detectors": [{"type": "nope"}]}, r"detectors\[0\].type"),
        ({"detectors": [{"type": "ks", "pval": 0.1}]}, "pval"),
        ({"detectors": [{"type": "ks", "correction": "holm"}]}, "correction"),
        ({"detectors": [{"type": "ks", "on": "everything"}]}, r"detectors\[0\].on"),
        ({"detectors": [{"type": "ks"}, {"type": "ks"}]}, "duplicate"),
        ({"models": "m"}, "models"),
    ],
)
def test_config_errors_name_the_key(cfg, match, store: ReferenceStore) -> None:
    with pytest.raises(DetectorError, match=match):
        build_monitor(cfg, store)


def test_restore_rejects_garbage(store: ReferenceStore) -> None:
    mon = build_monitor(CFG, store)
    with pytest.raises(DetectorError):
        mon.restore(b"not json")
    with pytest.raises(DetectorError, match="window"):
        build_monitor({**CFG, "window": {"type": "count", "size": 5}}, store).restore(mon.snapshot())


def test_windows_with_equal_times_and_sizes_keep_their_own_ids(store: ReferenceStore) -> None:
    """Issue 11: one batch record of 300 rows fills three windows with the same start, end and
    size; each keeps a detection of its own (ids were equal, so the audit store kept one), and
    the ids are the same in a replay and after a restore from a snapshot taken between them."""
    rng = np.random.default_rng(5)
    recs = [InferenceRecord(id=f"b{i}", model="m", version="v1", timestamp=T0,
                            inputs={"a": rng.normal(size=300).tolist(), "b": rng.normal(size=300).tolist()})
            for i in range(2)]
    first = build_monitor(CFG, store).process(recs)
    assert len(first) == 6
    assert {(d.window_start, d.window_end, d.window_size) for d in first} == {(T0, T0, 100)}
    ids = [d.id for d in first]
    assert len(set(ids)) == 6
    assert [d.extra["window_seq"] for d in first] == list(range(6))
    assert [d.id for d in build_monitor(CFG, store).process(recs)] == ids
    resumed = build_monitor(CFG, store)
    part1 = resumed.process(recs[:1])
    restored = build_monitor(CFG, store)
    restored.restore(resumed.snapshot())
    assert [d.id for d in part1 + restored.process(recs[1:])] == ids


def test_detection_ids_differ_by_each_identity_part() -> None:
    from inferwatch.record import Detection

    base = dict(detector="ks", kind="drift", model="m", version="v1", window_start=T0, window_end=T0,
                window_size=100, reference_id="r")
    plain = Detection(**base).id  # type: ignore[arg-type]
    variants = [Detection(**{**base, "model": "m2"}), Detection(**{**base, "version": "v2"}),  # type: ignore[arg-type]
                Detection(**{**base, "detector": "cvm"})]  # type: ignore[arg-type]
    for k, v in (("on", "outputs"), ("partition", 1), ("window_seq", 3), ("record_id", "r9")):
        d = Detection(**base)  # type: ignore[arg-type]
        d.extra[k] = v
        variants.append(d)
    ids = [d.id for d in variants]
    assert plain not in ids and len(set(ids)) == len(ids)
    again = Detection(**base)  # type: ignore[arg-type]
    again.extra["rows_seen"] = 5  # not part of the identity
    assert again.id == plain

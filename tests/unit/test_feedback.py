"""Ground truth through the collector (embedded pipeline): the feedback endpoint's three shapes,
labels before and after their prediction, partial labels that do not wipe earlier ones, the
label on the audit document, the realized figures and the metrics."""

from __future__ import annotations

import httpx
import numpy as np
import orjson
import pytest
from sklearn.metrics import accuracy_score

from collectors.feedback import feedback_envelopes
from inferwatch.audit import SearchQuery
from inferwatch.config import load_config
from inferwatch.pipeline import Pipeline
from inferwatch.record import Detection


@pytest.fixture
def pipe(tmp_path):
    cfg = load_config(None, env={}, overrides={
        "data_dir": str(tmp_path / "d"), "collector.port": 0,
        "detect.performance": {"classes": [0, 1], "prediction": "label", "scores": "proba",
                               "window_seconds": 3600, "min_labelled": 1,
                               "reference_metrics": {"accuracy": 0.95}, "max_drop": 0.05}})
    seen: list[Detection] = []
    p = Pipeline(cfg, ["collector", "audit", "detect"], on_detection=seen.append)
    p.seen = seen  # type: ignore[attr-defined]
    p.start()
    yield p
    p.stop()


def test_labels_in_three_shapes_before_and_after_their_predictions(pipe):
    rng = np.random.default_rng(3)
    n_req, rows = 30, 4
    y = rng.integers(0, 2, (n_req, rows))
    pred = np.where(rng.random((n_req, rows)) < 0.8, y, 1 - y)
    proba = np.where(pred == 1, 0.7, 0.3)
    ts = "2026-06-01T10:15:00Z"
    with httpx.Client(base_url=f"http://127.0.0.1:{pipe.bound_port}", timeout=30) as c:
        # requests 0-9: plain labels, one row per item, first (before any prediction), shuffled
        early = [{"id": f"q{i}", "row": j, "truth": int(y[i, j])} for i in range(10) for j in range(rows)]
        r = c.post("/v1/feedback", params={"model": "churn"}, json=[early[k] for k in rng.permutation(len(early))])
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == 10
        body = [{"model": "churn", "version": "v1", "id": f"q{i}", "timestamp": ts,
                 "outputs": {"label": pred[i].tolist(), "proba": proba[i].tolist()}} for i in range(n_req)]
        assert c.post("/v1/records", json=body).status_code == 202
        # requests 10-19: rows 0-1 as a plain list first, then all rows as a KServe / OIP response-shaped
        # tensor (rows 0-1 labelled again, with the same labels)
        for i in range(10, 20):
            first = {"id": f"q{i}", "model": "churn", "truth": [int(v) for v in y[i, :2]]}
            assert c.post("/v1/feedback", json=first).status_code == 202
            oip = {"id": f"q{i}", "model_name": "churn", "outputs": [
                {"name": "truth", "shape": [rows], "datatype": "INT64", "data": [int(v) for v in y[i]]}]}
            assert c.post("/v1/feedback", json=oip).status_code == 202
        # requests 20-24: Seldon Core feedback bodies (the prediction's puid), 25-29 never labelled
        for i in range(20, 25):
            seldon = {"response": {"meta": {"puid": f"q{i}"}, "data": {"ndarray": pred[i].tolist()}},
                      "truth": {"data": {"ndarray": y[i].tolist()}}, "reward": 1.0}
            assert c.post("/v1/feedback", params={"model": "churn"}, json=seldon).status_code == 202
        # refused items, with reasons
        bad = c.post("/v1/feedback", json=[{"truth": 1, "model": "churn"}, {"id": "x", "truth": 1},
                                           {"id": "x", "model": "churn", "row": -1, "truth": 1}])
        assert bad.status_code == 400
        assert bad.json()["rejected"] == 3
        reasons = [e["error"] for e in bad.json()["results"] if e["status"] == "deadlettered"]
        assert "no 'id'" in reasons[0] and "no model" in reasons[1] and "'row'" in reasons[2]
        assert pipe.wait_idle(timeout=60)
        metrics = c.get("/metrics").text

    labelled = np.zeros((n_req, rows), bool)
    labelled[:25] = True
    want = accuracy_score(y[labelled], pred[labelled])
    latest = [d for d in pipe.seen if d.detector == "performance"][-1]
    assert latest.window_size == n_req * rows and latest.extra["labelled"] == labelled.sum()
    assert latest.extra["metrics"]["accuracy"] == pytest.approx(want, rel=1e-12)
    assert latest.is_drift is (0.95 - want > 0.05)

    store = pipe.store
    doc = store.get("q12-3")
    assert doc["truth"] == {"truth": int(y[12, 3])} and doc["output"]["label"] == int(pred[12, 3])
    assert doc["n_rows"] == rows and doc["source"] == "json"  # the prediction's, not the feedback's
    assert store.get("q3-0")["truth"] == {"truth": int(y[3, 0])}  # label before prediction, merged
    assert "truth" not in store.get("q27-1")
    assert any(d["detector"] == "performance" for d in store.search(SearchQuery(kind="detections", model="churn")))

    assert f'inferwatch_model_performance{{method="realized",metric="accuracy",model="churn",version="v1"}} ' \
           f'{want}' in metrics
    assert 'inferwatch_model_performance_labelled_ratio{model="churn",version="v1"}' in metrics
    labels_total = 10 * rows + 10 * (2 + rows) + 5 * rows  # labels received, repeats included
    assert f'inferwatch_feedback_labels_total{{model="churn",version=""}} {float(labels_total)}' in metrics


def test_feedback_envelopes_merge_rows_and_refuse_with_reasons():
    envs, bad = feedback_envelopes([{"id": "a", "row": 2, "truth": "spam"}, {"id": "a", "row": 0, "truth": "ham"},
                                    {"id": "a", "truth": [1, 2], "row": 1}, {"id": "b", "truth": {"x": 1}},
                                    "nope"], model="m")
    assert [(e.fields["id"], e.fields["truth"]) for e in envs] == [("a", {"truth": ["ham", None, "spam"]})]
    assert len(bad) == 3 and all(dl.source == "feedback" for dl in bad)
    assert orjson.loads(bad[2].raw) == "nope"


def test_feedback_topic_collector_turns_messages_into_feedback_records(tmp_path):
    from collectors.feedback_topic import FeedbackTopicCollector
    from inferwatch.ingest import Ingestor
    from inferwatch.metrics import Metrics
    from inferwatch.record import DeadLetter, InferenceRecord
    from inferwatch.sqlite_log import SQLiteLog
    from tests.waiting import wait_until

    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path), "collector.kinds": ["feedback_topic"]})
    lg = SQLiteLog(cfg.log_path)
    lg.create_topics([cfg.log.records_topic, cfg.log.deadletter_topic, cfg.collector.feedback_topic])
    lg.append(cfg.collector.feedback_topic, [
        (None, orjson.dumps([{"id": "a", "row": 1, "truth": 0, "model": "m"}, {"id": "b", "truth": [1], "model": "m"}])),
        (None, orjson.dumps({"id": "a", "row": 0, "truth": 1, "model": "m"})),
        (None, b"\xffnot json"),
        (None, orjson.dumps({"id": "c", "truth": 1})),  # no model: refused with the reason
    ])
    col = FeedbackTopicCollector(cfg.collector)
    col.start(Ingestor(lg, cfg, Metrics()))
    try:
        wait_until(lambda: lg.size(cfg.log.records_topic) >= 2 and lg.size(cfg.log.deadletter_topic) >= 2, 30,
                   "the feedback records")
        wait_until(lambda: lg.group_lag(cfg.collector.feedback_topic, cfg.collector.feedback_group) == 0, 30,
                   "the feedback topic committed")
    finally:
        col.stop()
    assert col.error is None
    recs = [InferenceRecord.from_json(e.value) for e in lg.consumer(cfg.log.records_topic, "t").poll(10)]
    # one poll's items of a request merge into one record (later items win per row)
    assert sorted((r.id, r.part, r.truth["truth"]) for r in recs) == [  # type: ignore[index]
        ("a", "feedback", [1, 0]), ("b", "feedback", [1])]
    letters = [DeadLetter.from_json(e.value) for e in lg.consumer(cfg.log.deadletter_topic, "t").poll(10)]
    assert sorted(dl.reason.split(":")[0] for dl in letters) == ["item 3", "not JSON"]  # the fourth item of the batch

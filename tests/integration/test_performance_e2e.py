"""Model quality on the real stack: a labelled data set (scikit-learn's handwritten digits) served
by two variants, one degraded, replayed through the collector; labels later, out of order, partly
missing, some before their prediction, through the feedback endpoint and the Kafka feedback
topic; the detect role restarted half-way and records re-sent. The realized figures per variant
and window equal scikit-learn's on the labelled rows, the variants comparison fires with the
accuracy difference's interval below zero, the labels sit on the audit documents in
Elasticsearch, and Prometheus scrapes the figures and fires InferwatchPerformanceDrop."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from inferwatch.config import load_config
from inferwatch.kafka_log import KafkaLog
from inferwatch.pipeline import Pipeline
from inferwatch.record import Detection
from tests.integration.scaled import delete_test_indices, e2e_overrides
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def served(rng: np.random.Generator):
    """Digits: v1 trained on 450 images (its reference accuracy on 150 more), v2 (the degraded
    canary) on 60 with a fifth of the labels wrong; the other 1,197 images are the live traffic."""
    x, y = load_digits(return_X_y=True)
    order = rng.permutation(len(y))
    train, live = order[:600], order[600:]
    v1 = LogisticRegression(max_iter=2000).fit(x[train[:450]], y[train[:450]])
    few = train[:60]
    noisy = np.where(rng.random(60) < 0.2, rng.integers(0, 10, 60), y[few])
    v2 = LogisticRegression(max_iter=2000).fit(x[few], noisy)
    version = np.where(rng.random(len(live)) < 0.5, "v1", "v2")
    proba = np.where((version == "v1")[:, None], v1.predict_proba(x[live]), v2.predict_proba(x[live]))
    ref_acc = float(accuracy_score(y[train[450:]], v1.predict(x[train[450:]])))  # v1 on held-out images
    return x[live], y[live], version, proba, proba.argmax(axis=1), ref_acc


def test_realized_figures_variants_labels_and_alert_on_the_real_stack(stack_env, tmp_path):
    tag = uuid.uuid4().hex[:8]
    model = f"digits-{tag}"
    rng = np.random.default_rng(14)
    _, y, version, proba, pred, ref_acc = served(rng)
    n = len(y)
    per_req = 3
    n_req = (n + per_req - 1) // per_req
    when = [T0 + timedelta(seconds=float(s)) for s in np.sort(rng.uniform(0, 2 * 3600, n_req))]
    # requests are per variant (a request goes to one predictor): group rows of one version
    rows_of: list[list[int]] = []
    for v in ("v1", "v2"):
        idx = np.flatnonzero(version == v)
        rows_of += [idx[k:k + per_req].tolist() for k in range(0, len(idx), per_req)]
    rng.shuffle(rows_of)  # type: ignore[arg-type]
    req_time = {r: when[r % len(when)] for r in range(len(rows_of))}

    labelled = rng.random(n) >= 0.15  # 15% never labelled
    cfg = load_config(None, env={}, overrides=e2e_overrides(stack_env, tag, tmp_path / "data", **{
        "collector.kinds": ["http", "feedback_topic"],
        "collector.feedback_topic": f"iwt-{tag}.feedback", "collector.feedback_group": f"feedback-{tag}",
        "detect.performance": {"classes": list(range(10)), "prediction": "label", "scores": "proba",
                               "window_seconds": 3600, "min_labelled": 30, "baseline": "v1",
                               "reference_metrics": {"accuracy": ref_acc}, "max_drop": 0.05},
    }))
    seen: list[Detection] = []
    target = Path(stack_env["INFERWATCH_STACK_DIR"]) / "prometheus" / "targets" / f"iwt-{tag}.json"
    kafka = KafkaLog(cfg.kafka)
    pipe = Pipeline(cfg, on_detection=seen.append)

    def post(c: httpx.Client, path: str, body: object) -> None:
        r = c.post(path, json=body)
        assert r.status_code == 202, r.text

    where = {i: (r, j) for r, idx in enumerate(rows_of) for j, i in enumerate(idx)}  # row -> (request, row)

    def label_items(rows: np.ndarray) -> list[dict]:
        return [{"id": f"{tag}-q{where[i][0]}", "row": where[i][1], "truth": int(y[i]), "model": model}
                for i in rows.tolist()]

    try:
        pipe.start()
        base = f"http://127.0.0.1:{pipe.bound_port}"
        target.write_text(json.dumps([{"targets": [f"127.0.0.1:{pipe.bound_port}"], "labels": {"test": tag}}]))
        early = np.flatnonzero(labelled & (rng.random(n) < 0.1))
        later = rng.permutation(np.setdiff1d(np.flatnonzero(labelled), early))
        with httpx.Client(base_url=base, timeout=60) as c:
            post(c, "/v1/feedback", label_items(early))  # before their predictions
            half = len(rows_of) // 2
            for part in (range(half), range(half, len(rows_of))):
                body = [{"model": model, "version": str(version[rows_of[r][0]]), "id": f"{tag}-q{r}",
                         "timestamp": req_time[r].isoformat(),
                         "outputs": {"label": [int(pred[i]) for i in rows_of[r]],
                                     "proba": [proba[i].tolist() for i in rows_of[r]]}} for r in part]
                for k in range(0, len(body), 50):
                    post(c, "/v1/records", body[k:k + 50])
                if part.start == 0:
                    # a restart of every role half-way, then a third of the first half re-sent
                    assert pipe.wait_idle(timeout=120)
                    pipe.stop()
                    pipe = Pipeline(cfg, on_detection=seen.append)
                    pipe.start()
                    base = f"http://127.0.0.1:{pipe.bound_port}"
                    target.write_text(json.dumps([{"targets": [f"127.0.0.1:{pipe.bound_port}"],
                                                   "labels": {"test": tag}}]))
                    c.base_url = httpx.URL(base)
                    post(c, "/v1/records", body[: len(body) // 3][:50])
        with httpx.Client(base_url=base, timeout=60) as c:
            first, second = later[: len(later) // 2], later[len(later) // 2:]
            items = label_items(first)
            order = rng.permutation(len(items))
            for k in range(0, len(items), 100):  # out of order, in batches, some twice
                post(c, "/v1/feedback", [items[i] for i in order[k:k + 100]])
            post(c, "/v1/feedback", [items[i] for i in order[:40]])
            topic_items = label_items(second)
            kafka.append(cfg.collector.feedback_topic,
                         [(None, orjson.dumps(topic_items[k:k + 25])) for k in range(0, len(topic_items), 25)])
            wait_until(lambda: pipe.wait_idle(timeout=5)
                       and kafka.group_lag(cfg.collector.feedback_topic, cfg.collector.feedback_group) == 0
                       and pipe.wait_idle(timeout=5), 240, "the pipeline to catch up")
            metrics = c.get("/metrics").text

        # realized figures: the newest revision of each (variant, window) against scikit-learn
        latest: dict[tuple[str | None, datetime | None], Detection] = {}
        for d in seen:
            if d.detector == "performance":
                latest[(d.version, d.window_start)] = d
        assert len(latest) == 4
        window_of = np.empty(n, dtype=object)
        for r, idx in enumerate(rows_of):
            for i in idx:
                window_of[i] = req_time[r].replace(minute=0, second=0, microsecond=0)
        worst = 0.0
        for (v, start), d in latest.items():
            rows = (version == v) & (window_of == start)
            lab = rows & labelled
            assert d.window_size == rows.sum() and d.extra["labelled"] == lab.sum(), (v, start)
            got = d.extra["metrics"]
            want = {"accuracy": accuracy_score(y[lab], pred[lab]),
                    "f1_macro": f1_score(y[lab], pred[lab], average="macro", labels=list(range(10)), zero_division=0),
                    "log_loss": log_loss(y[lab], proba[lab], labels=list(range(10)))}
            if len(set(y[lab])) == 10:
                want["roc_auc"] = roc_auc_score(y[lab], proba[lab], multi_class="ovr", labels=list(range(10)))
            for name, value in want.items():
                assert got[name] == pytest.approx(value, rel=1e-9), (v, start, name)
                worst = max(worst, abs(got[name] - value))
            assert d.is_drift is (ref_acc - want["accuracy"] > 0.05)
        print(f"realized figures: largest |ours - scikit-learn| = {worst:.1e} over {len(latest)} windows")

        variants = [d for d in seen if d.detector == "variants"]
        last = {d.window_start: d for d in variants}
        assert len(last) == 2
        for d in last.values():
            acc = d.extra["variants"]["v2"]["accuracy"]
            assert d.is_drift and acc["ci"][1] < 0 and "accuracy" in d.extra["fired"]["v2"]
            print(f"variants {d.window_start:%H:%M}: v2 - v1 accuracy {acc['difference']:+.3f} "
                  f"(CI {acc['ci'][0]:+.3f} to {acc['ci'][1]:+.3f}, p {acc['p_value']:.1e})")

        # labels on the audit documents (Elasticsearch), the predictions' fields kept
        store = pipe.store
        assert store is not None
        store.refresh()  # type: ignore[attr-defined]
        from elasticsearch import Elasticsearch

        es_client = Elasticsearch(stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"])

        def es_hits(doc_id: str) -> list[dict]:
            resp = es_client.search(index=f"iwt-{tag}-records-*", query={"ids": {"values": [doc_id]}})
            return [h["_source"] for h in resp["hits"]["hits"]]

        # every row one document in its prediction's day index (2026-07-01), labels sent before
        # their predictions (today, another daily index) included
        early_set = set(early.tolist())
        some = [(r, j, i) for r, idx in enumerate(rows_of) for j, i in enumerate(idx)]
        some = [s for s in some if s[2] in early_set][:60] + [s for s in some if s[2] not in early_set][:60]
        for r, j, i in some:
            hits = es_hits(f"{tag}-q{r}-{j}")
            assert len(hits) == 1, (r, j, i in early_set)
            doc = hits[0]
            assert doc["output"]["label"] == int(pred[i]) and doc["n_rows"] == len(rows_of[r])
            assert doc.get("truth") == ({"truth": int(y[i])} if labelled[i] else None)
        assert sum(1 for s in some if s[2] in early_set) >= 30
        assert es_client.count(index=f"iwt-{tag}-records-{model}-waiting")["count"] == 0

        # metrics: scraped by Prometheus, and the performance alert fires for the degraded variant
        assert f'inferwatch_feedback_labels_total{{model="{model}",version=""}}' in metrics
        prom = stack_env["INFERWATCH_PROMETHEUS_URL"]
        httpx.post(f"{prom}/-/reload", timeout=30)  # pick up alerts/performance.rules.yml if new

        def scraped():
            q = f'inferwatch_model_performance{{model="{model}",metric="accuracy",method="realized"}}'
            return httpx.get(f"{prom}/api/v1/query", params={"query": q}).json()["data"]["result"]

        result = wait_until(scraped, 90, "Prometheus to scrape the performance gauges")
        assert {r["metric"]["version"] for r in result} == {"v1", "v2"}

        def alert():
            alerts = httpx.get(f"{prom}/api/v1/alerts").json()["data"]["alerts"]
            return [a for a in alerts if a["labels"].get("alertname") == "InferwatchPerformanceDrop"
                    and a["labels"].get("model") == model and a["state"] == "firing"]

        fired = wait_until(alert, 90, "InferwatchPerformanceDrop to fire")
        assert {(a["labels"]["detector"], a["labels"].get("version", "")) for a in fired} >= {("performance", "v2")}
    finally:
        target.unlink(missing_ok=True)
        pipe.stop()
        delete_test_indices(stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"], tag)
        kafka.delete_topics([cfg.log.records_topic, cfg.log.detections_topic, cfg.log.deadletter_topic,
                             cfg.collector.feedback_topic])
        kafka.close()

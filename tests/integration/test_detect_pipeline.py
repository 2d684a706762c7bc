"""The detect role on the scaled path: records through Kafka, detections to the log, to
Elasticsearch, to the metrics Prometheus scrapes, and to Alertmanager."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from inferwatch.audit import SearchQuery
from inferwatch.config import load_config
from inferwatch.kafka_log import KafkaLog
from inferwatch.pipeline import Pipeline
from inferwatch.references import ReferenceStore
from tests.integration.scaled import delete_test_indices, e2e_overrides
from tests.waiting import wait_until as _wait

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FEATURES = [f"f{i}" for i in range(5)]


def _rows(rng, n, shift=0.0):
    x = rng.normal(size=(n, len(FEATURES)))
    x[:, 0] += shift
    return x




def test_detections_reach_log_audit_metrics_and_alertmanager(stack_env, tmp_path):
    tag = uuid.uuid4().hex[:8]
    model = f"credit-{tag}"
    cfg = load_config(None, env={}, overrides=e2e_overrides(stack_env, tag, tmp_path / "data", **{
        "alertmanager.url": stack_env["INFERWATCH_ALERTMANAGER_URL"],
        "detect.window": {"type": "count", "size": 200},
        "detect.detectors": [{"type": "ks", "p_val": 0.01},
                             {"type": "mahalanobis", "fpr": 0.01}],
    }))
    rng = np.random.default_rng(7)
    ReferenceStore(cfg.references_path).register(model, pd.DataFrame(_rows(rng, 2000), columns=FEATURES),
                                                 version="v1", source="test")
    pipe = Pipeline(cfg)
    target = Path(stack_env["INFERWATCH_STACK_DIR"]) / "prometheus" / "targets" / f"iwt-{tag}.json"
    try:
        pipe.start()
        target.write_text(json.dumps([{"targets": [f"127.0.0.1:{pipe.bound_port}"],
                                       "labels": {"test": tag}}]))
        clean, shifted = _rows(rng, 200), _rows(rng, 200, shift=1.0)
        shifted[3] = 12.0  # one blatant outlier row in the shifted window
        with httpx.Client(base_url=f"http://127.0.0.1:{pipe.bound_port}", timeout=30) as c:
            for block, name in ((clean, "c"), (shifted, "s")):
                body = [{"model": model, "version": "v1", "id": f"{name}{i}",
                         "inputs": {f: [float(v)] for f, v in zip(FEATURES, row, strict=True)}}
                        for i, row in enumerate(block)]
                assert c.post("/v1/records", json=body).status_code == 202
        # bounded, generous: under load a consumer evicted by a late heartbeat rejoins and re-reads
        assert _wait(lambda: pipe.wait_idle(timeout=5), 300, "the pipeline to catch up")

        # the log: every window's detections are on the detections topic
        lg = KafkaLog(cfg.kafka)
        assert lg.size(cfg.log.detections_topic) == 4  # 2 windows x 2 detectors
        lg.close()

        # the audit store: drift windows and outlier scores on their rows
        store = pipe.store
        assert store is not None
        store.refresh()  # type: ignore[attr-defined]
        dets = store.search(SearchQuery(kind="detections", model=model))
        ks = sorted((d for d in dets if d["detector"] == "ks"), key=lambda d: d["window_start"])
        assert [d["is_drift"] for d in ks] == [False, True]
        assert ks[1]["feature_drift"]["f0"] is True
        flagged = store.get("s3-0")
        assert flagged["outlier"]["mahalanobis"]["is_outlier"] is True

        # Prometheus scraped the pipeline's /metrics
        prom = stack_env["INFERWATCH_PROMETHEUS_URL"]

        def drift_in_prometheus():
            r = httpx.get(f"{prom}/api/v1/query",
                          params={"query": f'inferwatch_drift_detected{{model="{model}",detector="ks"}}'}).json()
            return r["data"]["result"]

        result = _wait(drift_in_prometheus, 60, "Prometheus to scrape the drift gauge")
        assert result[0]["value"][1] == "1"
        assert result[0]["metric"]["job"] == "inferwatch"

        # Alertmanager got the direct alert for the drift window
        am = stack_env["INFERWATCH_ALERTMANAGER_URL"]
        alerts = _wait(lambda: httpx.get(f"{am}/api/v2/alerts",
                                         params={"filter": f'model="{model}"'}).json(), 30, "the alert")
        names = {a["labels"]["alertname"] for a in alerts}
        assert "InferwatchDriftDetected" in names  # the name of the rule in alerts/inferwatch.rules.yml
        drift = next(a for a in alerts if a["labels"]["alertname"] == "InferwatchDriftDetected")
        assert drift["labels"]["detector"] == "ks" and "f0" in drift["annotations"]["description"]
    finally:
        target.unlink(missing_ok=True)
        pipe.stop()
        delete_test_indices(stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"], tag)
        KafkaLog(cfg.kafka).delete_topics([cfg.log.records_topic, cfg.log.detections_topic,
                                           cfg.log.deadletter_topic])

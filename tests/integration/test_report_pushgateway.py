"""The batch-job path: ``inferwatch report --pushgateway`` pushes the report's metrics to the real
Pushgateway, and the stack's Prometheus (scraping it with honor_labels) serves them."""

from __future__ import annotations

import time
import uuid

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from click.testing import CliRunner

from inferwatch.report_command import report
from tests.waiting import wait_until as _wait

pytestmark = pytest.mark.integration




def test_report_metrics_reach_prometheus_through_the_pushgateway(stack_env, require_service, tmp_path):
    require_service("pushgateway")
    require_service("prometheus")
    pgw = stack_env["INFERWATCH_PUSHGATEWAY_URL"].rstrip("/")
    prom = stack_env["INFERWATCH_PROMETHEUS_URL"].rstrip("/")
    model = f"report-{uuid.uuid4().hex[:10]}"
    rng = np.random.default_rng(2)
    pd.DataFrame({"age": rng.normal(40, 10, 2000), "score": rng.normal(size=2000)}).to_parquet(tmp_path / "ref.pq")
    pd.DataFrame({"age": rng.normal(40, 10, 400), "score": rng.normal(1.0, 1, 400)}).to_csv(tmp_path / "b.csv",
                                                                                            index=False)

    def query(q):
        r = httpx.get(f"{prom}/api/v1/query", params={"query": q}, timeout=10).json()
        assert r["status"] == "success", r
        return r["data"]["result"]

    try:
        started = time.time()
        r = CliRunner().invoke(report, [
            "--input", str(tmp_path / "b.csv"), "--reference", str(tmp_path / "ref.pq"), "--model", model,
            "--out", str(tmp_path / "out"), "--pushgateway", pgw, "--top", "0", "-q"],
            env={"INFERWATCH_CONFIG": None, "INFERWATCH_DATA_DIR": str(tmp_path / "data")})
        assert r.exit_code == 0, r.output
        assert f"metrics pushed to {pgw} (job inferwatch-report, model {model})" in r.output
        doc = orjson.loads((tmp_path / "out" / "report.json").read_bytes())

        drift = _wait(lambda: query(f'inferwatch_drift_detected{{model="{model}"}}'), 30,
                      "Prometheus to scrape the pushed drift gauge")
        (series,) = drift
        assert series["value"][1] == "1"
        assert series["metric"]["job"] == "inferwatch-report" and series["metric"]["detector"] == "tabular"

        p = query(f'inferwatch_drift_feature_p_value{{model="{model}",feature="score"}}')
        assert float(p[0]["value"][1]) == pytest.approx(doc["detections"][0]["feature_p_values"]["score"], rel=1e-9)
        overall = query(f'inferwatch_drift_p_value{{model="{model}"}}')
        assert float(overall[0]["value"][1]) == pytest.approx(doc["detections"][0]["p_value"], rel=1e-9)
        (ts,) = _wait(lambda: query(f'inferwatch_report_last_success_timestamp_seconds{{model="{model}"}}'), 10,
                      "the report's last-success timestamp")
        assert started - 1 <= float(ts["value"][1]) <= time.time() + 1
    finally:
        httpx.delete(f"{pgw}/metrics/job/inferwatch-report/model/{model}", timeout=10)
    # the group is gone from the Pushgateway
    groups = httpx.get(f"{pgw}/api/v1/metrics", timeout=10).json()["data"]
    assert not any(g["labels"].get("model") == model for g in groups)

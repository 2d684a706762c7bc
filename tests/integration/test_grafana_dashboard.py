"""The Grafana dashboard: generated from code, built only on exported metrics and the provisioned
datasource, and — Grafana itself cannot run here — every panel query run against the real
Prometheus while the embedded pipeline serves its /metrics with clean and then shifted traffic."""

from __future__ import annotations

import importlib.util
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from sinks.prometheus import Metrics

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards" / "grafana"
DASHBOARD = GRAFANA / "json" / "inferwatch.json"
FEATURES = ["f0", "f1", "f2"]


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("inferwatch_grafana_generate", GRAFANA / "generate.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _targets(dash: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(p, t) for p in dash["panels"] for t in p.get("targets", [])]


def _exported() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [])
        names |= {family.name + s for s in suffixes}
    return names


def test_committed_dashboard_is_the_generator_output():
    assert _generator().render() == DASHBOARD.read_text(), "run: python dashboards/grafana/generate.py"


def test_dashboard_uses_only_exported_metrics_and_the_provisioned_datasource():
    dash = _dashboard()
    assert dash["schemaVersion"] == 39 and dash["uid"] == "inferwatch"
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (ds,) = [d for d in provisioned["datasources"] if d["type"] == "prometheus"]
    expected = {"type": "prometheus", "uid": ds["uid"]}
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert set(variables) == {"model", "version"}
    assert variables["model"]["definition"] == "label_values(inferwatch_records_decoded_total, model)"
    queries = [v["definition"] for v in variables.values()]
    for v in variables.values():
        assert v["datasource"] == expected
    exported = _exported()
    targets = _targets(dash)
    assert len(targets) >= 15
    for panel, t in targets:
        assert panel["datasource"] == expected and t["datasource"] == expected, panel["title"]
        queries.append(t["expr"])
    for q in queries:
        used = re.findall(r"\binferwatch_[a-z_]+", q)
        assert used, q
        for name in used:
            assert name in exported, f"{q} uses {name}, which sinks/prometheus.py does not export"
    # every exported family is on the dashboard
    assert {n for q in queries for n in re.findall(r"\binferwatch_[a-z]+(?:_[a-z]+)*", q)} >= {
        f.name + ("_total" if f.type == "counter" else "_bucket" if f.type == "histogram" else "")
        for f in Metrics().registry.collect()}
    # ids unique, the grid 24 wide and without overlaps
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, p["title"]
        cells |= mine


def test_push_needs_a_token():
    with pytest.raises(SystemExit) as exc:
        _generator().main(["--push", "http://127.0.0.1:9"])
    assert exc.value.code == 2


def _substitute(expr: str, model: str, version: str) -> str:
    """What Grafana sends for one selected model and version (names without regex metacharacters)."""
    return (expr.replace("$model", model).replace("$version", version)
            .replace("$__rate_interval", "1m").replace("$__interval", "15s").replace("$__range", "5m"))


def _rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    x = rng.normal(size=(n, len(FEATURES)))
    x[:, 0] += shift
    return x


@pytest.mark.integration
def test_every_panel_query_runs_on_prometheus_and_shows_the_pipeline(stack_env, require_service, tmp_path):
    require_service("prometheus")
    from inferwatch.config import load_config
    from inferwatch.pipeline import Pipeline
    from inferwatch.references import ReferenceStore

    prom = stack_env["INFERWATCH_PROMETHEUS_URL"].rstrip("/")
    tag = uuid.uuid4().hex[:8]
    model, version = f"grafana-{tag}", "v1"
    cfg = load_config(None, env={}, overrides={
        "data_dir": str(tmp_path / "data"), "collector.port": 0,
        "audit.group": f"audit-{tag}", "detect.group": f"detect-{tag}",
        "detect.window": {"type": "count", "size": 100},
        "detect.detectors": [{"type": "ks", "p_val": 0.01}, {"type": "mahalanobis", "fpr": 0.01}],
    })
    rng = np.random.default_rng(4)
    ReferenceStore(cfg.references_path).register(model, pd.DataFrame(_rows(rng, 2000), columns=FEATURES),
                                                 version=version, source="test")
    pipe = Pipeline(cfg)
    target = Path(stack_env["INFERWATCH_STACK_DIR"]) / "prometheus" / "targets" / f"grafana-{tag}.json"

    def query(expr: str) -> dict[str, Any]:
        r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10)
        return r.json()

    try:
        pipe.start()
        target.write_text(json.dumps([{"targets": [f"127.0.0.1:{pipe.bound_port}"], "labels": {"test": tag}}]))
        with httpx.Client(base_url=f"http://127.0.0.1:{pipe.bound_port}", timeout=30) as c:
            for name, block in (("c", _rows(rng, 100)), ("s", _rows(rng, 100, shift=1.5))):
                body = [{"model": model, "version": version, "id": f"{tag}-{name}{i}",
                         "inputs": {f: [float(v)] for f, v in zip(FEATURES, row, strict=True)}}
                        for i, row in enumerate(block)]
                assert c.post("/v1/records", json=body).status_code == 202
                time.sleep(1.5)  # a scrape between the phases: rates see an increase
            assert c.post("/v1/records", content=b"{not json").status_code == 400  # one dead letter
        assert pipe.wait_idle(timeout=30)

        dash = _dashboard()
        # the template variables, as Grafana resolves label_values() through the series API
        def label_values(definition: str) -> list[str]:
            m = re.fullmatch(r"label_values\((.+), (\w+)\)", _substitute(definition, model, version))
            assert m, definition
            r = httpx.get(f"{prom}/api/v1/label/{m[2]}/values", params={"match[]": m[1]}, timeout=10).json()
            assert r["status"] == "success", r
            return r["data"]

        variables = {v["name"]: v["definition"] for v in dash["templating"]["list"]}

        deadline = time.monotonic() + 45
        while True:
            results: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for panel, t in _targets(dash):
                resp = query(_substitute(t["expr"], model, version))
                assert resp["status"] == "success", (panel["title"], t["expr"], resp)
                results[(panel["title"], t["refId"])] = resp["data"]["result"]
            missing = _check(results, model)
            if not missing and model in label_values(variables["model"]):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"panels without the expected series after 45 s: {missing}")
            time.sleep(1.0)
        assert label_values(variables["version"]) == [version]
    finally:
        target.unlink(missing_ok=True)
        pipe.stop()


def _values(series: list[dict[str, Any]], **labels: str) -> list[float]:
    return [float(s["value"][1]) for s in series if all(s["metric"].get(k) == v for k, v in labels.items())]


def _check(r: dict[tuple[str, str], list[dict[str, Any]]], model: str) -> list[str]:
    """The panels whose series do not (yet) show what the pipeline did; empty when all do."""
    expectations = {
        "models drifting": _values(r[("Models drifting now", "A")]) == [1.0],
        "drift state": _values(r[("Drift detected", "A")], model=model, detector="ks") == [1.0],
        "p-value": [p < 0.01 for p in _values(r[("Drift p-value (latest window)", "A")], model=model)] == [True],
        "feature p-values": (
            _values(r[("Per-feature p-values (latest window)", "A")], model=model, feature="f0")[0:1] != []
            and _values(r[("Per-feature p-values (latest window)", "A")], model=model, feature="f0")[0] < 1e-4
            and len(_values(r[("Per-feature p-values (latest window)", "A")], model=model)) == len(FEATURES)),
        "distance": len(_values(r[("Drift distance (latest window)", "A")], model=model)) == 1,
        "outlier ratio": len(_values(r[("Outlier ratio (latest window)", "A")], model=model,
                                     detector="mahalanobis")) == 1,
        "windows": bool(_values(r[("Windows tested and fired", "A")], model=model, detector="ks")),
        "records rate": bool(_values(r[("Records and rows decoded", "A")], model=model, version="v1")),
        "rows rate": bool(_values(r[("Records and rows decoded", "B")], model=model, version="v1")),
        "decoded stat": bool(r[("Records decoded / s", "A")]),
        "received": bool(r[("Payloads received", "A")]),
        "dead letters": bool(r[("Dead-lettered", "A")]) and bool(r[("Dead letters (time range)", "A")]),
        "latency": bool(r[("Collector request latency", "A")]) and bool(r[("Collector request latency", "B")]),
        "audit documents": bool(r[("Audit documents written", "A")]),
        "consumer lag": bool(r[("Consumer lag", "A")]) and bool(r[("Max consumer lag", "A")]),
    }
    return [name for name, ok in expectations.items() if not ok]

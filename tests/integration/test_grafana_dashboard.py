"""The Grafana dashboards: generated with grafana-foundation-sdk, built only on exported metrics
(or metrics named as pending, with who brings them) and the provisioned data source, and —
Grafana itself cannot run here — every panel query, variables filled in, run against the real
Prometheus while the embedded pipeline serves its /metrics with clean, shifted and bad traffic
and one injected audit backpressure."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

from dashboards.grafana import DASHBOARD_UIDS, load
from dashboards.grafana.generate import DASHBOARDS, PENDING, main
from inferwatch.errors import BackpressureError
from inferwatch.metrics import Metrics
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards" / "grafana"
FEATURES = ["f0", "f1", "f2"]
NAME = re.compile(r"\binferwatch_[a-z0-9_]+")


def _targets(dash: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(p, t) for p in dash["panels"] for t in p.get("targets", [])]


def _exported() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [])
        names |= {family.name + s for s in suffixes}
    return names


def _pending(expr: str) -> list[str]:
    return [n for n in NAME.findall(expr) if n in PENDING]


def test_committed_dashboards_are_the_generator_output():
    assert set(DASHBOARDS) == set(DASHBOARD_UIDS)
    assert main(["--check"]) == 0, "run: python -m dashboards.grafana.generate"


@pytest.mark.parametrize("uid", DASHBOARD_UIDS)
def test_dashboard_uses_exported_or_pending_metrics_and_the_provisioned_datasource(uid):
    dash = load(uid)
    assert dash["uid"] == uid
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (ds,) = [d for d in provisioned["datasources"] if d["type"] == "prometheus"]
    expected = {"type": "prometheus", "uid": ds["uid"]}
    variables = dash["templating"]["list"]
    assert [v["name"] for v in variables][:2] == ["model", "version"]
    queries = [v["query"] for v in variables]
    for v in variables:
        assert v["datasource"] == expected
    exported = _exported()
    targets = _targets(dash)
    assert len(targets) >= 8
    for panel, t in targets:
        assert panel["datasource"] == expected and t["datasource"] == expected, panel["title"]
        queries.append(t["expr"])
        assert t["refId"] and len({x["refId"] for x in panel["targets"]}) == len(panel["targets"]), panel["title"]
    for q in queries:
        used = NAME.findall(q)
        assert used, q
        for name in used:
            assert name in exported or name in PENDING, f"{q} uses {name}, which inferwatch/metrics.py does not export"
    # ids unique, the grid 24 wide and without overlaps
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and 0 not in ids
    cells: set[tuple[int, int]] = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, p["title"]
        cells |= mine


def test_every_exported_metric_is_charted_and_pending_ones_are_really_missing():
    exported = _exported()
    used = {n for uid in DASHBOARD_UIDS for _, t in _targets(load(uid)) for n in NAME.findall(t["expr"])}
    for family in Metrics().registry.collect():
        name = family.name + {"counter": "_total", "histogram": "_bucket"}.get(family.type, "")
        assert name in used, f"{name} is exported but on no dashboard"
    for name, who in PENDING.items():
        assert name not in exported, f"{name} is exported now ({who}): drop it from PENDING so the test wants data"
        assert name in used, f"{name} is listed as pending but no panel uses it"
    drift = load("inferwatch-drift")
    heatmaps = [p for p in drift["panels"] if p["type"] == "heatmap"]
    assert heatmaps and "inferwatch_drift_feature_p_value" in heatmaps[0]["targets"][0]["expr"]
    assert {v["name"] for v in drift["templating"]["list"]} == {"model", "version", "detector"}


def _substitute(expr: str, fill: dict[str, str]) -> str:
    """What Grafana sends for the variables chosen (names without regex metacharacters)."""
    for k, v in fill.items():
        expr = expr.replace(f"${k}", v)
    return (expr.replace("$__rate_interval", "1m").replace("$__interval", "15s").replace("$__range", "5m"))


def _proba(row: np.ndarray) -> float:
    return float(1.0 / (1.0 + np.exp(-row[0])))


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
        "detect.detectors": [{"type": "ks", "p_val": 0.01}, {"type": "mahalanobis", "fpr": 0.01},
                             {"type": "quality"}],
        # 3 features over a cap of 2: the third one's p-value shows as _other, and the fold is counted
        "metrics.series_cap": 2,
        # model quality (issue 14): a classifier and a regressor of their own, with labels
        "detect.performance": {"classes": ["neg", "pos"], "prediction": "label", "scores": "proba", "min_labelled": 1,
                               "models": [f"{model}-clf"],  # the drift model's windows stay its detectors' own
                               "per_model": {f"{model}-reg": {"task": "regression", "prediction": "forecast",
                                                              "scores": None, "classes": None}}},
    })
    rng = np.random.default_rng(4)
    ReferenceStore(cfg.references_path).register(model, pd.DataFrame(_rows(rng, 2000), columns=FEATURES),
                                                 version=version, source="test")
    pipe = Pipeline(cfg)
    assert pipe.store is not None
    # one injected backpressure on the first audit write: the retry must show on the dashboard
    write, injected = pipe.store.write_records, []

    def flaky(items: Any) -> int:
        if not injected:
            injected.append(sum(1 for r in items if r.model == model))  # this model's records in the batch
            raise BackpressureError("injected by the dashboard test")
        return write(items)

    pipe.store.write_records = flaky  # type: ignore[method-assign]
    target = Path(stack_env["INFERWATCH_STACK_DIR"]) / "prometheus" / "targets" / f"grafana-{tag}.json"

    def instant(expr: str) -> dict[str, Any]:
        return httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10).json()

    def label_values(definition: str, fill: dict[str, str]) -> list[str]:
        """A template variable, as Grafana resolves label_values() through the series API."""
        m = re.fullmatch(r"label_values\((.+), (\w+)\)", _substitute(definition, fill))
        assert m, definition
        r = httpx.get(f"{prom}/api/v1/label/{m[2]}/values", params={"match[]": m[1]}, timeout=10).json()
        assert r["status"] == "success", r
        return sorted(r["data"])

    def wait_for(what: str, check: Any, timeout: float = 45.0) -> None:
        wait_until(check, timeout, what)

    try:
        pipe.start()
        target.write_text(json.dumps([{"targets": [f"127.0.0.1:{pipe.bound_port}"], "labels": {"test": tag}}]))
        decoded = f'sum(inferwatch_records_decoded_total{{model="{model}"}})'
        with httpx.Client(base_url=f"http://127.0.0.1:{pipe.bound_port}", timeout=30) as c:
            for i, (name, block) in enumerate((("c", _rows(rng, 100)), ("s", _rows(rng, 100, shift=1.5)))):
                body = [{"model": model, "version": version, "id": f"{tag}-{name}{j}",
                         "inputs": {f: [float(v)] for f, v in zip(FEATURES, row, strict=True)},
                         "outputs": {"proba": [_proba(row)], "label": ["pos" if _proba(row) > 0.5 else "neg"]}}
                        for j, row in enumerate(block)]
                if name == "s":  # a column the reference never had: a schema violation for the quality detector
                    for b in body:
                        b["inputs"]["extra"] = [1.0]
                assert c.post("/v1/records", json=body).status_code == 202
                # Prometheus must have scraped this phase before the next: rates then see an increase
                wait_for(f"phase {name} in Prometheus", lambda n=100 * (i + 1): any(
                    float(s["value"][1]) == n for s in instant(decoded)["data"]["result"]))
            assert c.post("/v1/records", content=b"{not json").status_code == 400  # one dead letter
            # model quality: predictions of a classifier and a regressor, then their labels (one missing)
            clf = [{"model": f"{model}-clf", "version": version, "id": f"{tag}-k{j}",
                    "outputs": {"label": [["neg", "pos"][j % 2]], "proba": [0.2 + 0.6 * (j % 2)]}} for j in range(20)]
            reg = [{"model": f"{model}-reg", "version": version, "id": f"{tag}-r{j}",
                    "outputs": {"forecast": [float(j)]}} for j in range(20)]
            assert c.post("/v1/records", json=clf + reg).status_code == 202
            labels = [{"id": f"{tag}-k{j}", "model": f"{model}-clf", "truth": ["neg", "pos"][j % 3 == 0]}
                      for j in range(19)]
            labels += [{"id": f"{tag}-r{j}", "model": f"{model}-reg", "truth": j + 0.5} for j in range(20)]
            assert c.post("/v1/feedback", json=labels).status_code == 202
        assert pipe.wait_idle(timeout=30)
        assert injected, "the audit store was never written"

        fills = {
            "inferwatch-health": {"model": model, "version": version},
            "inferwatch-drift": {"model": model, "version": version, "detector": ".*"},
            "inferwatch-quality": {"model": f"{model}|{model}-clf|{model}-reg", "version": version},
        }
        results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}

        def all_panels_show_the_run() -> bool:
            results.clear()
            for uid in DASHBOARD_UIDS:
                for panel, t in _targets(load(uid)):
                    resp = instant(_substitute(t["expr"], fills[uid]))
                    # every query, pending metrics included, is valid PromQL for the real Prometheus
                    assert resp["status"] == "success", (uid, panel["title"], t["expr"], resp)
                    results[(uid, panel["title"], t["refId"])] = resp["data"]["result"]
            return not _missing(results, model)

        try:
            wait_for("every panel's series", all_panels_show_the_run)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {_missing(results, model)}") from None

        # the pipeline-wide stats, restricted to this test's process (as an ad-hoc filter would):
        # exactly the one dead letter and the one injected retry, first increments included
        for title, metric in (("Dead letters (time range)", "inferwatch_records_deadlettered_total"),
                              ("Audit retries (time range)", "inferwatch_audit_retries_total")):
            (panel,) = [p for p in load("inferwatch-health")["panels"] if p["title"] == title]
            expr = _substitute(panel["targets"][0]["expr"], fills["inferwatch-health"])
            mine = instant(expr.replace(metric, f'{metric}{{test="{tag}"}}'))["data"]["result"]
            assert [float(x["value"][1]) for x in mine] == [1.0], (title, mine)

        # the retried records per model: exactly this model's records in the batch that was pushed back
        (panel,) = [p for p in load("inferwatch-health")["panels"] if p["title"] == "Audit retries"]
        # (over 5 minutes rather than Grafana's rate interval: the retry was the run's first write)
        expr = _substitute(panel["targets"][1]["expr"].replace("$__rate_interval", "5m"), fills["inferwatch-health"])
        assert [float(x["value"][1]) for x in instant(expr)["data"]["result"]] == [float(injected[0])]
        assert injected[0] > 0

        # template variables resolve to what the pipeline did
        for uid in ("inferwatch-health", "inferwatch-drift"):
            defs = {v["name"]: v["query"] for v in load(uid)["templating"]["list"]}
            assert model in label_values(defs["model"], fills[uid])
            assert label_values(defs["version"], fills[uid]) == [version]
        drift_defs = {v["name"]: v["query"] for v in load("inferwatch-drift")["templating"]["list"]}
        assert label_values(drift_defs["detector"], fills["inferwatch-drift"]) == ["ks", "mahalanobis", "quality"]
        quality_defs = {v["name"]: v["query"] for v in load("inferwatch-quality")["templating"]["list"]}
        assert {f"{model}-clf", f"{model}-reg"} <= set(label_values(quality_defs["model"], fills["inferwatch-quality"]))
        assert label_values(quality_defs["version"], fills["inferwatch-quality"]) == [version]
    finally:
        target.unlink(missing_ok=True)
        pipe.stop()


def _values(series: list[dict[str, Any]], **labels: str) -> list[float]:
    return [float(s["value"][1]) for s in series if all(s["metric"].get(k) == v for k, v in labels.items())]


def _missing(r: dict[tuple[str, str, str], list[dict[str, Any]]], model: str) -> list[str]:
    """The panel queries whose series do not (yet) show what the pipeline did; empty when all do.

    Every query on an exported metric must return at least one series; queries on a pending
    metric (PENDING: not exported yet) need only be valid PromQL, checked by the caller."""
    missing = []
    for uid in DASHBOARD_UIDS:
        for panel, t in _targets(load(uid)):
            key = (uid, panel["title"], t["refId"])
            if not _pending(t["expr"]) and not r.get(key):
                missing.append(f"{uid} / {panel['title']} / {t['refId']}: no series")
    d = "inferwatch-drift"
    h = "inferwatch-health"

    def get(uid: str, title: str, ref: str = "A") -> list[dict[str, Any]]:
        return r.get((uid, title, ref), [])

    heat = {s["metric"].get("feature"): float(s["value"][1])
            for s in get(d, "Per-feature drift over time (-log10 p-value)")}
    bars = get(d, "Per-feature p-values (latest window)")
    q = "inferwatch-quality"
    expectations = {
        # the last window (100 shifted rows, f0 + 1.5 sd) drifted on KS, f0 only; the quality
        # detector flags the new column
        "drifting now": _values(get(d, "Detectors drifting now")) == [2.0],
        "drift state": _values(get(d, "Drift detected"), model=model, detector="ks") == [1.0],
        "p-value": [p < 0.01 for p in _values(get(d, "Drift p-value (latest window)"), detector="ks")] == [True],
        # a cap of 2 features: f2's p-value is shown as _other
        "heatmap rows": set(heat) == {"f0", "f1", "_other"} and heat["f0"] > 4,
        "feature bars": len(bars) == 3 and _values(bars, feature="f0")[0] < 1e-4,
        "capped": _values(get(h, "Values folded by the series cap"), metric="inferwatch_drift_feature_p_value") != [],
        "outlier ratio": len(_values(get(d, "Outlier ratio (latest window)"), detector="mahalanobis")) == 1,
        "outlier scores": _values(get(d, "Outlier score distribution")) != [],
        "fired": _values(get(d, "Windows tested and fired", "B"), detector="ks") == [1.0],
        "windows": _values(get(d, "Windows tested (time range)")) == [6.0],  # 3 detectors x 2 windows
        "schema violation": _values(get(d, "Violations by check"), check="schema") == [1.0],
        "records": _values(get(h, "Records decoded per model"), model=model, version="v1") != [],
        "searchable": _values(get(h, "Collector to searchable", "B")) != [],
        # (other processes share the stack's Prometheus: their exact values are checked below, on
        # this test's process only)
        "audit retry": _values(get(h, "Audit retries (time range)")) != [],
        "dead letter": _values(get(h, "Dead letters (time range)")) != [],
        "predictions": _values(get(q, "Numeric predictions")) != [],
        "classes": {s["metric"].get("class") for s in get(q, "Predicted classes")} == {"pos", "neg"},
    }
    return missing + [name for name, ok in expectations.items() if not ok]

"""Generate the Grafana dashboard of the inferwatch pipeline.

    python dashboards/grafana/generate.py            # writes dashboards/grafana/json/inferwatch.json
    python dashboards/grafana/generate.py --check    # exit 1 if the committed file is stale
    python dashboards/grafana/generate.py --push https://grafana.example --token glsa_...

The dashboard reads the Prometheus datasource that ``provisioning/datasources/prometheus.yml``
provisions (uid ``prometheus``) and uses only metrics ``sinks/prometheus.py`` exports:
payloads received / decoded / dead-lettered, audit writes and retries, consumer lag, drift
state, p-values (overall and per feature), distances, outlier ratio, collector latency.
Template variables ``model`` and ``version`` come from ``inferwatch_records_decoded_total``;
every drift panel filters on them with regex matchers, so "All" and multi-selection work.
tests/integration/test_grafana_dashboard.py runs every panel query against a real Prometheus.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "json" / "inferwatch.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
UID = "inferwatch"
P_VAL = 0.05  # the detectors' default significance level (the corrected overall p-value compares to it)
SEL = 'model=~"$model", version=~"$version"'
BY = "model, version, detector"


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DATASOURCE, "editorMode": "code", "expr": expr, "refId": ref,
                         "legendFormat": legend or "__auto", "range": not instant, "instant": instant}
    if instant:
        t["format"] = "time_series"
    return t


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


def panel(kind: str, title: str, description: str, targets: list[dict[str, Any]], *, unit: str = "short",
          defaults: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
          custom: dict[str, Any] | None = None, mappings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    field = {"unit": unit, "color": {"mode": "palette-classic"}, "mappings": mappings or [],
             "thresholds": thresholds((None, "green")), **(defaults or {})}
    if custom:
        field["custom"] = custom
    return {"type": kind, "title": title, "description": description, "datasource": DATASOURCE,
            "targets": targets, "fieldConfig": {"defaults": field, "overrides": []}, "options": options or {}}


def timeseries(title: str, description: str, targets: list[dict[str, Any]], *, unit: str = "short",
               custom: dict[str, Any] | None = None, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    base_custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
                   "spanNulls": False, "axisSoftMin": 0}
    return panel("timeseries", title, description, targets, unit=unit, defaults=defaults,
                 custom={k: v for k, v in {**base_custom, **(custom or {})}.items() if v is not None},
                 options={"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
                          "tooltip": {"mode": "multi", "sort": "desc"}})


def stat(title: str, description: str, expr: str, *, unit: str = "short",
         steps: tuple[tuple[float | None, str], ...] = ((None, "green"),)) -> dict[str, Any]:
    return panel("stat", title, description, [target(expr, instant=True)], unit=unit,
                 defaults={"thresholds": thresholds(*steps), "color": {"mode": "thresholds"}},
                 options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "colorMode": "background", "graphMode": "none", "textMode": "value",
                          "justifyMode": "center", "orientation": "auto"})


def row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def layout() -> list[tuple[dict[str, Any], int, int]]:
    """(panel, width, height) in reading order; widths of one line add up to 24."""
    drifting = f"sum(max by (model, version) (inferwatch_drift_detected{{{SEL}}}))"
    return [
        (row("Overview"), 24, 1),
        (stat("Models drifting now", "Model versions whose latest window drifted (any detector).", drifting,
              steps=((None, "green"), (1, "red"))), 6, 4),
        (stat("Records decoded / s", "Decoded records appended to the log, all selected models.",
              f"sum(rate(inferwatch_records_decoded_total{{{SEL}}}[$__rate_interval]))", unit="reqps"), 6, 4),
        (stat("Dead letters (time range)", "Payloads sent to the dead letters in the dashboard's time range.",
              "sum(increase(inferwatch_records_deadlettered_total[$__range]))",
              steps=((None, "green"), (1, "orange"))), 6, 4),
        (stat("Max consumer lag", "The consumer group furthest behind the log (records).",
              "max(inferwatch_consumer_lag_records)", steps=((None, "green"), (10000, "red"))), 6, 4),

        (row("Ingest"), 24, 1),
        (timeseries("Payloads received", "Payloads received by the collectors, per source.",
                    [target("sum by (source) (rate(inferwatch_records_received_total[$__rate_interval]))",
                            "{{source}}")], unit="reqps"), 8, 8),
        (timeseries("Records and rows decoded", "Records (and rows: a batch request of N rows counts N) "
                    "decoded and appended to the log.",
                    [target(f"sum by (model, version) (rate(inferwatch_records_decoded_total{{{SEL}}}"
                            "[$__rate_interval]))", "{{model}} {{version}} records"),
                     target(f"sum by (model, version) (rate(inferwatch_rows_decoded_total{{{SEL}}}"
                            "[$__rate_interval]))", "{{model}} {{version}} rows", ref="B")], unit="reqps"), 8, 8),
        (timeseries("Dead-lettered", "Payloads sent to the dead letters, by source and stage (decode, audit, "
                    "index). Read the reasons with `inferwatch search --kind deadletters`.",
                    [target("sum by (source, stage) (rate(inferwatch_records_deadlettered_total"
                            "[$__rate_interval]))", "{{source}} {{stage}}")], unit="reqps"), 8, 8),
        (timeseries("Collector request latency", "Collector request handling time up to the durable append "
                    "(p50 and p99 from the histogram).",
                    [target("histogram_quantile(0.5, sum by (le) (rate("
                            "inferwatch_collector_request_duration_seconds_bucket[$__rate_interval])))", "p50"),
                     target("histogram_quantile(0.99, sum by (le) (rate("
                            "inferwatch_collector_request_duration_seconds_bucket[$__rate_interval])))", "p99",
                            ref="B")], unit="s"), 24, 7),

        (row("Audit and log"), 24, 1),
        (timeseries("Audit documents written", "Audit documents durably written, per store.",
                    [target("sum by (store) (rate(inferwatch_audit_documents_total[$__rate_interval]))",
                            "{{store}}")], unit="ops"), 8, 8),
        (timeseries("Audit retries", "Audit writes retried after backpressure (HTTP 429) or an outage of the "
                    "store. Nothing is dropped: the log holds the data while the audit role backs off.",
                    [target("sum by (store) (rate(inferwatch_audit_retries_total[$__rate_interval]))",
                            "{{store}}")], unit="ops"), 8, 8),
        (timeseries("Consumer lag", "Log messages not yet committed, per consumer group and topic.",
                    [target("max by (group) (inferwatch_consumer_lag_records)", "{{group}}")]), 8, 8),

        (row("Drift and outliers"), 24, 1),
        (panel("state-timeline", "Drift detected", "1 while the latest window of a model version drifted, "
               "per detector (a data-quality `schema` detector fires on missing columns).",
               [target(f"max by ({BY}) (inferwatch_drift_detected{{{SEL}}})", "{{model}} {{version}} {{detector}}")],
               defaults={"color": {"mode": "thresholds"}, "thresholds": thresholds((None, "green"), (1, "red")),
                         "min": 0, "max": 1},
               custom={"fillOpacity": 80, "lineWidth": 0},
               mappings=[{"type": "value", "options": {"0": {"text": "no drift", "color": "green", "index": 0},
                                                       "1": {"text": "DRIFT", "color": "red", "index": 1}}}],
               options={"showValue": "never", "mergeValues": True, "alignValue": "left", "rowHeight": 0.8,
                        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
                        "tooltip": {"mode": "single", "sort": "none"}}), 24, 8),
        (timeseries("Drift p-value (latest window)", "Overall p-value of each detector's latest window, "
                    f"corrected for multiple features; below the line (p = {P_VAL}) is drift.",
                    [target(f"min by ({BY}) (inferwatch_drift_p_value{{{SEL}}})", "{{model}} {{version}} {{detector}}")],
                    unit="none",
                    custom={"scaleDistribution": {"type": "log", "log": 10}, "showPoints": "always",
                            "thresholdsStyle": {"mode": "line+area"}, "axisSoftMin": None},
                    defaults={"thresholds": thresholds((None, "red"), (P_VAL, "transparent")), "max": 1}), 12, 9),
        (panel("bargauge", "Per-feature p-values (latest window)", "Uncorrected p-value of each feature in the "
               "latest window; the detector flags a feature when it is below the corrected threshold "
               f"({P_VAL} / number of features with Bonferroni). Red: below {P_VAL}.",
               [target(f"min by (model, detector, feature) (inferwatch_drift_feature_p_value{{{SEL}}})",
                       "{{model}} {{detector}} {{feature}}", instant=True)],
               unit="none",
               defaults={"min": 0, "max": 1, "color": {"mode": "thresholds"},
                         "thresholds": thresholds((None, "red"), (P_VAL, "green")), "decimals": 4},
               options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "orientation": "horizontal", "displayMode": "basic", "showUnfilled": True,
                        "valueMode": "color", "namePlacement": "left", "sizing": "auto", "minVizHeight": 12,
                        "maxVizHeight": 24}), 12, 9),
        (timeseries("Drift distance (latest window)", "The largest per-feature distance statistic of each "
                    "detector's latest window (KS statistic, PSI, MMD², ... depending on the detector).",
                    [target(f"max by ({BY}) (inferwatch_drift_distance{{{SEL}}})", "{{model}} {{version}} {{detector}}")],
                    custom={"showPoints": "always"}), 8, 8),
        (timeseries("Windows tested and fired", "Windows tested by each detector, and those in which it fired.",
                    [target(f"sum by (model, detector) (increase(inferwatch_detector_windows_total{{{SEL}}}"
                            "[$__rate_interval]))", "{{model}} {{detector}} tested"),
                     target(f"sum by (model, detector) (increase(inferwatch_detections_total{{{SEL}}}"
                            "[$__rate_interval]))", "{{model}} {{detector}} fired", ref="B")],
                    custom={"drawStyle": "bars", "fillOpacity": 60}), 8, 8),
        (timeseries("Outlier ratio (latest window)", "Share of rows of the latest window an outlier detector "
                    "flagged; the alert fires above 5% for 10 minutes.",
                    [target(f"max by ({BY}) (inferwatch_outlier_ratio{{{SEL}}})", "{{model}} {{version}} {{detector}}")],
                    unit="percentunit",
                    custom={"thresholdsStyle": {"mode": "line"}, "showPoints": "always"},
                    defaults={"thresholds": thresholds((None, "green"), (0.05, "red"))}), 8, 8),
    ]


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "query", "datasource": DATASOURCE, "definition": query,
            "query": {"query": query, "refId": f"PrometheusVariableQueryEditor-{name}", "qryType": 1},
            "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*", "sort": 1, "regex": "",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [], "hide": 0}


def dashboard() -> dict[str, Any]:
    panels = []
    x = y = line_height = 0
    for i, (p, width, height) in enumerate(layout(), start=1):
        if x + width > 24:
            x, y = 0, y + line_height
            line_height = 0
        p = {"id": i, "gridPos": {"h": height, "w": width, "x": x, "y": y}, **p}
        panels.append(p)
        x += width
        line_height = max(line_height, height)
        if x >= 24:
            x, y, line_height = 0, y + line_height, 0
    return {
        "uid": UID,
        "title": "inferwatch",
        "description": "Payload logging, audit and drift detection of served models (generated by "
                       "dashboards/grafana/generate.py; do not edit by hand).",
        "tags": ["inferwatch", "mlops", "drift"],
        "id": None,
        "version": 1,
        "schemaVersion": 39,
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "weekStart": "",
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": [],
        "templating": {"list": [
            variable("model", "model", "label_values(inferwatch_records_decoded_total, model)"),
            variable("version", "version", 'label_values(inferwatch_records_decoded_total{model=~"$model"}, version)'),
        ]},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def push(url: str, token: str, folder_uid: str | None = None) -> Any:
    """Upload (create or overwrite) the dashboard with the ``grafana-client`` package."""
    from grafana_client import GrafanaApi

    api = GrafanaApi.from_url(url, credential=token)
    payload: dict[str, Any] = {"dashboard": dashboard(), "overwrite": True,
                               "message": "generated by dashboards/grafana/generate.py"}
    if folder_uid:
        payload["folderUid"] = folder_uid
    return api.dashboard.update_dashboard(payload)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT, help="where to write the JSON (default: %(default)s)")
    ap.add_argument("--stdout", action="store_true", help="print the JSON instead of writing it")
    ap.add_argument("--check", action="store_true", help="exit 1 if the file differs from the generated JSON")
    ap.add_argument("--push", metavar="URL", help="upload to this Grafana (needs --token)")
    ap.add_argument("--token", help="Grafana service-account token for --push")
    ap.add_argument("--folder-uid", help="Grafana folder for --push")
    args = ap.parse_args(argv)
    if args.push:
        if not args.token:
            ap.error("--push needs --token")
        result = push(args.push, args.token, args.folder_uid)
        print(json.dumps(result))
        return 0
    text = render()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        if not args.out.is_file() or args.out.read_text() != text:
            print(f"{args.out} is stale: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

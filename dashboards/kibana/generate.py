"""Generate the Kibana saved objects (NDJSON for the saved-objects import API).

    python dashboards/kibana/generate.py > dashboards/kibana/inferwatch.ndjson

Import with ``POST /api/saved_objects/_import`` (Kibana): data views for the records,
detections and dead-letter indices; saved searches over them; Lens visualisations (requests
per model over time, dead letters by reason, drift windows and drifted features over time,
outlier rows over time); and the dashboard ``inferwatch-overview`` that lays them out.

Queries use the Lucene syntax, which Kibana sends to Elasticsearch as a ``query_string``
query; filters are Elasticsearch query DSL; each Lens layer is a list of columns (bucket
columns ``date_histogram`` / ``terms`` in order, then a ``count`` metric), which Kibana turns
into nested aggregations. tests/integration/test_kibana_saved_objects.py runs exactly those
against the real node.
"""

from __future__ import annotations

import json
import sys
from typing import Any

PREFIX = "inferwatch"
DEMO_MODEL = "breast-cancer"
TIME_FIELD = {"records": "timestamp", "detections": "@timestamp", "deadletters": "timestamp"}
LAYER = "layer1"
SEARCH_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


def data_view(kind: str) -> dict[str, Any]:
    return {
        "id": f"{PREFIX}-{kind}",
        "type": "index-pattern",
        "attributes": {"title": f"{PREFIX}-{kind}-*", "name": f"inferwatch {kind}", "timeFieldName": TIME_FIELD[kind]},
        "references": [],
    }


def saved_search(sid: str, title: str, kind: str, query: str, columns: list[str],
                 filters: list[dict[str, Any]] | None = None, description: str = "") -> dict[str, Any]:
    source = {"query": {"query": query, "language": "lucene"}, "filter": filters or [], "indexRefName": SEARCH_REF}
    return {
        "id": sid,
        "type": "search",
        "attributes": {
            "title": title,
            "description": description,
            "columns": columns,
            "sort": [[TIME_FIELD[kind], "desc"]],
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)},
        },
        "references": [{"name": SEARCH_REF, "type": "index-pattern", "id": f"{PREFIX}-{kind}"}],
    }


def model_filter(model: str) -> dict[str, Any]:
    return {
        "meta": {"key": "model", "type": "phrase", "params": {"query": model}, "disabled": False,
                 "negate": False, "alias": None, "indexRefName": SEARCH_REF},
        "query": {"match_phrase": {"model": model}},
    }


# --- Lens ----------------------------------------------------------------------------------------


def date_column(field: str) -> dict[str, Any]:
    return {"label": field, "dataType": "date", "operationType": "date_histogram", "sourceField": field,
            "isBucketed": True, "scale": "interval", "params": {"interval": "auto", "includeEmptyRows": True}}


def terms_column(field: str, label: str, size: int = 10) -> dict[str, Any]:
    return {"label": label, "customLabel": True, "dataType": "string", "operationType": "terms", "sourceField": field,
            "isBucketed": True, "scale": "ordinal",
            "params": {"size": size, "orderBy": {"type": "column", "columnId": "count"}, "orderDirection": "desc",
                       "otherBucket": True, "missingBucket": False}}


def count_column(label: str) -> dict[str, Any]:
    return {"label": label, "customLabel": True, "dataType": "number", "operationType": "count",
            "sourceField": "___records___", "isBucketed": False, "scale": "ratio"}


def lens(lid: str, title: str, description: str, kind: str, query: str, *, x: tuple[str, dict[str, Any]],
         split: tuple[str, dict[str, Any]] | None, count_label: str, series: str = "bar_stacked") -> dict[str, Any]:
    """An XY Lens visualisation: x buckets, optional split buckets, one count metric."""
    columns = {x[0]: x[1], **({split[0]: split[1]} if split else {}), "count": count_column(count_label)}
    layer: dict[str, Any] = {"layerId": LAYER, "layerType": "data", "seriesType": series, "xAccessor": x[0],
                             "accessors": ["count"], "position": "top", "showGridlines": False}
    if split:
        layer["splitAccessor"] = split[0]
    return {
        "id": lid,
        "type": "lens",
        "attributes": {
            "title": title,
            "description": description,
            "visualizationType": "lnsXY",
            "state": {
                "datasourceStates": {"formBased": {"layers": {LAYER: {
                    "columnOrder": list(columns), "columns": columns, "incompleteColumns": {}}}}},
                "visualization": {"preferredSeriesType": series, "layers": [layer],
                                  "legend": {"isVisible": True, "position": "right"}, "valueLabels": "hide"},
                "query": {"query": query, "language": "lucene"},
                "filters": [],
                "adHocDataViews": {},
                "internalReferences": [],
            },
        },
        "references": [{"type": "index-pattern", "id": f"{PREFIX}-{kind}",
                        "name": f"indexpattern-datasource-layer-{LAYER}"}],
    }


def visualisations() -> list[dict[str, Any]]:
    return [
        lens("inferwatch-lens-requests-per-model", "inferwatch: requests per model",
             "Audited rows per model over time (a batch request of N rows counts N).", "records", "*",
             x=("time", date_column("timestamp")), split=("model", terms_column("model", "model")),
             count_label="rows"),
        lens("inferwatch-lens-deadletters-by-reason", "inferwatch: dead letters by reason",
             "Dead letters per reason, split by stage (decode, audit, index, detect).", "deadletters", "*",
             x=("reason", terms_column("reason.keyword", "reason", size=20)),
             split=("stage", terms_column("stage", "stage")), count_label="dead letters", series="bar_horizontal_stacked"),
        lens("inferwatch-lens-drift-windows", "inferwatch: drift windows over time",
             "Detector windows in which drift was found, per model.", "detections", "kind:drift AND is_drift:true",
             x=("time", date_column("@timestamp")), split=("model", terms_column("model", "model")),
             count_label="drifted windows"),
        lens("inferwatch-lens-drifted-features", "inferwatch: drifted features over time",
             "How often each feature was flagged in a drifted window.", "detections", "kind:drift AND is_drift:true",
             x=("time", date_column("@timestamp")),
             split=("feature", terms_column("drifted_features", "feature", size=20)), count_label="windows flagged"),
        lens("inferwatch-lens-outlier-rows", "inferwatch: outlier rows over time",
             "Rows that an outlier detector scored above its threshold, per model.", "records",
             r"outlier.\*.is_outlier:true",
             x=("time", date_column("timestamp")), split=("model", terms_column("model", "model")),
             count_label="outlier rows"),
    ]


def dashboard(panels: list[tuple[str, str, int, int, int, int]]) -> dict[str, Any]:
    """``panels``: (saved-object type, id, x, y, w, h) on Kibana's 48-column grid."""
    entries, refs = [], []
    for i, (otype, oid, x, y, w, h) in enumerate(panels, start=1):
        key = f"p{i}"
        entries.append({"type": otype, "panelIndex": key, "gridData": {"x": x, "y": y, "w": w, "h": h, "i": key},
                        "embeddableConfig": {"enhancements": {}}, "panelRefName": f"panel_{key}"})
        refs.append({"name": f"{key}:panel_{key}", "type": otype, "id": oid})
    return {
        "id": "inferwatch-overview",
        "type": "dashboard",
        "attributes": {
            "title": "inferwatch: audit overview",
            "description": "Requests, dead letters, drift and outliers from the inferwatch audit indices.",
            "panelsJSON": json.dumps(entries),
            "optionsJSON": json.dumps({"useMargins": True, "syncColors": False, "hidePanelTitles": False}),
            "timeRestore": True, "timeFrom": "now-24h", "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 60000},
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(
                {"query": {"query": "", "language": "lucene"}, "filter": []})},
        },
        "references": refs,
    }


def objects() -> list[dict[str, Any]]:
    vis = visualisations()
    searches = [
        saved_search("inferwatch-model-requests", "inferwatch: a model's requests over time", "records", "*",
                     ["model", "version", "record_id", "input", "output", "latency_ms"],
                     [model_filter(DEMO_MODEL)],
                     "Every audited row of one model, newest first. Change the model filter to yours."),
        saved_search("inferwatch-outliers", "inferwatch: outliers", "records", r"outlier.\*.is_outlier:true",
                     ["model", "version", "record_id", "input", "outlier"],
                     description="Rows that an outlier detector scored above its threshold."),
        saved_search("inferwatch-drift-windows", "inferwatch: drift windows", "detections",
                     "kind:drift AND is_drift:true",
                     ["model", "version", "detector", "p_value", "window_size", "drifted_features"],
                     description="Detector windows in which drift was found."),
        saved_search("inferwatch-deadletters", "inferwatch: dead letters", "deadletters", "*",
                     ["source", "stage", "reason"],
                     description="Payloads that could not be decoded or indexed, with the reason and raw bytes."),
    ]
    board = dashboard([
        ("lens", "inferwatch-lens-requests-per-model", 0, 0, 48, 12),
        ("lens", "inferwatch-lens-drift-windows", 0, 12, 24, 12),
        ("lens", "inferwatch-lens-drifted-features", 24, 12, 24, 12),
        ("lens", "inferwatch-lens-outlier-rows", 0, 24, 24, 12),
        ("lens", "inferwatch-lens-deadletters-by-reason", 24, 24, 24, 12),
        ("search", "inferwatch-outliers", 0, 36, 24, 15),
        ("search", "inferwatch-deadletters", 24, 36, 24, 15),
    ])
    return [data_view("records"), data_view("detections"), data_view("deadletters"), *searches, *vis, board]


def main() -> None:
    for obj in objects():
        sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

"""Generate the Kibana saved objects (NDJSON for the saved-objects import API).

    python dashboards/kibana/generate.py > dashboards/kibana/inferwatch.ndjson

Import with ``POST /api/saved_objects/_import`` (Kibana) — data views for the records,
detections and dead-letter indices, and saved searches over them. Queries use the Lucene
syntax, which Kibana sends to Elasticsearch as a ``query_string`` query; filters are
Elasticsearch query DSL. tests/integration/test_kibana_saved_objects.py runs exactly those
against the real node.
"""

from __future__ import annotations

import json
import sys
from typing import Any

PREFIX = "inferwatch"
DEMO_MODEL = "breast-cancer"


def data_view(kind: str, time_field: str) -> dict[str, Any]:
    return {
        "id": f"{PREFIX}-{kind}",
        "type": "index-pattern",
        "attributes": {"title": f"{PREFIX}-{kind}-*", "name": f"inferwatch {kind}", "timeFieldName": time_field},
        "references": [],
    }


def saved_search(sid: str, title: str, kind: str, query: str, columns: list[str], sort_field: str,
                 filters: list[dict[str, Any]] | None = None, description: str = "") -> dict[str, Any]:
    ref = "kibanaSavedObjectMeta.searchSourceJSON.index"
    source = {"query": {"query": query, "language": "lucene"}, "filter": filters or [], "indexRefName": ref}
    return {
        "id": sid,
        "type": "search",
        "attributes": {
            "title": title,
            "description": description,
            "columns": columns,
            "sort": [[sort_field, "desc"]],
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source)},
        },
        "references": [{"name": ref, "type": "index-pattern", "id": f"{PREFIX}-{kind}"}],
    }


def model_filter(model: str) -> dict[str, Any]:
    return {
        "meta": {"key": "model", "type": "phrase", "params": {"query": model}, "disabled": False,
                 "negate": False, "alias": None, "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"},
        "query": {"match_phrase": {"model": model}},
    }


def objects() -> list[dict[str, Any]]:
    return [
        data_view("records", "timestamp"),
        data_view("detections", "@timestamp"),
        data_view("deadletters", "timestamp"),
        saved_search("inferwatch-model-requests", "inferwatch: a model's requests over time", "records", "*",
                     ["model", "version", "record_id", "input", "output", "latency_ms"], "timestamp",
                     [model_filter(DEMO_MODEL)],
                     "Every audited row of one model, newest first. Change the model filter to yours."),
        saved_search("inferwatch-outliers", "inferwatch: outliers", "records", r"outlier.\*.is_outlier:true",
                     ["model", "version", "record_id", "input", "outlier"], "timestamp",
                     description="Rows that an outlier detector scored above its threshold."),
        saved_search("inferwatch-drift-windows", "inferwatch: drift windows", "detections",
                     "kind:drift AND is_drift:true",
                     ["model", "version", "detector", "p_value", "window_size", "drifted_features"], "@timestamp",
                     description="Detector windows in which drift was found."),
        saved_search("inferwatch-deadletters", "inferwatch: dead letters", "deadletters", "*",
                     ["source", "stage", "reason"], "timestamp",
                     description="Payloads that could not be decoded or indexed, with the reason and raw bytes."),
    ]


def main() -> None:
    for obj in objects():
        sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

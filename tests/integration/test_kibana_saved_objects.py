"""Kibana is not available here, so each saved search's query and filters run against the real
Elasticsearch exactly as Kibana would send them, and must return exactly the right documents."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inferwatch.config import ElasticsearchConfig
from inferwatch.record import DeadLetter, Detection, InferenceRecord
from sinks.elasticsearch import ElasticsearchAuditStore

pytestmark = pytest.mark.integration

NDJSON = Path(__file__).parents[2] / "dashboards" / "kibana" / "inferwatch.ndjson"


def _objects():
    return [json.loads(line) for line in NDJSON.read_text().splitlines() if line.strip()]


def test_ndjson_is_generated_from_the_code():
    out = subprocess.run([sys.executable, str(NDJSON.parent / "generate.py")], capture_output=True, check=True)
    assert out.stdout.decode() == NDJSON.read_text()


def test_every_search_references_a_data_view():
    objs = _objects()
    views = {o["id"] for o in objs if o["type"] == "index-pattern"}
    searches = [o for o in objs if o["type"] == "search"]
    assert len(searches) == 4 and len(views) == 3
    for s in searches:
        assert {r["id"] for r in s["references"]} <= views


@pytest.fixture
def populated(stack_env):
    prefix = "iwk-" + uuid.uuid4().hex[:10]
    store = ElasticsearchAuditStore(ElasticsearchConfig(hosts=[stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"]],
                                                        index_prefix=prefix))
    t = datetime(2026, 3, 1, tzinfo=UTC)
    recs = [InferenceRecord(id=f"bc-{i}", model="breast-cancer", timestamp=t, inputs={"x": [i, i + 1]})
            for i in range(3)]
    recs += [InferenceRecord(id=f"other-{i}", model="income", timestamp=t, inputs={"x": [i]}) for i in range(2)]
    store.write_records(recs)
    store.refresh()
    store.write_detections([
        Detection(detector="ks", kind="drift", model="breast-cancer", window_size=5, is_drift=True, p_value=1e-6,
                  window_start=t, window_end=t, feature_drift={"x": True}),
        Detection(detector="ks", kind="drift", model="income", window_size=5, is_drift=False, p_value=0.4,
                  window_start=t, window_end=t),
        Detection(detector="iforest", kind="outlier", model="breast-cancer", window_size=2, is_outlier=True,
                  threshold=0.7, row_ids=["bc-0-1", "bc-2-0"], scores=[0.9, 0.1], window_start=t),
    ])
    store.write_deadletters([DeadLetter(raw=b"\xff", source="cloudevents", reason="invalid JSON"),
                             DeadLetter(raw=b"{}", source="json", reason="no model")])
    store.refresh()
    yield prefix, store
    names = list(store.es.indices.get(index=f"{prefix}-*").body)
    store.es.indices.delete(index=",".join(names))
    for name in ("records", "detections", "deadletters"):
        store.es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-{name}")
    store.close()


def _run_saved_search(es, obj, views, prefix):
    source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    view = views[obj["references"][0]["id"]]
    index = view["attributes"]["title"].replace("inferwatch-", f"{prefix}-", 1)
    assert source["query"]["language"] == "lucene"
    query = {"bool": {"must": [{"query_string": {"query": source["query"]["query"], "analyze_wildcard": True}}],
                      "filter": [f["query"] for f in source["filter"] if not f["meta"].get("disabled")]}}
    (sort_field, order), = obj["attributes"]["sort"]
    hits = es.search(index=index, query=query, size=100, sort=[{sort_field: order}])["hits"]["hits"]
    return sorted(h["_id"] for h in hits)


def test_saved_searches_return_exactly_their_documents(populated):
    prefix, store = populated
    objs = _objects()
    views = {o["id"]: o for o in objs if o["type"] == "index-pattern"}
    searches = {o["id"]: o for o in objs if o["type"] == "search"}
    es = store.es
    run = lambda sid: _run_saved_search(es, searches[sid], views, prefix)  # noqa: E731
    assert run("inferwatch-model-requests") == sorted(f"bc-{i}-{j}" for i in range(3) for j in range(2))
    assert run("inferwatch-outliers") == ["bc-0-1"]
    drift = run("inferwatch-drift-windows")
    assert len(drift) == 1
    found = es.search(index=f"{prefix}-detections-*", query={"ids": {"values": drift}})["hits"]["hits"]
    assert found[0]["_source"]["model"] == "breast-cancer" and found[0]["_source"]["is_drift"] is True
    letters = run("inferwatch-deadletters")
    assert len(letters) == 2

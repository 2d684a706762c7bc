"""Kibana is not available here, so each saved search's query and filters, and each Lens
visualisation's aggregation, run against the real Elasticsearch as Kibana would send them, and
must return exactly the documents and bucket counts the fixture wrote. Offline checks: every
reference resolves, every Lens column's field exists in the index templates with a type its
operation can aggregate, and the dashboard's grid is sound."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from inferwatch.config import ElasticsearchConfig
from inferwatch.record import DeadLetter, Detection, InferenceRecord
from sinks.elasticsearch import ElasticsearchAuditStore, index_templates
from tests.integration.conftest import drop_es_store

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


def _field_type(mapping: dict, field: str) -> str | None:
    """The mapped type of ``field`` (dots walk properties and multi-fields)."""
    node: dict = {"properties": mapping["properties"]}
    for part in field.split("."):
        children = {**node.get("properties", {}), **node.get("fields", {})}
        if part not in children:
            return None
        node = children[part]
    return node.get("type")


def test_lens_visualisations_and_dashboard_are_sound():
    objs = _objects()
    by_id = {(o["type"], o["id"]): o for o in objs}
    assert len(by_id) == len(objs), "duplicate saved-object ids"
    templates = index_templates()
    lenses = [o for o in objs if o["type"] == "lens"]
    assert {o["id"] for o in lenses} == {
        "inferwatch-lens-requests-per-model", "inferwatch-lens-deadletters-by-reason", "inferwatch-lens-drift-windows",
        "inferwatch-lens-drifted-features", "inferwatch-lens-outlier-rows"}
    for o in lenses:
        state = o["attributes"]["state"]
        (layer_id, layer), = state["datasourceStates"]["formBased"]["layers"].items()
        (ref,) = o["references"]
        assert ref["name"] == f"indexpattern-datasource-layer-{layer_id}"
        view = by_id[("index-pattern", ref["id"])]
        kind = view["attributes"]["title"].split("-")[1]
        mapping = templates[f"inferwatch-{kind}"]["template"]["mappings"]
        order = layer["columnOrder"]
        assert sorted(order) == sorted(layer["columns"])
        assert [layer["columns"][c]["isBucketed"] for c in order] == sorted(
            (layer["columns"][c]["isBucketed"] for c in order), reverse=True), "buckets before metrics"
        for col in layer["columns"].values():
            if col["operationType"] == "count":
                continue
            ftype = _field_type(mapping, col["sourceField"])
            want = {"date_histogram": {"date"}, "terms": {"keyword"}}[col["operationType"]]
            assert ftype in want, f"{o['id']}: {col['sourceField']} is {ftype}, not aggregatable as {want}"
        vis_layer, = state["visualization"]["layers"]
        accessors = {vis_layer["xAccessor"], vis_layer.get("splitAccessor"), *vis_layer["accessors"]} - {None}
        assert accessors == set(layer["columns"]), o["id"]
    (board,) = [o for o in objs if o["type"] == "dashboard"]
    panels = json.loads(board["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in board["references"]}
    cells: set[tuple[int, int]] = set()
    for p in panels:
        ref = refs[f"{p['panelIndex']}:{p['panelRefName']}"]
        assert (ref["type"], ref["id"]) in by_id and ref["type"] == p["type"]
        g = p["gridData"]
        assert g["x"] + g["w"] <= 48
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells
        cells |= mine
    assert {r["id"] for r in refs.values() if r["type"] == "lens"} == {o["id"] for o in lenses}


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
                             DeadLetter(raw=b"{}", source="json", reason="no model"),
                             DeadLetter(raw=b"{}", source="json", reason="no model", stage="audit")])
    store.refresh()
    yield prefix, store
    drop_es_store(store)


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
    assert len(letters) == 3


def _aggs(columns: dict, order: list[str], start: datetime, end: datetime) -> dict:
    """The nested aggregation Kibana builds from a Lens layer: bucket columns in column order."""
    aggs: dict = {}
    for cid in reversed([c for c in order if columns[c]["isBucketed"]]):
        col = columns[cid]
        if col["operationType"] == "date_histogram":
            body = {"date_histogram": {"field": col["sourceField"], "fixed_interval": "1d", "min_doc_count": 0,
                                       "extended_bounds": {"min": start.isoformat(), "max": end.isoformat()}}}
        else:
            body = {"terms": {"field": col["sourceField"], "size": col["params"]["size"],
                              "order": {"_count": col["params"]["orderDirection"]}}}
        if aggs:
            body["aggs"] = aggs
        aggs = {cid: body}
    return aggs


def _leaves(aggs: dict, result: dict, path: tuple = ()) -> list[tuple[tuple, int]]:
    (cid, spec), = aggs.items()
    out = []
    for b in result[cid]["buckets"]:
        key = (cid, b.get("key_as_string", b["key"]))
        if "aggs" in spec:
            out += _leaves(spec["aggs"], b, (*path, key))
        elif b["doc_count"]:
            out.append(((*path, key), b["doc_count"]))
    return out


def _run_lens(es, obj, views, prefix, start, end) -> list[tuple[tuple, int]]:
    state = obj["attributes"]["state"]
    (layer,) = state["datasourceStates"]["formBased"]["layers"].values()
    view = views[obj["references"][0]["id"]]
    index = view["attributes"]["title"].replace("inferwatch-", f"{prefix}-", 1)
    time_field = view["attributes"]["timeFieldName"]
    assert state["query"]["language"] == "lucene"
    query = {"bool": {"must": [{"query_string": {"query": state["query"]["query"], "analyze_wildcard": True}}],
                      "filter": [{"range": {time_field: {"gte": start.isoformat(), "lte": end.isoformat()}}}]}}
    aggs = _aggs(layer["columns"], layer["columnOrder"], start, end)
    resp = es.search(index=index, query=query, aggs=aggs, size=0)
    return _leaves(aggs, resp["aggregations"])


def _by(leaves: list[tuple[tuple, int]], *cols: str) -> Counter:
    out: Counter = Counter()
    for path, n in leaves:
        keys = dict(path)
        out[tuple(keys[c] for c in cols) if len(cols) > 1 else keys[cols[0]]] += n
    return out


def test_every_lens_aggregation_returns_the_fixture_buckets(populated):
    prefix, store = populated
    objs = _objects()
    views = {o["id"]: o for o in objs if o["type"] == "index-pattern"}
    lenses = {o["id"]: o for o in objs if o["type"] == "lens"}
    start, end = datetime(2026, 2, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1)
    run = lambda lid: _run_lens(store.es, lenses[lid], views, prefix, start, end)  # noqa: E731

    requests = run("inferwatch-lens-requests-per-model")
    assert _by(requests, "model") == {"breast-cancer": 6, "income": 2}  # 3 records x 2 rows, 2 x 1
    assert {dict(p)["time"][:10] for p, _ in requests} == {"2026-03-01"}
    letters = run("inferwatch-lens-deadletters-by-reason")
    assert _by(letters, "reason", "stage") == {("invalid JSON", "decode"): 1, ("no model", "decode"): 1,
                                               ("no model", "audit"): 1}
    assert _by(run("inferwatch-lens-drift-windows"), "model") == {"breast-cancer": 1}
    assert _by(run("inferwatch-lens-drifted-features"), "feature") == {"x": 1}
    assert _by(run("inferwatch-lens-outlier-rows"), "model") == {"breast-cancer": 1}  # bc-0-1 (0.9 > 0.7)

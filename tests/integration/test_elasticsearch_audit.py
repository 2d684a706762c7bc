"""The Elasticsearch audit store against the real node: the same contract as SQLite, plus
what only Elasticsearch does (templates, mapping errors to dead letters)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from inferwatch.audit import SearchQuery
from inferwatch.config import ElasticsearchConfig
from inferwatch.record import InferenceRecord
from sinks.elasticsearch import ElasticsearchAuditStore
from tests.contracts import AuditStoreContract

pytestmark = pytest.mark.integration


def _store(stack_env, **kw):
    prefix = "iwt-" + uuid.uuid4().hex[:10]
    cfg = ElasticsearchConfig(hosts=[stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"]], index_prefix=prefix)
    return ElasticsearchAuditStore(cfg, **kw)


def _cleanup(store):
    names = list(store.es.indices.get(index=f"{store.prefix}-*", allow_no_indices=True).body)
    if names:
        store.es.indices.delete(index=",".join(names))
    for name in ("records", "detections", "deadletters"):
        store.es.options(ignore_status=404).indices.delete_index_template(name=f"{store.prefix}-{name}")
    store.close()


class TestElasticsearchAudit(AuditStoreContract):
    @pytest.fixture
    def store(self, stack_env):
        s = _store(stack_env)
        yield s
        _cleanup(s)

    def refresh(self, store):
        store.refresh()


@pytest.fixture
def es_store(stack_env):
    s = _store(stack_env)
    yield s
    _cleanup(s)


def test_templates_map_fields_explicitly(es_store):
    es_store.write_records([InferenceRecord(id="a", model="Income Model", inputs={"age": [30], "city": ["Oslo"]},
                                            request='{"x": 1}', latency_ms=3.5)])
    es_store.refresh()
    (index,) = es_store.es.indices.get(index=f"{es_store.prefix}-records-*").body
    assert index.startswith(f"{es_store.prefix}-records-income_model-")
    props = es_store.es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert props["timestamp"]["type"] == "date" and props["latency_ms"]["type"] == "float"
    assert props["input"]["type"] == "flattened" and props["record_id"]["type"] == "keyword"
    assert props["request"]["index"] is False
    # flattened keys are queryable per column, as Kibana filters do
    hits = es_store.es.search(index=index, query={"term": {"input.city": "Oslo"}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["a-0"]
    # the raw body is stored verbatim but not indexed
    from elasticsearch import BadRequestError

    with pytest.raises(BadRequestError, match="not indexed"):
        es_store.es.count(index=index, query={"match": {"request": "x"}})
    assert es_store.get("a-0")["request"] == '{"x": 1}'


def test_kibana_full_text_finds_a_row_by_feature_name_and_value(es_store):
    """Issue 12: the full text is filled by Elasticsearch (copy_to from ``fulltext.*``); a Kibana
    search bar query (``query_string`` over every field, what Discover sends) and a ``match`` on
    ``payload_text`` find a row by a column's value and by its name, the raw body's words too;
    the copy_to target is not in the returned document."""
    es = es_store.es
    es_store.write_records([
        InferenceRecord(id="a", model="m", inputs={"petal_width": [3.25], "city": ["Trondheim"]},
                        outputs={"species": ["virginica"]}, request='{"note": "zebra"}'),
        InferenceRecord(id="b", model="m", inputs={"sepal_length": [5.1], "city": ["Bergen"]},
                        outputs={"species": ["setosa"]})])
    es_store.refresh()
    index = f"{es_store.prefix}-records-*"
    for words, want in (("3.25", ["a-0"]), ("petal_width", ["a-0"]), ("Trondheim", ["a-0"]), ("zebra", ["a-0"]),
                        ("sepal_length", ["b-0"]), ("setosa", ["b-0"]), ("species", ["a-0", "b-0"]),
                        ("petal_width AND virginica", ["a-0"]), ("petal_width AND setosa", [])):
        for query in ({"query_string": {"query": words, "analyze_wildcard": True}},
                      {"query_string": {"query": words, "default_field": "payload_text"}}):
            hits = es.search(index=index, query=query)["hits"]["hits"]
            assert sorted(h["_id"] for h in hits) == want, (query, [h["_id"] for h in hits])
    hits = es.search(index=index, query={"match_phrase": {"payload_text": "petal_width 3.25"}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["a-0"]
    src = es.search(index=index, query={"ids": {"values": ["a-0"]}})["hits"]["hits"][0]["_source"]
    assert "payload_text" not in src and src["fulltext"]["request"] == '{"note": "zebra"}'
    assert "fulltext" not in es_store.get("a-0") and es_store.search(SearchQuery(text="zebra"))[0].keys() == \
        es_store.get("a-0").keys()


def test_an_index_made_by_the_older_template_takes_the_new_documents(stack_env):
    """An upgrade during the day: today's records index has the mapping of before ``fulltext``
    (strict: an unknown field would be a mapping error, every record a dead letter). Setting the
    store up adds the new fields to it; records are written and found by their words."""
    from sinks.elasticsearch import index_templates

    letters: list = []
    store = _store(stack_env, on_deadletter=letters.extend, setup=False)
    try:
        mapping = index_templates(store.prefix)[f"{store.prefix}-records"]["template"]["mappings"]
        old = {**mapping, "properties": {k: v for k, v in mapping["properties"].items() if k != "fulltext"}}
        from datetime import UTC, datetime

        t = datetime(2026, 5, 4, tzinfo=UTC)
        store.es.indices.create(index=store.records_index("m", t), mappings=old)
        store.setup()
        assert store.write_records([InferenceRecord(id="u", model="m", timestamp=t, inputs={"city": ["Tromso"]})]) == 1
        store.refresh()
        assert not letters and [d["doc_id"] for d in store.search(SearchQuery(text="tromso"))] == ["u-0"]
    finally:
        _cleanup(store)


def test_mapping_errors_become_dead_letters(stack_env):
    got: list = []
    store = _store(stack_env, on_deadletter=got.extend)
    try:
        good = InferenceRecord(id="good", model="m", inputs={"x": [1]})
        bad = InferenceRecord(id="bad", model="m", inputs={"x": [1]})
        bad.latency_ms = "not a number"  # type: ignore[assignment]  # what a careless client sends
        assert store.write_records([good, bad]) == 1
        store.refresh()
        assert store.get("good-0") is not None and store.get("bad-0") is None
        assert len(got) == 1
        assert "document_parsing_exception" in got[0].reason or "mapper_parsing_exception" in got[0].reason
        letters = store.search(SearchQuery(kind="deadletters"))
        assert len(letters) == 1 and letters[0]["stage"] == "index"
        assert b'"id":"bad"' in got[0].raw
    finally:
        _cleanup(store)


def test_detection_documents_keep_untested_features_and_dropped_cells(es_store):
    """Issue 9: a window with a bad cell and an all-bad column is tested, and the audit
    document in the real Elasticsearch says what was not tested, why, and what was dropped."""
    import numpy as np

    from detectors import TabularDrift

    rng = np.random.default_rng(0)
    ref = {"a": rng.normal(size=300).tolist(), "b": rng.normal(size=300).tolist(), "k": rng.integers(0, 3, 300).tolist()}
    win = {"a": [*rng.normal(size=40).tolist(), "?", None], "b": ["n/a"] * 42, "k": rng.integers(0, 3, 42).tolist()}
    det = TabularDrift().fit(ref).update(win).result()
    det.model = "bad-cells"
    es_store.write_detections([det])
    es_store.refresh()
    (doc,) = es_store.search(SearchQuery(kind="detections", model="bad-cells"))
    extra = doc["extra"]
    assert extra["n_tested"] == 2 and extra["values_tested"] == {"a": 40, "k": 42}
    assert extra["bad_values"] == {"a": 1, "b": 42} and extra["missing_values"]["a"] == 1
    assert "42 bad cells" in extra["untested"]["b"]
    assert extra["methods"]["a"] == "asymptotic" and extra["tests"]["k"] == "chi2"


def test_a_waiting_label_joins_its_prediction_after_a_restart(stack_env):
    """Issue 14: labels that came before their predictions wait in the model's waiting index; a
    new store (a restarted audit worker, nothing cached) still finds them when the predictions
    come days apart, and the waiting copies are gone once joined."""
    first = _store(stack_env)
    try:
        labels = InferenceRecord(id="late", model="m", part="feedback", truth={"y": [1, 0, None]},
                                 timestamp=datetime(2026, 3, 9, tzinfo=UTC))
        assert first.write_records([labels]) == 2
        cfg = ElasticsearchConfig(hosts=[stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"]], index_prefix=first.prefix)
        second = ElasticsearchAuditStore(cfg)
        pred = InferenceRecord(id="late", model="m", outputs={"label": [1, 1, 0]}, inputs={"x": [0.1, 0.2, 0.3]},
                               timestamp=datetime(2026, 3, 1, 23, 59, tzinfo=UTC))
        assert second.write_records([pred]) == 3
        second.refresh()
        hits = second.es.search(index=f"{first.prefix}-records-*", query={"term": {"record_id": "late"}},
                                size=10)["hits"]["hits"]
        assert sorted((h["_index"], h["_id"]) for h in hits) == [
            (f"{first.prefix}-records-m-2026.03.01", f"late-{i}") for i in range(3)]
        truth = {h["_id"]: h["_source"].get("truth") for h in hits}
        assert truth == {"late-0": {"y": 1}, "late-1": {"y": 0}, "late-2": None}
        assert second.es.count(index=second.waiting_index("m"))["count"] == 0
        second.close()
    finally:
        _cleanup(first)

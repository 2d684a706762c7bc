"""The Elasticsearch audit store against the real node: the same contract as SQLite, plus
what only Elasticsearch does (templates, mapping errors to dead letters)."""

from __future__ import annotations

import http.server
import threading
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from inferwatch.audit import SearchQuery
from inferwatch.config import ElasticsearchConfig
from inferwatch.record import InferenceRecord
from sinks.elasticsearch import ElasticsearchAuditStore
from tests.contracts import AuditStoreContract
from tests.integration.conftest import drop_es_store

pytestmark = pytest.mark.integration


def _store(stack_env, **kw):
    prefix = "iwt-" + uuid.uuid4().hex[:10]
    cfg = ElasticsearchConfig(hosts=[stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"]], index_prefix=prefix)
    return ElasticsearchAuditStore(cfg, **kw)


class TestElasticsearchAudit(AuditStoreContract):
    @pytest.fixture
    def store(self, stack_env):
        s = _store(stack_env)
        yield s
        drop_es_store(s)

    def refresh(self, store):
        store.refresh()


@pytest.fixture
def es_store(stack_env):
    s = _store(stack_env)
    yield s
    drop_es_store(s)


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
        drop_es_store(store)


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
        drop_es_store(store)


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
        drop_es_store(first)


def test_a_request_the_cluster_refuses_whole_is_split_and_only_its_refused_document_dead_lettered(stack_env):
    """Elasticsearch refuses a whole ``_bulk`` request (400) when one action in it is invalid — here a
    document id over its 512-byte limit (a record built past the collector's cap). The store splits
    the request until that action is alone: every other document is written, the refused one is a
    dead letter with the cluster's reason, and the write returns (the worker goes on)."""
    got: list = []
    store = _store(stack_env, on_deadletter=got.extend)
    try:
        records = [InferenceRecord(id=f"ok-{i}", model="m", inputs={"x": [i]}) for i in range(9)]
        records.insert(5, InferenceRecord(id="x" * 600, model="m", inputs={"x": [99]}))
        assert store.write_records(records) == 9
        store.refresh()
        assert all(store.get(f"ok-{i}-0") is not None for i in range(9))
        assert store.count(SearchQuery()) == 9
        assert len(got) == 1 and got[0].reason.startswith("400 ") and "512" in got[0].reason
        assert InferenceRecord.from_json(got[0].raw).id == "x" * 600
        assert [d["id"] for d in store.search(SearchQuery(kind="deadletters"))] == [got[0].id]
    finally:
        drop_es_store(store)


class _SizeLimit(http.server.BaseHTTPRequestHandler):
    """A loopback proxy in front of the real node that answers 413 to a body over ``limit`` bytes
    (what Elasticsearch does past ``http.max_content_length``, and proxies do at their own limits)."""

    target = ""
    limit = 0
    sizes: list[int] = []

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.command in ("POST", "PUT") and self.path.split("?")[0].endswith("/_bulk"):
            self.sizes.append(len(body))
            if len(body) > self.limit:
                self.send_response(413)
                self.send_header("content-length", "0")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.end_headers()
                return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        resp = httpx.request(self.command, self.target + self.path, content=body, headers=headers, timeout=30)
        self.send_response(resp.status_code)
        for k, v in resp.headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                self.send_header(k, v)
        self.send_header("content-length", str(len(resp.content)))
        self.end_headers()
        self.wfile.write(resp.content)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _forward

    def log_message(self, *args: object) -> None:
        pass


def test_a_request_over_the_size_limit_is_split_and_an_oversize_document_dead_lettered(stack_env):
    hosts = stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"]
    _SizeLimit.target = hosts.rstrip("/")
    _SizeLimit.limit, _SizeLimit.sizes = 20_000, []
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SizeLimit)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    got: list = []
    prefix = "iwt-" + uuid.uuid4().hex[:10]
    cfg = ElasticsearchConfig(hosts=[f"http://127.0.0.1:{proxy.server_address[1]}"], index_prefix=prefix)
    store = ElasticsearchAuditStore(cfg, on_deadletter=got.extend)
    direct = ElasticsearchAuditStore(ElasticsearchConfig(hosts=[hosts], index_prefix=prefix), setup=False)
    try:
        records = [InferenceRecord(id=f"r{i}", model="m", inputs={"x": [i]}, request="y" * 400) for i in range(30)]
        records.insert(17, InferenceRecord(id="huge", model="m", inputs={"x": [0]}, request="z" * 50_000))
        assert store.write_records(records) == 30
        direct.refresh()
        assert direct.count(SearchQuery()) == 30 and direct.get("huge-0") is None
        assert [(dl.id, dl.reason[:4]) for dl in got] == [("es-huge-0", "413 ")]
        assert InferenceRecord.from_json(got[0].raw).request == "z" * 50_000  # the whole record, to the log
        # the letter itself is over the limit too: the store keeps its reason and first KiB
        (kept,) = direct.search(SearchQuery(kind="deadletters"))
        assert kept["id"] == "es-huge-0" and "only the first 1024" in kept["reason"]
        assert _SizeLimit.sizes[0] > _SizeLimit.limit  # the first request was the whole chunk, refused
        assert len(_SizeLimit.sizes) < 31  # split in halves, not one document per request
    finally:
        store.close()
        proxy.shutdown()
        drop_es_store(direct)

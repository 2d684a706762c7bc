"""The bulk retry and dead-letter logic of the Elasticsearch audit store, as pure logic: a scripted
client answers with the item-level statuses a loaded cluster sends. (The store against the real
node is in tests/integration/; this covers statuses the test node cannot be made to send.)"""

from __future__ import annotations

import orjson
import pytest

from inferwatch.config import ElasticsearchConfig
from inferwatch.errors import BackpressureError
from inferwatch.record import InferenceRecord
from sinks.elasticsearch import ElasticsearchAuditStore, index_templates


class ScriptedBulk:
    """Answers each bulk call with the next scripted list of statuses (default 201 for all)."""

    def __init__(self, script):
        self.script = list(script)
        self.calls: list[list[dict]] = []

    def bulk(self, operations, **_):
        lines = [orjson.loads(x) for x in operations.splitlines()]
        actions = [line for line in lines if len(line) == 1 and next(iter(line)) in ("create", "update", "index")]
        self.calls.append(actions)
        statuses = self.script.pop(0) if self.script else [201] * len(actions)
        items = []
        for a, st in zip(actions, statuses, strict=True):
            op = next(iter(a))
            res = {"status": st}
            if st >= 300:
                res["error"] = {"type": "es_rejected_execution_exception" if st == 429 else
                                "document_parsing_exception", "reason": f"status {st}"}
            items.append({op: res})
        return {"errors": any(s >= 300 for s in statuses), "items": items}

    class indices:  # the client's namespace: no label is waiting for these rows
        @staticmethod
        def exists(index):
            return False

    def close(self):
        pass


def _store(script, **cfg):
    client = ScriptedBulk(script)
    letters = []
    store = ElasticsearchAuditStore(ElasticsearchConfig(max_backoff_s=0.01, **cfg), client=client,
                                    on_deadletter=letters.extend, setup=False)
    return store, client, letters


def _recs(n):
    return [InferenceRecord(id=f"r{i}", model="m", inputs={"x": [i]}) for i in range(n)]


def test_item_level_429_and_503_are_retried_until_written():
    store, client, letters = _store([[201, 429, 201, 503], [429, 201], [201]])
    assert store.write_records(_recs(4)) == 4
    retried = [[a[next(iter(a))]["_id"] for a in call] for call in client.calls]
    assert retried == [["r0-0", "r1-0", "r2-0", "r3-0"], ["r1-0", "r3-0"], ["r1-0"]]
    assert letters == []


def test_mapping_errors_become_dead_letters_with_the_record():
    store, client, letters = _store([[201, 400, 201], [201]])  # second call: the dead letter itself
    assert store.write_records(_recs(3)) == 2
    assert len(letters) == 1 and "document_parsing_exception" in letters[0].reason
    assert InferenceRecord.from_json(letters[0].raw).id == "r1"
    assert next(iter(client.calls[1][0]))  # the dead letter was indexed


def test_create_conflict_falls_back_to_a_merge():
    store, client, _ = _store([[409, 201], [200]])
    assert store.write_records(_recs(2)) == 2
    assert next(iter(client.calls[0][0])) == "create"
    assert next(iter(client.calls[1][0])) == "update" and client.calls[1][0]["update"]["_id"] == "r0-0"


def test_persistent_429_raises_backpressure_and_keeps_nothing_back():
    store, _, _ = _store([[429, 429]] * 10, max_retries=3)
    with pytest.raises(BackpressureError, match="still rejected"):
        store.write_records(_recs(2))


def test_chunks_are_bounded_by_actions_and_bytes():
    store, client, _ = _store([], chunk_actions=3)
    assert store.write_records(_recs(7)) == 7
    assert [len(c) for c in client.calls] == [3, 3, 1]
    store, client, _ = _store([], chunk_bytes=600)
    assert store.write_records(_recs(7)) == 7
    assert len(client.calls) > 2 and all(len(c) <= 3 for c in client.calls)


def test_templates_options():
    plain = index_templates("iw")
    assert set(plain) == {"iw-records", "iw-detections", "iw-deadletters"}
    assert "data_stream" not in plain["iw-detections"]
    assert plain["iw-records"]["template"]["mappings"]["properties"]["input"]["type"] == "flattened"
    managed = index_templates("iw", ilm_policy="keep-30d", data_stream=True, replicas=1)
    assert managed["iw-records"]["template"]["settings"]["index.lifecycle.name"] == "keep-30d"
    assert managed["iw-detections"]["data_stream"] == {} and managed["iw-deadletters"]["data_stream"] == {}
    assert "data_stream" not in managed["iw-records"]  # records are merged by id: never a data stream


class ScriptedReads:
    """A search endpoint that answers 503 (shards not started) a given number of times first, and
    a cluster-health endpoint that records the waits asked of it."""

    def __init__(self, unavailable: int):
        from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig

        self.unavailable = unavailable
        self.searches = 0
        self.health_calls: list[dict] = []
        self.meta = ApiResponseMeta(status=503, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                                    node=NodeConfig("http", "127.0.0.1", 9200))
        self.cluster = self

    def health(self, **kw):
        self.health_calls.append(kw)
        return {"status": "yellow"}

    def search(self, **_):
        from elasticsearch import ApiError

        self.searches += 1
        if self.searches <= self.unavailable:
            raise ApiError("search_phase_execution_exception", meta=self.meta,
                           body={"error": {"type": "search_phase_execution_exception"}, "status": 503})
        return {"hits": {"hits": [{"_id": "d-0", "_source": {"doc_id": "d-0", "payload_text": "x"}}]}}

    def close(self):
        pass


def test_a_read_waits_for_shards_that_are_not_started_yet():
    from inferwatch.audit import SearchQuery

    client = ScriptedReads(unavailable=2)
    store = ElasticsearchAuditStore(ElasticsearchConfig(), client=client, setup=False)
    assert store.search(SearchQuery(kind="records")) == [{"doc_id": "d-0"}]
    assert client.searches == 3
    assert [c["wait_for_status"] for c in client.health_calls] == ["yellow", "yellow"]
    assert client.health_calls[0]["index"].endswith("-records-*")


def test_a_read_that_stays_unavailable_is_backpressure_not_a_crash():
    from inferwatch.audit import SearchQuery

    client = ScriptedReads(unavailable=10)
    store = ElasticsearchAuditStore(ElasticsearchConfig(), client=client, setup=False)
    with pytest.raises(BackpressureError, match="while search"):
        store.search(SearchQuery(kind="deadletters"))
    assert client.searches == 3


class RefusingBulk(ScriptedBulk):
    """Refuses a whole ``_bulk`` request (``status``) when it holds the action for ``bad``, as the
    cluster does for an invalid action (400) or a body over its size limit (413)."""

    def __init__(self, bad: str, status: int):
        super().__init__([])
        self.bad, self.status = bad, status

    def bulk(self, operations, **kw):
        from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
        from elasticsearch import ApiError

        if f'"_id":"{self.bad}"'.encode() in operations:
            self.calls.append([])
            meta = ApiResponseMeta(status=self.status, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                                   node=NodeConfig("http", "127.0.0.1", 9200))
            raise ApiError("refused", meta=meta, body={"error": {"type": "refused", "reason": f"because {self.bad}"}})
        return super().bulk(operations, **kw)


@pytest.mark.parametrize("status", [400, 413])
def test_a_request_refused_whole_is_split_and_only_the_refused_document_dead_lettered(status):
    client = RefusingBulk("r5-0", status)
    letters: list = []
    store = ElasticsearchAuditStore(ElasticsearchConfig(max_backoff_s=0.01), client=client,
                                    on_deadletter=letters.extend, setup=False)
    assert store.write_records(_recs(8)) == 7  # returns: no error for the caller, nothing else held back
    written = {a[next(iter(a))]["_id"] for call in client.calls for a in call}
    assert written == {f"r{i}-0" for i in range(8) if i != 5} | {letters[0].id}
    assert len(letters) == 1 and letters[0].reason.startswith(f"{status} ") and "r5-0" in letters[0].reason
    assert InferenceRecord.from_json(letters[0].raw).id == "r5" and letters[0].stage == "index"
    assert len(client.calls) <= 1 + 2 * 3 + 1  # halves: a search for the refused one, not one request each


def test_a_refused_outlier_score_becomes_a_dead_letter_and_the_write_goes_on():
    """A row's score the cluster refuses (say, a mapping conflict on the row's document) is kept as
    a dead letter naming the row and its score; the detections and the other scores are written,
    and the call returns (it used to raise on every retry, holding the detections sink)."""
    from datetime import UTC, datetime, timedelta

    from inferwatch.record import Detection

    day = datetime(2026, 3, 1, 10, tzinfo=UTC)
    d = Detection(detector="iqr", kind="outlier", model="m", threshold=1.0, window_start=day,
                  window_end=day + timedelta(minutes=5), row_ids=["r1-0", "r2-0"], scores=[3.5, 0.5])
    # the detections bulk, then the scores bulk: the second row's update refused
    store, client, letters = _store([[201], [200, 400]])
    assert store.write_detections([d]) == 1
    assert [next(iter(a)) for a in client.calls[1]] == ["update", "update"]
    # the letter is indexed in the dead-letter index and handed on (the log's dead-letter topic)
    assert [a["index"]["_id"] for a in client.calls[2]] == ["es-r2-0"] and len(client.calls) == 3
    assert len(letters) == 1
    letter = letters[0]
    assert letter.stage == "index" and "400" in letter.reason
    kept = orjson.loads(letter.raw)
    assert kept["doc_id"] == "r2-0" and kept["outlier"] == {"iqr": {"score": 0.5, "is_outlier": False}}

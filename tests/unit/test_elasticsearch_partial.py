"""A whole-range read of the Elasticsearch store refuses an answer that left shards out (a 200
with failed shards counts their rows as none) instead of counting it."""

from __future__ import annotations

import pytest

from inferwatch.config import ElasticsearchConfig
from inferwatch.errors import AuditStoreError
from sinks.elasticsearch import ElasticsearchAuditStore


class _Client:
    def __init__(self, resp):
        self.resp = resp
        self.options_seen = []

    def options(self, **kw):
        self.options_seen.append(kw)
        return self

    def search(self, **kw):
        return self.resp


def _store(resp) -> ElasticsearchAuditStore:
    return ElasticsearchAuditStore(ElasticsearchConfig(hosts=["http://x:1"], index_prefix="p"),
                                   client=_Client(resp), setup=False)


def test_failed_shards_are_an_error_not_zero_rows():
    resp = {"_shards": {"total": 2, "successful": 0, "failed": 2, "failures": [
        {"reason": {"type": "circuit_breaking_exception", "reason": "[parent] Data too large"}}]},
        "hits": {"total": {"value": 0}}, "aggregations": {}}
    with pytest.raises(AuditStoreError, match="only 0 of 2 shards: circuit_breaking_exception"):
        _store(resp).aggregate("m", numeric={"x": [0.0, 1.0]}, categorical={})
    with pytest.raises(AuditStoreError, match="timed out"):
        _store({"_shards": {"total": 1, "successful": 1, "failed": 0}, "timed_out": True,
                "hits": {"total": {"value": 5}}}).aggregate("m", numeric={}, categorical={"c": False})


def test_a_whole_answer_is_counted_with_a_long_timeout_and_no_resend():
    resp = {"_shards": {"total": 1, "successful": 1, "failed": 0}, "hits": {"total": {"value": 3}},
            "aggregations": {"n|x": {"buckets": [{"doc_count": 1}, {"doc_count": 2}, {"doc_count": 0}]},
                             "c|x": {"value": 3}}}
    store = _store(resp)
    (slot,) = store.aggregate("m", numeric={"x": [0.0, 1.0]}, categorical={})
    assert slot["rows"] == 3 and slot["cells"]["x"] == [1, 2, 0]
    # two searches (which features have cells marked odd, then the counts), each heavy, none re-sent
    assert store.es.options_seen == [{"request_timeout": store.HEAVY_TIMEOUT_S, "retry_on_timeout": False}] * 2

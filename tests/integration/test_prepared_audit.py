"""Audit documents built once by the collector (``audit.prepared``) on the real Kafka and
Elasticsearch, over both client libraries of the log's consumers: the records go onto the log
through the collector's own path, each prediction with its documents in a Kafka header; the audit
role sends those; and every document in the indices is the one the store writes when it decodes
the same records from the log and builds them itself (labels before and after their predictions,
halves of one exchange, several rows, mixed cell types)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inferwatch.config import ElasticsearchConfig
from inferwatch.ingest import Ingestor
from inferwatch.metrics import Metrics
from inferwatch.record import InferenceRecord
from inferwatch.wiring import log_message
from sinks.elasticsearch import ElasticsearchAuditStore, audit_documents
from tests.contracts import KAFKA_CLIENTS
from tests.integration.conftest import drop_es_store
from tests.integration.scaled import scaled_path
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 4, 23, 59, 58, tzinfo=UTC)  # the records cross a day: two daily indices


def _phases() -> tuple[list[InferenceRecord], list[InferenceRecord]]:
    """Two deliveries: labels for predictions not made yet, halves and complete exchanges of two
    models; then the labelled predictions and labels for earlier ones."""
    first: list[InferenceRecord] = []
    second: list[InferenceRecord] = []
    for i in range(40):
        ts = T0 + timedelta(milliseconds=97 * i)
        model = "credit" if i % 3 else "fraud"
        cells = {"age": [30 + i, 31 + i], "city": ["Oslo", "true" if i % 5 == 0 else "Bergen"],
                 "score": [i / 7, float("nan") if i % 4 == 0 else 0.5], "tags": [[1, 2], []]}
        if i % 4 == 0:  # the two halves of one exchange, the response first
            first.append(InferenceRecord(id=f"x{i}", model=model, timestamp=ts + timedelta(milliseconds=5),
                                         outputs={"p": [0.1, 0.9]}, part="response", response='{"p":[0.1,0.9]}'))
            first.append(InferenceRecord(id=f"x{i}", model=model, timestamp=ts, inputs=cells, part="request",
                                         request='{"instances": 2}'))
        elif i % 4 == 1:  # its label came first and waits
            first.append(InferenceRecord(id=f"x{i}", model=model, timestamp=ts, truth={"y": [1, None]}, part="feedback"))
            second.append(InferenceRecord(id=f"x{i}", model=model, timestamp=ts, inputs=cells, outputs={"p": [1, 0]},
                                          part="both", version="v2", latency_ms=3.5))
        else:  # a complete exchange, labelled later
            first.append(InferenceRecord(id=f"x{i}", model=model, timestamp=ts, inputs=cells, outputs={"p": [0, 1]},
                                         part="both", meta={"tenant": "a"}))
            second.append(InferenceRecord(id=f"x{i}", model=model, timestamp=ts + timedelta(seconds=9),
                                          truth={"y": [0, 1]}, part="feedback"))
    return first, second


def _documents(store: ElasticsearchAuditStore) -> dict[str, tuple[str, dict[str, Any]]]:
    store.refresh()
    hits = store.es.search(index=f"{store.prefix}-records-*", size=10_000, query={"match_all": {}})["hits"]["hits"]
    return {h["_id"]: (h["_index"].removeprefix(store.prefix), h["_source"]) for h in hits}


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_the_audit_role_sends_the_collectors_documents_and_they_are_the_records_documents(stack_env, client):
    first, second = _phases()
    with scaled_path(stack_env, "prep", **{"kafka.client": client, "kafka.partitions": 2}) as s:
        ref = ElasticsearchAuditStore(ElasticsearchConfig(hosts=s.cfg.elasticsearch.hosts,
                                                          index_prefix=s.cfg.elasticsearch.index_prefix + "-ref"))
        try:
            ingestor = Ingestor(s.log, s.cfg, Metrics(), log_message(s.log, s.cfg))  # as the pipeline makes it
            taken: list[str] = []  # the records the audit role took with their documents
            read = s.store.prepared

            def prepared(raw: bytes, audit: bytes) -> Any:
                found = read(raw, audit)
                if found is not None:
                    taken.append(found.id)
                return found

            s.store.prepared = prepared  # type: ignore[method-assign]
            s.start_audit()
            written = 0
            for phase in (first, second):
                asyncio.run(ingestor.append(phase, []))  # the collector's own path onto the log
                written += sum(r.n_rows if r.part != "feedback" else sum(v is not None for v in r.truth["y"])
                               for r in phase if r.truth is not None or r.part != "feedback")
                wait_until(lambda w=written: s.worker is not None and s.worker.documents >= w and not s.worker.writing,
                           120, "the audit role to write the phase")
                ref.write_records([InferenceRecord.from_json(r.to_json()) for r in phase])

            entries = s.entries_on_log()
            assert len(entries) == len(first) + len(second)
            for e in entries:  # each prediction carries its documents; labels do not
                r = InferenceRecord.from_json(e.value)
                assert e.audit == audit_documents(r), (r.id, r.part)
                assert (e.audit is None) == (r.part == "feedback")

            assert set(taken) == {r.id for r in first + second if r.part != "feedback"}
            got, want = _documents(s.store), _documents(ref)
            assert len(want) == len({f"{r.id}-{i}" for r in first + second if r.part != "feedback"
                                     for i in range(r.n_rows)})
            assert got == want
            # the labels that waited joined their predictions and their waiting copies are gone
            assert got["x1-0"][1]["truth"] == {"y": 1} and "truth" not in got["x1-1"][1]
            assert s.store.es.count(index=s.store.waiting_index("credit"))["count"] == 0
            assert {index[-10:] for index, _ in got.values()} == {"2026.05.04", "2026.05.05"}
        finally:
            drop_es_store(ref)

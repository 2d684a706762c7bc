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
from sinks.elasticsearch import ElasticsearchAuditStore, PreparedRecord, audit_documents
from tests.contracts import KAFKA_CLIENTS
from tests.integration.conftest import drop_es_store
from tests.integration.scaled import scaled_path
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 4, 23, 59, 58, tzinfo=UTC)  # the records cross a day: two daily indices


def _phases() -> list[list[InferenceRecord]]:
    """Three deliveries: (1) no labels: halves (the response first) and complete exchanges of two
    models, several rows, mixed cells; (2) labels only: for predictions not made yet (they wait)
    and for predictions of (1); (3) the predictions whose labels wait, alone."""
    phases: list[list[InferenceRecord]] = [[], [], []]
    for i in range(40):
        ts = T0 + timedelta(milliseconds=97 * i)
        model = "credit" if i % 3 else "fraud"
        cells = {"age": [30 + i, 31 + i], "city": ["Oslo", "true" if i % 5 == 0 else "Bergen"],
                 "score": [i / 7, float("nan") if i % 4 == 0 else 0.5], "tags": [[1, 2], []]}
        if i % 4 == 0:  # the two halves of one exchange, the response first
            phases[0].append(InferenceRecord(id=f"x{i}", model=model, timestamp=ts + timedelta(milliseconds=5),
                                             outputs={"p": [0.1, 0.9]}, part="response", response='{"p":[0.1,0.9]}'))
            phases[0].append(InferenceRecord(id=f"x{i}", model=model, timestamp=ts, inputs=cells, part="request",
                                             request='{"instances": 2}'))
        elif i % 4 == 1:  # its label came first and waits
            phases[1].append(InferenceRecord(id=f"x{i}", model=model, timestamp=ts, truth={"y": [1, None]},
                                             part="feedback"))
            phases[2].append(InferenceRecord(id=f"x{i}", model=model, timestamp=ts, inputs=cells,
                                             outputs={"p": [1, 0]}, part="both", version="v2", latency_ms=3.5))
        else:  # a complete exchange, labelled later
            phases[0].append(InferenceRecord(id=f"x{i}", model=model, timestamp=ts, inputs=cells,
                                             outputs={"p": [0, 1]}, part="both", meta={"tenant": "a"}))
            phases[1].append(InferenceRecord(id=f"x{i}", model=model, timestamp=ts + timedelta(seconds=9),
                                             truth={"y": [0, 1]}, part="feedback"))
    return phases


def _documents(store: ElasticsearchAuditStore) -> dict[str, tuple[str, dict[str, Any]]]:
    store.refresh()
    hits = store.es.search(index=f"{store.prefix}-records-*", size=10_000, query={"match_all": {}})["hits"]["hits"]
    return {h["_id"]: (h["_index"].removeprefix(store.prefix), h["_source"]) for h in hits}


def _written(records: list[InferenceRecord]) -> int:
    """The documents the audit role counts for these records (a label: its labelled rows)."""
    return sum(sum(v is not None for v in r.truth["y"]) if r.part == "feedback" and r.truth else r.n_rows
               for r in records)


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_the_audit_role_sends_the_collectors_documents_and_they_are_the_records_documents(stack_env, client):
    phases = _phases()
    records = [r for phase in phases for r in phase]
    with scaled_path(stack_env, "prep", **{"kafka.client": client, "kafka.partitions": 2}) as s:
        ref = ElasticsearchAuditStore(ElasticsearchConfig(hosts=s.cfg.elasticsearch.hosts,
                                                          index_prefix=s.cfg.elasticsearch.index_prefix + "-ref"))
        try:
            ingestor = Ingestor(s.log, s.cfg, Metrics(), log_message(s.log, s.cfg))  # as the pipeline makes it
            sent: list[str] = []  # records whose documents went as the collector built them
            built: list[str] = []  # records read and built by the store (a label waited for them)
            actions, record = ElasticsearchAuditStore._prepared_actions, PreparedRecord.record

            def counted_actions(self: Any, m: PreparedRecord, days: Any) -> Any:
                sent.append(m.id)
                return actions(self, m, days)

            def counted_record(self: PreparedRecord) -> InferenceRecord:
                built.append(self.id)
                return record(self)

            ElasticsearchAuditStore._prepared_actions = counted_actions  # type: ignore[method-assign]
            PreparedRecord.record = counted_record  # type: ignore[method-assign]
            try:
                s.start_audit()
                written = 0
                for phase in phases:
                    asyncio.run(ingestor.append(phase, []))  # the collector's own path onto the log
                    written += _written(phase)
                    wait_until(lambda w=written: s.worker is not None and s.worker.documents >= w
                               and not s.worker.writing, 120, "the audit role to write the phase")
                    ref.write_records([InferenceRecord.from_json(r.to_json()) for r in phase])
                assert sorted(sent) == sorted(r.id for r in phases[0])  # no label about: sent as they came
                assert sorted(built) == sorted(r.id for r in phases[2])  # each one's label waited
                entries = s.entries_on_log()
                assert len(entries) == len(records)
                for e in entries:  # each prediction carries its documents; labels do not
                    r = InferenceRecord.from_json(e.value)
                    assert e.audit == audit_documents(r), (r.id, r.part)
                    assert (e.audit is None) == (r.part == "feedback")
                got, want = _documents(s.store), _documents(ref)
                assert len(want) == len({f"{r.id}-{i}" for r in records if r.part != "feedback"
                                         for i in range(r.n_rows)})
                assert got == want
                # a replay of the whole topic (the documents exist: creates merge) changes nothing
                assert s.worker is not None
                s.worker.stop()
                s.worker.close()
                s.log.reset_group(s.cfg.log.records_topic, s.cfg.audit.group)
                sent.clear()
                s.start_audit()
                wait_until(lambda: s.log.group_lag(s.cfg.log.records_topic, s.cfg.audit.group) == 0
                           and s.worker is not None and not s.worker.writing, 120, "the replay")
                assert sorted(sent) == sorted(r.id for r in phases[0] + phases[2])  # no label waits any more
                assert _documents(s.store) == want
            finally:
                ElasticsearchAuditStore._prepared_actions = actions  # type: ignore[method-assign]
                PreparedRecord.record = record  # type: ignore[method-assign]
            # the labels that waited joined their predictions and their waiting copies are gone
            assert got["x1-0"][1]["truth"] == {"y": 1} and "truth" not in got["x1-1"][1]
            assert s.store.es.count(index=s.store.waiting_index("credit"))["count"] == 0
            assert {index[-10:] for index, _ in got.values()} == {"2026.05.04", "2026.05.05"}
        finally:
            drop_es_store(ref)

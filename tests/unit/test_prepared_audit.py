"""Audit documents built once by the collector and carried on the log (``audit.prepared``): the
audit role sends them as they are, and what reaches Elasticsearch is byte for byte what it sends
for the decoded record — checked against the field-by-field oracle of test_es_documents, on
generated records, in batches that mix prepared and plain records."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferwatch.config import ElasticsearchConfig, load_config
from inferwatch.ingest import message_bytes
from inferwatch.log import LogEntry
from inferwatch.record import InferenceRecord
from inferwatch.sqlite_log import SQLiteLog
from inferwatch.wiring import log_message
from inferwatch.workers import _decode_entries
from sinks.elasticsearch import PREPARED_MAX_BYTES, ElasticsearchAuditStore, PreparedRecord, audit_documents
from tests.unit.test_es_documents import bulk_oracle, record
from tests.unit.test_record_path import KeepingBulk


def _store(client: Any = None) -> tuple[ElasticsearchAuditStore, Any]:
    client = client or KeepingBulk()
    return ElasticsearchAuditStore(ElasticsearchConfig(), client=client, setup=False), client


@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=1, max_value=4).flatmap(lambda n: st.tuples(*(record(i) for i in range(n)))),
       st.data())
def test_prepared_records_are_sent_as_the_oracle_builds_them(records: tuple[InferenceRecord, ...],
                                                             data: st.DataObject) -> None:
    # each record prepared or not (drawn), its time in UTC or in another zone (drawn): the bulk
    # body is the oracle's, record by record in the batch's order
    batch: list[Any] = []
    for r in records:
        hours = data.draw(st.sampled_from([0, 0, 2, -5]))
        if hours:
            r.timestamp = r.timestamp.astimezone(timezone(timedelta(hours=hours)))
        if data.draw(st.booleans()):
            prepared = PreparedRecord.read(r.to_json(), audit_documents(r) or b"")
            assert prepared is not None
            batch.append(prepared)
        else:
            batch.append(r)
    store, client = _store()
    assert store.write_records(batch) == sum(r.n_rows for r in records)
    assert b"".join(client.bodies) == bulk_oracle(list(records))


def test_labels_are_never_prepared_and_odd_forms_are_decoded() -> None:
    label = InferenceRecord(id="a", model="m", truth={"y": [1]}, part="feedback")
    assert audit_documents(label) is None
    r = InferenceRecord(id="a", model="m", inputs={"x": [1.5]}, part="both")
    audit = audit_documents(r)
    assert audit is not None
    head, doc = audit.split(b"\n")
    assert PreparedRecord.read(r.to_json(), audit) is not None
    for odd in (b"", b"not json\n" + doc, head.replace(b'"form":1', b'"form":2') + b"\n" + doc, head,
                head.replace(b'"part":"both"', b'"part":"feedback"') + b"\n" + doc,
                head.replace(b'"id":"a"', b'"id":7') + b"\n" + doc, b"[1]\n" + doc):
        assert PreparedRecord.read(r.to_json(), odd) is None, odd


def test_the_audit_role_decodes_what_is_not_prepared_and_letters_what_is_unreadable() -> None:
    store, _ = _store()
    r = InferenceRecord(id="a", model="m", inputs={"x": [1.5]}, part="both")
    value, audit = r.to_json(), audit_documents(r)
    entries = [LogEntry("t", 0, 0, None, value, 0.0, audit),          # prepared
               LogEntry("t", 0, 1, None, value, 0.0, None),           # plain
               LogEntry("t", 0, 2, None, value, 0.0, b"garbage"),     # a form not known: decoded
               LogEntry("t", 0, 3, None, b"{not json", 0.0, None)]    # unreadable: a dead letter
    good, bad = _decode_entries(entries, InferenceRecord.from_json, store.prepared)
    assert [type(g) for g in good] == [PreparedRecord, InferenceRecord, InferenceRecord]
    assert [dl.id for dl in bad] == ["t-0-3"] and bad[0].raw == b"{not json"


class NoneWaiting(KeepingBulk):
    """A cluster that holds none of these rows and no waiting labels."""

    class indices:
        @staticmethod
        def exists(index: str) -> bool:
            return False

        @staticmethod
        def refresh(**_: Any) -> dict[str, Any]:
            return {}

    def mget(self, **_: Any) -> dict[str, Any]:
        return {"docs": []}

    def search(self, **_: Any) -> dict[str, Any]:
        return {"hits": {"hits": []}}


class LabelsWaiting(NoneWaiting):
    """A cluster where labels of every model may wait for their predictions (none for these rows)."""

    class indices(NoneWaiting.indices):
        @staticmethod
        def exists(index: str) -> bool:
            return True


@pytest.mark.parametrize("client", [NoneWaiting, LabelsWaiting])
def test_a_batch_with_labels_is_built_from_the_decoded_records(client: type) -> None:
    # labels in the batch (or waiting for the model) change the prediction documents: the prepared
    # ones are decoded, and the body is the one the store sends for the plain records
    preds = [InferenceRecord(id=f"p{i}", model="m", inputs={"x": [i, i + 0.5]}, outputs={"y": [1, 0]}, part="both")
             for i in range(3)]
    labels = [InferenceRecord(id="p1", model="m", truth={"y": [1, None]}, part="feedback")]
    plain = list(preds) + labels if client is NoneWaiting else list(preds)
    store, sent = _store(client())
    store.write_records(plain)
    mixed: list[Any] = [PreparedRecord.read(p.to_json(), audit_documents(p) or b"") for p in preds]
    mixed += labels if client is NoneWaiting else []
    store2, sent2 = _store(client())
    decoded = []
    real = PreparedRecord.record

    def spy(self: PreparedRecord) -> InferenceRecord:
        decoded.append(self.id)
        return real(self)

    PreparedRecord.record = spy  # type: ignore[method-assign]
    try:
        store2.write_records(mixed)
    finally:
        PreparedRecord.record = real  # type: ignore[method-assign]
    assert decoded == ["p0", "p1", "p2"]
    assert sent2.bodies == sent.bodies and sent.bodies


def test_the_collector_prepares_only_for_a_log_that_carries_them_and_within_the_size_cap(tmp_path: Any) -> None:
    es = load_config(None, env={}, overrides={"data_dir": str(tmp_path), "audit.backend": "elasticsearch"})
    small = InferenceRecord(id="a", model="m", inputs={"x": [1.5]}, part="both")
    big = InferenceRecord(id="b", model="m", inputs={"x": ["y" * (PREPARED_MAX_BYTES // 2)]}, part="both")

    class Carrying(SQLiteLog):
        carries_audit = True

    carrying = Carrying(tmp_path / "c.db")
    message = log_message(carrying, es)
    key, value, audit = message(small)  # type: ignore[misc]
    assert (key, value, audit) == (b"m", small.to_json(), audit_documents(small))
    assert message_bytes((key, value, audit)) == 1 + len(value) + len(audit or b"")
    assert len(message(big)) == 2  # documents repeating a large payload stay behind
    assert len(log_message(SQLiteLog(tmp_path / "s.db"), es)(small)) == 2  # SQLite carries no audit part
    sqlite_store = load_config(None, env={}, overrides={"data_dir": str(tmp_path)})
    assert len(log_message(carrying, sqlite_store)(small)) == 2  # the SQLite store builds its own rows
    off = load_config(None, env={}, overrides={"data_dir": str(tmp_path), "audit.backend": "elasticsearch",
                                               "audit.prepared": False})
    assert len(log_message(carrying, off)(small)) == 2
    carrying.close()


def test_a_prepared_record_is_its_own_dead_letter() -> None:
    # a document the cluster refuses becomes a dead letter holding the record's JSON as it was logged
    r = InferenceRecord(id="a", model="m", inputs={"x": [1.5]}, part="request")
    p = PreparedRecord.read(r.to_json(), audit_documents(r) or b"")
    assert p is not None and p.to_json() == r.to_json()
    assert orjson.loads(p.to_json())["id"] == "a" and p.record().inputs == {"x": [1.5]}

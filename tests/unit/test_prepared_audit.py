"""Audit documents built once by the collector and carried on the log (``audit.prepared``): the
audit role sends them as they are, and what reaches Elasticsearch is byte for byte what it sends
for the decoded record — checked against the field-by-field oracle of test_es_documents, on
generated records, in batches that mix prepared and plain records."""

from __future__ import annotations

import math
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
from sinks.elasticsearch import PREPARED_FORM, ElasticsearchAuditStore, PreparedRecord, audit_documents
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
    # each record prepared or not (drawn), its time in UTC or in another zone, its latency any float
    # (drawn): the bulk body is the oracle's for the records as the audit role reads them back from
    # the log, record by record in the batch's order
    batch: list[Any] = []
    read_back = []
    for r in records:
        hours = data.draw(st.sampled_from([0, 0, 2, -5]))
        if hours:
            r.timestamp = r.timestamp.astimezone(timezone(timedelta(hours=hours)))
        r.latency_ms = data.draw(st.none() | st.floats(0, 1e3) | st.sampled_from([math.inf, -math.inf, math.nan]))
        back = InferenceRecord.from_json(r.to_json())
        read_back.append(back)
        if data.draw(st.booleans()):
            prepared = PreparedRecord.read(r.to_json(), audit_documents(r) or b"")  # built from the record in memory
            assert prepared is not None
            batch.append(prepared)
        else:
            batch.append(back)
    store, client = _store()
    assert store.write_records(batch) == sum(r.n_rows for r in records)
    assert b"".join(client.bodies) == bulk_oracle(read_back)


def _other_form(head: bytes) -> bytes:
    meta = orjson.loads(head)
    assert meta["form"] == PREPARED_FORM
    return orjson.dumps({**meta, "form": "other code"})


def test_labels_are_never_prepared_and_odd_forms_are_decoded() -> None:
    label = InferenceRecord(id="a", model="m", truth={"y": [1]}, part="feedback")
    assert audit_documents(label) is None
    r = InferenceRecord(id="a", model="m", inputs={"x": [1.5]}, part="both")
    audit = audit_documents(r)
    assert audit is not None
    head, doc = audit.split(b"\n")
    assert PreparedRecord.read(r.to_json(), audit) is not None
    for odd in (b"", b"not json\n" + doc, _other_form(head) + b"\n" + doc, head,
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


class LabelWaitsForP1(NoneWaiting):
    """A cluster where a label of model m waits for row 0 of prediction p1."""

    class indices(NoneWaiting.indices):
        @staticmethod
        def exists(index: str) -> bool:
            return index.endswith("-m-waiting")

    def mget(self, ids: list[str], **_: Any) -> dict[str, Any]:
        return {"docs": [{"_id": i, "found": True, "_source": {"truth": {"y": 1}}} if i == "p1-0"
                         else {"_id": i, "found": False} for i in ids]}


@pytest.mark.parametrize(("client", "labels", "read"), [(NoneWaiting, True, []), (LabelWaitsForP1, False, ["p1"]),
                                                        (LabelWaitsForP1, True, ["p1"])])
def test_only_a_prediction_a_waiting_label_joins_is_read_and_built(client: type, labels: bool, read: list[str]) -> None:
    # labels in the batch land on the prediction documents by update (the documents stay as they
    # came); a label waiting in the store joins its prediction's document as it is built, so that
    # prediction alone is read; the bodies are those the store sends for the plain records
    preds = [InferenceRecord(id=f"p{i}", model="m", inputs={"x": [i, i + 0.5]}, outputs={"y": [1, 0]}, part="both")
             for i in range(3)]
    preds.append(InferenceRecord(id="q", model="other", inputs={"x": [1]}, part="request"))
    extra = [InferenceRecord(id="p2", model="m", truth={"y": [1, None]}, part="feedback")] if labels else []
    store, sent = _store(client())
    store.write_records(preds + extra)
    mixed: list[Any] = [PreparedRecord.read(p.to_json(), audit_documents(p) or b"") for p in preds]
    store2, sent2 = _store(client())
    decoded = []
    real = PreparedRecord.record

    def spy(self: PreparedRecord) -> InferenceRecord:
        decoded.append(self.id)
        return real(self)

    PreparedRecord.record = spy  # type: ignore[method-assign]
    try:
        store2.write_records(mixed + extra)
    finally:
        PreparedRecord.record = real  # type: ignore[method-assign]
    assert decoded == read
    assert sent2.bodies == sent.bodies and sent.bodies
    if read:
        assert b'"truth":{"y":1}' in b"".join(sent.bodies)


def test_a_prediction_whose_record_cannot_be_read_is_a_dead_letter_when_a_label_waits() -> None:
    # its documents came, but joining the waiting label needs the record, which does not read:
    # the record goes to the dead letters with the reason, the others are written
    good = InferenceRecord(id="p0", model="m", inputs={"x": [1.0]}, part="both")
    bad = InferenceRecord(id="p1", model="m", inputs={"x": [1.0]}, part="both")
    raw = bad.to_json().replace(b'"x":[1.0]', b'"x":[1.0],"y":[1.0,2.0]')  # columns of unequal length
    with pytest.raises(ValueError):
        InferenceRecord.from_json(raw)
    letters: list[Any] = []
    client = LabelWaitsForP1()
    store = ElasticsearchAuditStore(ElasticsearchConfig(), client=client, setup=False, on_deadletter=letters.extend)
    items = [PreparedRecord.read(good.to_json(), audit_documents(good) or b""),
             PreparedRecord.read(raw, audit_documents(bad) or b"")]
    assert store.write_records(items) == 1
    assert [(dl.raw, dl.stage) for dl in letters] == [(raw, "audit")] and "unequal length" in letters[0].reason
    assert b'"_id":"p0-0"' in client.bodies[0] and b'"_id":"p1-0"' not in client.bodies[0]


def test_the_collector_prepares_only_for_a_log_that_carries_them_and_within_the_size_cap(tmp_path: Any) -> None:
    es = load_config(None, env={}, overrides={"data_dir": str(tmp_path), "audit.backend": "elasticsearch"})
    small = InferenceRecord(id="a", model="m", inputs={"x": [1.5]}, part="both")
    big = InferenceRecord(id="b", model="m", inputs={"x": ["y" * (es.audit.prepared_max_bytes // 3)]}, part="both")

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


def test_the_audit_role_reads_documents_only_when_audit_prepared_is_on_and_entries_may_lack_them(tmp_path: Any) -> None:
    from dataclasses import fields, make_dataclass

    from inferwatch.metrics import Metrics
    from inferwatch.workers import AuditWorker

    r = InferenceRecord(id="a", model="m", inputs={"x": [1.5]}, part="both")
    entry = LogEntry("t", 0, 0, None, r.to_json(), 0.0, audit_documents(r))

    # a plug-in log's entry, from before the audit part: LogEntry's other fields
    BareEntry = make_dataclass("BareEntry", [(f.name, f.type) for f in fields(LogEntry) if f.name != "audit"])
    bare = BareEntry("t", 0, 1, None, r.to_json(), 0.0)
    store, _ = _store()
    for prepared, kinds in ((True, [PreparedRecord, InferenceRecord]), (False, [InferenceRecord, InferenceRecord])):
        cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path), "audit.prepared": prepared})
        worker = AuditWorker(cfg, SQLiteLog(tmp_path / "l.db"), store, Metrics())
        good, bad = worker._decode("records", [entry, bare])  # type: ignore[list-item]
        assert [type(g) for g in good] == kinds and bad == []
        worker.close()

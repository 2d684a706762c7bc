"""Record and audit-document builders (inferwatch/record.py, inferwatch/audit.py): the cases
`make mutation` showed no test held. Expected values are derived by hand from the format's
definition (RFC 9562 for the UUIDv7 layout, the document shape in record_documents' docstring),
or are properties (a change of one identity part changes the id, nothing else does)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from inferwatch import record as rec
from inferwatch.audit import SearchQuery, outlier_documents, reference_from_audit
from inferwatch.record import (
    DeadLetter,
    Detection,
    InferenceRecord,
    decode_body,
    encode_body,
    parse_row_id,
    parse_timestamp,
    record_documents,
    row_id,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


# --- new_id: the UUIDv7 layout of RFC 9562, section 5.7 -------------------------------------

def test_new_id_lays_out_time_version_random_and_variant(monkeypatch):
    # unix_ts_ms = 0x0123456789AB; 80 random bits 12 34 56 78 9a bc de f0 12 34:
    # rand_a = the top 12 bits (0x123), rand_b = the low 62 bits (0x16789abcdef01234) under the
    # variant bits 10 (0x8000... | 0x1678... = 0x9678...)
    monkeypatch.setattr(rec.time, "time_ns", lambda: 0x0123456789AB * 1_000_000 + 999_999)
    monkeypatch.setattr(rec.os, "urandom", lambda n: (bytes.fromhex("123456789abcdef01234") + b"\xee" * 8)[:n])
    assert rec.new_id() == "01234567-89ab-7123-9678-9abcdef01234"


def test_new_id_with_all_random_bits_set_keeps_version_and_variant(monkeypatch):
    monkeypatch.setattr(rec.time, "time_ns", lambda: (1 << 48) * 1_000_000 + 5 * 1_000_000)  # ms wraps at 48 bits
    monkeypatch.setattr(rec.os, "urandom", lambda n: b"\xff" * n)
    u = uuid.UUID(rec.new_id())
    assert str(u) == "00000000-0005-7fff-bfff-ffffffffffff"
    assert u.version == 7 and u.variant == uuid.RFC_4122


def test_new_id_uses_every_random_bit():
    """Each of the 74 random bits is 0 in some id and 1 in another (fails with probability
    about 74 * 2 * 2^-300 for 300 ids)."""
    ints = [uuid.UUID(rec.new_id()).int for _ in range(300)]
    rand_a = [(v >> 64) & 0xFFF for v in ints]
    rand_b = [v & ((1 << 62) - 1) for v in ints]
    anded_a, ored_a, anded_b, ored_b = 0xFFF, 0, (1 << 62) - 1, 0
    for a, b in zip(rand_a, rand_b, strict=True):
        anded_a &= a
        ored_a |= a
        anded_b &= b
        ored_b |= b
    assert (anded_a, ored_a) == (0, 0xFFF)
    assert (anded_b, ored_b) == (0, (1 << 62) - 1)
    assert all(uuid.UUID(int=v).version == 7 and uuid.UUID(int=v).variant == uuid.RFC_4122 for v in ints)


# --- bodies, timestamps, row ids -------------------------------------------------------------

def test_bodies_none_text_and_base64():
    assert encode_body(None) == (None, "text")
    assert encode_body(b"hi") == ("hi", "text")
    assert encode_body(b"\xff\x00") == ("/wA=", "base64")  # base64 of ff 00 by hand: 111111 110000 0000(00) -> "/wA="
    assert decode_body(None, "base64") is None
    assert decode_body("/wA=", "base64") == b"\xff\x00"
    assert decode_body("/wA=", "text") == b"/wA="
    assert decode_body("é", "text") == b"\xc3\xa9"


def test_parse_timestamp_naive_datetime_is_utc_and_aware_is_kept():
    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert parse_timestamp(naive) == T0 and parse_timestamp(naive).tzinfo is UTC
    plus2 = datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert parse_timestamp(plus2) is plus2
    assert parse_timestamp(plus2).utcoffset() == timedelta(hours=2)
    assert parse_timestamp("2026-01-02T03:04:05z") == T0
    with pytest.raises(ValueError, match="not a timestamp"):
        parse_timestamp(1.5)  # type: ignore[arg-type]


def test_row_ids_keep_dashes_of_the_record_id():
    assert row_id("a-b", 10) == "a-b-10"
    assert parse_row_id("a-b-10") == ("a-b", 10)
    assert parse_row_id("x-0") == ("x", 0)
    for bad in ("a-+1", "a--", "a- 1", "a-1.0", "-"):
        with pytest.raises(ValueError, match="not a row id"):
            parse_row_id(bad)


# --- InferenceRecord --------------------------------------------------------------------------

def test_record_timestamp_parsed_or_now():
    assert InferenceRecord(id="a", model="m", timestamp="2026-01-02T03:04:05Z").timestamp == T0  # type: ignore[arg-type]
    before = datetime.now(UTC)
    r = InferenceRecord(id="a", model="m", timestamp=None)  # type: ignore[arg-type]
    after = datetime.now(UTC)
    assert before <= r.timestamp <= after and r.timestamp.tzinfo is not None


@pytest.mark.parametrize(("inputs", "outputs", "truth", "n"), [
    (None, None, None, 1),
    ({"a": [1, 2]}, None, None, 2),
    (None, {"y": [1, 2, 3]}, None, 3),
    (None, None, {"t": [1, 2, 3, 4]}, 4),
    ({"a": [1]}, {"y": [1, 2]}, {"t": [1, 2, 3]}, 3),
    ({"a": [1, 2, 3]}, {"y": [1]}, None, 3),
])
def test_n_rows_is_the_longest_table(inputs, outputs, truth, n):
    r = InferenceRecord(id="r", model="m", inputs=inputs, outputs=outputs, truth=truth)
    assert r.n_rows == n
    assert r.doc_ids() == [f"r-{i}" for i in range(n)]
    assert len(record_documents(r)) == n


def test_identity_parts():
    base = InferenceRecord(id="x", model="m", version="1", part="request", inputs={"a": [1]})
    same = [
        InferenceRecord(id="x", model="m", version="1", part="request", inputs={"a": [2]}, timestamp=T0),
        InferenceRecord(id="x", model="m", version="1", part="request", truth={"t": [1]}, response="r"),
    ]
    assert all(s.identity() == base.identity() for s in same)
    differ = [
        InferenceRecord(id="y", model="m", version="1", part="request"),
        InferenceRecord(id="x", model="n", version="1", part="request"),
        InferenceRecord(id="x", model="m", version="2", part="request"),
        InferenceRecord(id="x", model="m", version=None, part="request"),
        InferenceRecord(id="x", model="m", version="1", part="response"),
        InferenceRecord(id="x", model="m", version="1", part="both"),
    ]
    ids = [base.identity(), *(d.identity() for d in differ)]
    assert len(set(ids)) == len(ids)
    # a missing version is the empty one, a missing part is "both"
    assert (InferenceRecord(id="x", model="m", version=None).identity()
            == InferenceRecord(id="x", model="m", version="").identity())
    assert (InferenceRecord(id="x", model="m", part=None).identity()  # type: ignore[arg-type]
            == InferenceRecord(id="x", model="m", part="both").identity())
    assert 0 <= base.identity() < 1 << 64
    assert max(InferenceRecord(id=str(i), model="m").identity() for i in range(64)) >= 1 << 56


def test_identity_of_feedback_is_its_labels_in_any_key_order():
    a = InferenceRecord(id="x", model="m", part="feedback", truth={"y": [1], "z": [2]})
    b = InferenceRecord(id="x", model="m", part="feedback", truth={"z": [2], "y": [1]})
    c = InferenceRecord(id="x", model="m", part="feedback", truth={"y": [1], "z": [3]})
    assert a.identity() == b.identity() != c.identity()
    # outside feedback the labels are not part of the identity
    assert (InferenceRecord(id="x", model="m", truth={"y": [1]}).identity()
            == InferenceRecord(id="x", model="m", truth={"y": [0]}).identity())


def test_from_dict_by_name_and_filtering_unknown_keys():
    by_name = InferenceRecord.from_dict({"model": "m", "timestamp": T0, "id": "a", "version": "3"})
    assert by_name == InferenceRecord(id="a", model="m", version="3", timestamp=T0)
    r = InferenceRecord.from_dict({"id": "a", "model": "m", "unknown": 1, "part": "response", "timestamp": T0})
    assert (r.id, r.model, r.part, r.timestamp) == ("a", "m", "response", T0)
    full = InferenceRecord(id="a", model="m", part="request", timestamp=T0, latency_ms=2.5).to_dict()
    assert InferenceRecord.from_dict(full) == InferenceRecord(id="a", model="m", part="request", timestamp=T0,
                                                              latency_ms=2.5)
    for key in ("inputs", "outputs", "truth"):
        with pytest.raises(ValueError, match=f"'{key}' is not a table"):
            InferenceRecord.from_json(orjson.dumps({"id": "a", "model": "m", key: {"c": 1}}))
    assert InferenceRecord.from_json('{"id": "a", "model": "m", "truth": {"c": [1]}}').truth == {"c": [1]}
    # the whole message, as dead letters and `inferwatch batch` show it: what the value is not, and why
    for bad in (b'{"id": "a", "model": 5}', b'{"model": "m"}', b"[1]"):
        with pytest.raises(ValueError, match=r"^not an inference record: it needs string 'id' and 'model'$"):
            InferenceRecord.from_json(bad)


# --- record_documents ---------------------------------------------------------------------------

def test_documents_of_a_full_record_field_by_field():
    r = InferenceRecord(id="r", model="m", version="2", namespace="ns", endpoint="/e", timestamp=T0, latency_ms=3.0,
                        protocol="oip-v2", source="http", trace="00-ab", meta={"k": "v"},
                        input_schema={"tensors": []}, output_schema={"encodings": {}},
                        inputs={"a": [1, 2]}, outputs={"y": [5]}, truth={"t": [None, 9]},
                        request="req", request_encoding="", response="AA==", response_encoding="base64")
    docs = record_documents(r)
    common = {"record_id": "r", "n_rows": 2, "model": "m", "version": "2", "namespace": "ns", "endpoint": "/e",
              "protocol": "oip-v2", "source": "http", "trace": "00-ab", "latency_ms": 3.0,
              "input_schema": {"tensors": []}, "output_schema": {"encodings": {}}, "meta": {"k": "v"},
              "timestamp": T0}
    assert docs == [
        {**common, "doc_id": "r-0", "row": 0, "input": {"a": 1}, "output": {"y": 5},
         "request": "req", "request_encoding": "text", "response": "AA==", "response_encoding": "base64"},
        {**common, "doc_id": "r-1", "row": 1, "input": {"a": 2}, "truth": {"t": 9}},
    ]


@pytest.mark.parametrize(("part", "field"), [("request", "timestamp"), ("both", "timestamp"),
                                             ("response", "response_timestamp")])
def test_each_half_writes_its_own_time(part, field):
    docs = record_documents(InferenceRecord(id="r", model="m", part=part, timestamp=T0, outputs={"y": [1]}))
    assert docs == [{"record_id": "r", "n_rows": 1, "model": "m", field: T0, "doc_id": "r-0", "row": 0,
                     "output": {"y": 1}}]


def test_truth_shorter_than_the_inputs_labels_its_rows_only():
    docs = record_documents(InferenceRecord(id="r", model="m", timestamp=T0, inputs={"a": [1, 2, 3]},
                                            truth={"t": [7]}))
    assert [d.get("truth") for d in docs] == [{"t": 7}, None, None]


def test_a_part_the_builder_does_not_know_writes_the_request_time():
    doc = record_documents(InferenceRecord(id="r", model="m", timestamp=T0, part="other"))[0]  # type: ignore[arg-type]
    assert doc["timestamp"] == T0 and not any(k.endswith("_timestamp") for k in doc)


def test_documents_leave_out_none_fields_and_empty_meta():
    docs = record_documents(InferenceRecord(id="r", model="m", timestamp=T0, response="x", response_encoding=""))
    assert docs == [{"record_id": "r", "n_rows": 1, "model": "m", "timestamp": T0, "doc_id": "r-0", "row": 0,
                     "response": "x", "response_encoding": "text"}]


def test_feedback_labels_alone_write_only_labelled_rows():
    r = InferenceRecord(id="r", model="m", part="feedback", timestamp=T0, version="9",
                        truth={"y": [1, None, 3], "z": [None, None, 0]})
    assert record_documents(r) == [
        {"doc_id": "r-0", "record_id": "r", "row": 0, "model": "m", "truth": {"y": 1, "z": None},
         "feedback_timestamp": T0},
        {"doc_id": "r-2", "record_id": "r", "row": 2, "model": "m", "truth": {"y": 3, "z": 0},
         "feedback_timestamp": T0},
    ]


def test_feedback_with_its_inputs_is_a_full_document_at_feedback_time():
    r = InferenceRecord(id="r", model="m", part="feedback", timestamp=T0, inputs={"a": [1]}, truth={"y": [0]})
    assert record_documents(r) == [{"record_id": "r", "n_rows": 1, "model": "m", "feedback_timestamp": T0,
                                    "doc_id": "r-0", "row": 0, "input": {"a": 1}, "truth": {"y": 0}}]
    only_out = InferenceRecord(id="r", model="m", part="feedback", timestamp=T0, outputs={"p": [1]}, truth={"y": [0]})
    assert record_documents(only_out)[0]["output"] == {"p": 1}


# --- Detection and DeadLetter -------------------------------------------------------------------

def _det(**kw):
    base = dict(detector="ks", kind="drift", model="m", version="1", window_start=T0,
                window_end=T0 + timedelta(minutes=5), window_size=10, reference_id="ref", row_ids=["a-0", "b-0"],
                extra={"on": "inputs", "partition": 0, "window_seq": 1, "record_id": "q"})
    base.update(kw)
    return Detection(**base)


def test_detection_id_changes_with_each_identity_part_and_nothing_else():
    base = _det()
    others = [_det(detector="psi"), _det(model="n"), _det(version="2"), _det(version=None),
              _det(window_start=T0 + timedelta(seconds=1)), _det(window_start=None),
              _det(window_end=T0), _det(window_end=None), _det(window_size=11), _det(reference_id=None),
              _det(row_ids=["c-0", "b-0"]), _det(row_ids=[])]
    for key in ("on", "partition", "window_seq", "record_id"):
        others.append(_det(extra={**base.extra, key: "other"}))
    ids = [base.id, *(o.id for o in others)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 20 and int(i, 16) >= 0 for i in ids)
    unchanged = [_det(row_ids=["a-0", "z-9"]), _det(extra={**base.extra, "rows_seen": 3}), _det(is_drift=True),
                 _det(p_value=0.5, kind="outlier", timestamp=T0 - timedelta(days=1))]
    assert {u.id for u in unchanged} == {base.id}


def test_detection_times_are_parsed_and_dict_has_id():
    d = Detection(detector="ks", kind="drift", model="m", window_start="2026-01-02T03:04:05Z",  # type: ignore[arg-type]
                  window_end="2026-01-02T03:04:05", timestamp="2026-01-02T03:04:05Z")  # type: ignore[arg-type]
    assert (d.window_start, d.window_end, d.timestamp) == (T0, T0, T0)
    before = datetime.now(UTC)
    now = Detection(detector="ks", kind="drift", model="m", timestamp=None)  # type: ignore[arg-type]
    assert before <= now.timestamp <= datetime.now(UTC)
    assert now.window_start is None and now.window_end is None
    dd = d.to_dict()
    assert dd["id"] == d.id and dd["window_start"] == T0 and dd["detector"] == "ks"
    assert Detection.from_dict({**dd, "unknown": 1}) == d


def test_detection_fired_and_drifted_features():
    assert not _det().fired
    assert _det(is_drift=True).fired and _det(is_outlier=True).fired
    assert not _det(is_drift=False, is_outlier=False).fired
    assert _det(feature_drift={"a": True, "b": False, "c": True}).drifted_features == ["a", "c"]


def test_deadletter_json_fields_and_defaults():
    dl = DeadLetter(raw=b"\xff", source="http", reason="bad", timestamp="2026-01-02T03:04:05Z",  # type: ignore[arg-type]
                    meta={"k": "v"})
    assert dl.stage == "decode" and dl.timestamp == T0
    d = orjson.loads(dl.to_json())
    assert d == {"id": dl.id, "source": "http", "reason": "bad", "stage": "decode",
                 "timestamp": "2026-01-02T03:04:05+00:00", "meta": {"k": "v"}, "raw": "/w==", "raw_encoding": "base64"}
    back = DeadLetter.from_json(dl.to_json())
    assert (back.raw, back.source, back.reason, back.stage, back.id, back.timestamp, back.meta) == (
        b"\xff", "http", "bad", "decode", dl.id, T0, {"k": "v"})
    # written before raw_encoding existed: text
    old = orjson.dumps({"id": "i", "source": "s", "reason": "r", "raw": "/w=="})
    assert DeadLetter.from_json(old).raw == b"/w=="
    assert DeadLetter.from_json(orjson.dumps({"id": "i", "source": "s", "reason": "r", "raw": None})).raw == b""
    before = datetime.now(UTC)
    assert before <= DeadLetter(raw=b"", source="s", reason="r", timestamp=None).timestamp  # type: ignore[arg-type]


# --- audit.py -------------------------------------------------------------------------------------

def test_outlier_documents_flag_above_threshold_only():
    d = Detection(detector="iqr", kind="outlier", model="m", threshold=2.0, row_ids=["r-a-1", "r-0", "foreign"],
                  scores=[2.0, 2.5, 1.0])
    assert outlier_documents(d) == [
        {"doc_id": "r-a-1", "record_id": "r-a", "row": 1, "model": "m",
         "outlier": {"iqr": {"score": 2.0, "is_outlier": False}}},
        {"doc_id": "r-0", "record_id": "r", "row": 0, "model": "m",
         "outlier": {"iqr": {"score": 2.5, "is_outlier": True}}},
        {"doc_id": "foreign", "record_id": "foreign", "row": 0, "model": "m",
         "outlier": {"iqr": {"score": 1.0, "is_outlier": False}}},
    ]
    # scores of rows without ids (a window whose rows came without record ids) attach to nothing
    assert outlier_documents(Detection(detector="z", kind="outlier", model="m", threshold=0.0, scores=[1.0])) == []
    no_threshold = Detection(detector="z", kind="outlier", model="m", row_ids=["r-0"], scores=[99.0])
    assert outlier_documents(no_threshold)[0]["outlier"] == {"z": {"score": 99.0, "is_outlier": False}}


def test_search_query_defaults():
    q = SearchQuery()
    assert (q.kind, q.text, q.model, q.version, q.id, q.since, q.until, q.drift_only, q.limit) == (
        "records", None, None, None, None, None, None, False, 100)


class _Store:
    """A stand-in audit store: returns the documents it holds, newest first, and records the query."""

    def __init__(self, docs):
        self.docs, self.queries = docs, []

    def search(self, query):
        self.queries.append(query)
        return self.docs[: query.limit]


def test_reference_from_audit_oldest_first_from_the_chosen_side():
    docs = [{"input": {"a": 3}, "output": {"y": 30}}, {"input": {"a": 2}}, {"output": {"y": 10}},
            {"input": "not a row", "output": {"y": 0}}, {"input": {"a": 1}, "output": {"y": 5}}]
    store = _Store(docs)
    since, until = T0, T0 + timedelta(hours=1)
    assert reference_from_audit(store, "m", version="v", since=since, until=until, limit=7) == {"a": [1, 2, 3]}
    q = store.queries[0]
    assert (q.kind, q.model, q.version, q.since, q.until, q.limit) == ("records", "m", "v", since, until, 7)
    assert reference_from_audit(store, "m", on="output") == {"y": [5, 0, 10, 30]}
    assert store.queries[-1].limit == 10_000 and store.queries[-1].version is None


def test_reference_from_audit_empty_range_names_model_and_version():
    with pytest.raises(ValueError, match=r"^no audited input rows for model 'm' version v3 in that time range$"):
        reference_from_audit(_Store([{"output": {"y": 1}}]), "m", version="v3")
    with pytest.raises(ValueError, match=r"^no audited output rows for model 'm' in that time range$"):
        reference_from_audit(_Store([]), "m", on="output")


def test_to_json_writes_numpy_values_and_non_string_keys_as_json():
    """Records, detections and dead letters carry what the codecs and detectors hand them: numpy
    arrays and scalars (a tensor column, a count) and dicts keyed by ints (partitions, class
    labels). JSON has no such types: an array is a list, an int64 a number, and an object's keys
    are strings, so the log holds them as such (the expected values are those JSON forms)."""
    import numpy as np

    r = InferenceRecord(id="a", model="m", timestamp=T0,
                        inputs={"x": np.array([1, 2], dtype=np.int64), "y": [np.int32(3), np.float32(0.5)]},
                        outputs={"score": np.array([0.25, 0.75])}, input_schema={"by_class": {0: "cat", 1: "dog"}})
    doc = orjson.loads(r.to_json())
    assert doc["inputs"] == {"x": [1, 2], "y": [3, 0.5]}
    assert doc["outputs"] == {"score": [0.25, 0.75]}
    assert doc["input_schema"] == {"by_class": {"0": "cat", "1": "dog"}}
    d = Detection(detector="psi", kind="data_drift", model="m", window_size=np.int64(3),
                  extra={"partitions": {0: np.int64(5), 1: 7}, "counts": np.arange(3)})
    back = orjson.loads(d.to_json())
    assert back["window_size"] == 3
    assert back["extra"]["partitions"] == {"0": 5, "1": 7}
    assert back["extra"]["counts"] == [0, 1, 2]

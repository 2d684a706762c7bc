"""Contract tests run over every implementation of a protocol (SQLite and Kafka logs,
SQLite and Elasticsearch audit stores: subclass and provide the fixtures; detectors:
:func:`check_detector_contract`)."""

from __future__ import annotations

import dataclasses
import pickle
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from inferwatch.audit import SearchQuery
from inferwatch.detector import Detector
from inferwatch.errors import DetectorError
from inferwatch.record import DeadLetter, Detection, InferenceRecord, parse_timestamp

#: the client libraries the Kafka log's consumers run on (``kafka.client``): every Kafka test of
#: the log's contract and of the exactly-once roles runs over each
KAFKA_CLIENTS = ("kafka-python", "confluent")


class LogContract:
    """Needs fixtures ``log`` (a Log) and ``topic`` (a fresh topic name)."""

    def test_append_then_consume_in_order(self, log, topic):
        log.append(topic, [(b"k", f"m{i}".encode()) for i in range(50)])
        c = log.consumer(topic, "g-" + uuid.uuid4().hex)
        got = [e.value for e in _drain(c, 50)]
        assert got == [f"m{i}".encode() for i in range(50)]
        c.close()

    def test_groups_are_independent(self, log, topic):
        log.append(topic, [(b"k", b"a"), (b"k", b"b")])
        g1, g2 = "g1-" + uuid.uuid4().hex, "g2-" + uuid.uuid4().hex
        c1 = log.consumer(topic, g1)
        b1 = _drain(c1, 2)
        c1.commit(b1)
        c2 = log.consumer(topic, g2)
        assert [e.value for e in _drain(c2, 2)] == [b"a", b"b"]
        assert c1.lag() == 0 and c2.lag() == 2
        c1.close()
        c2.close()

    def test_uncommitted_work_is_read_again(self, log, topic):
        log.append(topic, [(b"k", str(i).encode()) for i in range(10)])
        group = "g-" + uuid.uuid4().hex
        c = log.consumer(topic, group)
        first = _drain(c, 10)
        c.commit(first[:4])
        c.close()
        c = log.consumer(topic, group)
        again = _drain(c, 6)
        assert [e.value for e in again] == [str(i).encode() for i in range(4, 10)]
        c.close()

    def test_state_is_committed_with_the_position(self, log, topic):
        log.append(topic, [(b"k", b"x")])
        group = "g-" + uuid.uuid4().hex
        c = log.consumer(topic, group)
        assert c.committed_state() is None
        (entry,) = _drain(c, 1)
        assert c.committed_state(entry.partition) is None
        c.commit([entry], states={entry.partition: b"\x00window-state"})
        c.close()
        c = log.consumer(topic, group)
        assert c.committed_state(entry.partition) == b"\x00window-state"
        assert _read_all(c) == []  # resumes after the entry the state has seen
        assert entry.partition in c.assigned()
        assert c.committed_state(entry.partition) == b"\x00window-state"
        c.close()

    def test_a_commit_without_state_keeps_the_state_and_its_position(self, log, topic):
        """Issue 11: after a stateful commit and then a position-only commit, a stateful consumer
        resumes from the position stored with the state and reads the later entries again: it
        neither skips what the state has not seen nor loses the state (issue 16: the SQLite
        ``state=excluded.state`` plant erased it). The committed position (the lag) still moved."""
        log.append(topic, [(b"k", str(i).encode()) for i in range(3)])
        group = "g-" + uuid.uuid4().hex
        c = log.consumer(topic, group)
        batch = _drain(c, 3)
        assert len(batch) == 3
        p = batch[0].partition
        c.commit(batch[:1], states={p: b"open-windows"})
        c.commit(batch[1:])  # position only
        c.close()
        c = log.consumer(topic, group)
        assert c.committed_state(p) == b"open-windows"
        assert c.lag() == 0
        assert [e.value for e in _read_all(c)] == [b"1", b"2"]
        assert c.committed_state(p) == b"open-windows"
        c.close()

    def test_seek_to_committed_returns_to_the_state_position(self, log, topic):
        log.append(topic, [(b"k", str(i).encode()) for i in range(6)])
        group = "g-" + uuid.uuid4().hex
        c = log.consumer(topic, group)
        batch = _drain(c, 4)
        p = batch[0].partition
        c.commit(batch[:2], states={p: b"after-1"})
        c.commit(batch[2:3])  # position only: the state still belongs after entry 1
        generation = c.generation
        c.seek_to_committed()
        assert c.generation != generation  # a stateful caller must restore its state now
        assert c.committed_state(p) == b"after-1"
        assert [e.value for e in _drain(c, 4)] == [b"2", b"3", b"4", b"5"]
        c.close()

    def test_a_state_needs_entries_of_its_partition(self, log, topic):
        log.append(topic, [(b"k", b"a")])
        c = log.consumer(topic, "g-" + uuid.uuid4().hex)
        (entry,) = _drain(c, 1)
        with pytest.raises(ValueError):
            c.commit([], states={entry.partition: b"s"})
        with pytest.raises(ValueError):
            c.commit([entry], states={entry.partition + 1: b"s"})
        c.close()

    def test_each_partition_keeps_its_own_state(self, log, topic):
        """A state per partition, stored with that partition's position: restoring one never
        hands over another's (one checkpoint per group and topic let members overwrite each
        other's windows)."""
        log.append(topic, [(f"model-{i % 7}".encode(), str(i).encode()) for i in range(70)])
        group = "g-" + uuid.uuid4().hex
        c = log.consumer(topic, group)
        entries = _drain(c, 70)
        assert sorted(int(e.value) for e in entries) == list(range(70))
        parts = sorted({e.partition for e in entries})
        c.commit(entries, states={p: f"state-of-{p}".encode() for p in parts})
        c.close()
        c = log.consumer(topic, group)
        assert _read_all(c) == []
        assert c.assigned() >= set(parts)
        assert {p: c.committed_state(p) for p in parts} == {p: f"state-of-{p}".encode() for p in parts}
        c.close()

    def test_seek_to_committed_rewinds(self, log, topic):
        log.append(topic, [(b"k", b"1"), (b"k", b"2")])
        c = log.consumer(topic, "g-" + uuid.uuid4().hex)
        assert len(_drain(c, 2)) == 2
        c.seek_to_committed()
        assert [e.value for e in _drain(c, 2)] == [b"1", b"2"]
        c.close()


    def test_group_lag_and_reset_for_replay(self, log, topic):
        log.append(topic, [(b"k", str(i).encode()) for i in range(8)])
        group = "g-" + uuid.uuid4().hex
        c = log.consumer(topic, group)
        entries = _drain(c, 8)
        c.commit(entries, states={p: b"s" for p in {e.partition for e in entries}})
        c.close()
        assert log.group_lag(topic, group) == 0
        log.append(topic, [(b"k", b"8")])
        assert log.group_lag(topic, group) == 1
        log.reset_group(topic, group)
        assert log.group_lag(topic, group) == 9
        c = log.consumer(topic, group)
        assert all(c.committed_state(p) is None for p in {e.partition for e in entries})
        assert sorted(int(e.value) for e in _drain(c, 9)) == list(range(9))
        c.close()


def _read_all(consumer, rounds=100, quiet_polls=3):
    """Everything ``consumer`` reads once it holds its partitions, until ``quiet_polls`` polls in
    a row bring nothing (bounded): for checks that something is *not* read again."""
    out = []
    for _ in range(rounds):
        out += consumer.poll(100, timeout=0.5)
        if consumer.generation > 0 and consumer.assigned():
            break
    quiet = 0
    generation = consumer.generation
    for _ in range(rounds):
        got = consumer.poll(100, timeout=0.5)
        if consumer.generation != generation:  # repositioned: what is uncommitted comes again
            generation, out = consumer.generation, []
        out += got
        quiet = 0 if got else quiet + 1
        if quiet >= quiet_polls:
            break
    return out


def _drain(consumer, n, rounds=100):
    """Up to ``n`` entries of the consumer's current generation: a new generation (Kafka may
    rebalance a group again right after its first join) repositions at the committed offsets and
    reads what was not committed again, so what an older generation gave is dropped."""
    out = []
    generation = consumer.generation
    for _ in range(rounds):
        got = consumer.poll(n - len(out), timeout=0.5)
        if consumer.generation != generation:
            generation, out = consumer.generation, []
        out += got
        if len(out) >= n:
            break
    return out


def _rec(i, part="both", model="m"):
    return InferenceRecord(
        id=f"req-{i}", model=model, version="v1",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
        inputs={"x": [float(i), float(i) + 0.5], "colour": ["red", "blue"]} if part != "response" else None,
        outputs={"y": [i % 2, 1 - i % 2]} if part != "request" else None,
        request='{"instances": [[1], [2]]}' if part != "response" else None,
        response='{"predictions": [0, 1]}' if part != "request" else None,
        part=part,
    )


class AuditStoreContract:
    """Needs a fixture ``store`` (a fresh AuditStore) and a method ``refresh(store)``."""

    def refresh(self, store):  # Elasticsearch needs a refresh before searching
        pass

    def test_rows_become_documents(self, store):
        assert store.write_records([_rec(1)]) == 2
        self.refresh(store)
        d = store.get("req-1-1")
        assert d["input"] == {"x": 1.5, "colour": "blue"} and d["output"] == {"y": 0}
        assert d["record_id"] == "req-1" and d["row"] == 1 and d["n_rows"] == 2
        assert store.get("req-1-0")["request"] == '{"instances": [[1], [2]]}'

    def test_halves_merge_in_any_order_and_replays_are_idempotent(self, store):
        store.write_records([_rec(2, "response"), _rec(2, "request"), _rec(2, "response")])
        store.write_records([_rec(2, "request")])
        self.refresh(store)
        assert store.count(SearchQuery(id="req-2")) == 2
        d = store.get("req-2-0")
        assert d["input"]["x"] == 2.0 and d["output"]["y"] == 0
        assert d["request"] and d["response"]

    def test_feedback_truth_rows_are_documents(self, store):
        """Issue 16: a feedback record's rows are its ``truth`` rows (plant caught: the row
        count ignoring ``truth`` gives 1 document instead of 3)."""
        fb = InferenceRecord(id="req-fb", model="m", part="feedback",
                             timestamp=datetime(2026, 1, 2, tzinfo=UTC), truth={"label": [1, 0, 1]})
        assert store.write_records([fb]) == 3
        self.refresh(store)
        assert store.count(SearchQuery(id="req-fb")) == 3
        assert [store.get(f"req-fb-{i}")["truth"] for i in range(3)] == [{"label": 1}, {"label": 0}, {"label": 1}]

    def test_labels_before_their_predictions_days_apart_end_on_the_prediction(self, store):
        """Issue 14: a label that comes before its prediction, on another day (another daily index
        in Elasticsearch), ends on the prediction's document: one document per row, whatever the
        order, batching, halves or replays."""
        later = datetime(2026, 1, 3, 12, tzinfo=UTC)  # the labels' day; the predictions are of 2026-01-01

        def fb(i, truth):
            return InferenceRecord(id=f"req-{i}", model="m", part="feedback", timestamp=later,
                                   truth={"label": truth})

        store.write_records([fb(10, [1, 0])])  # label first, its prediction in a later batch
        store.write_records([_rec(10)])
        store.write_records([fb(11, [0, None]), _rec(11)])  # both in one batch, the label first
        store.write_records([fb(12, [1, 1])])  # label sent twice, prediction in two halves
        store.write_records([fb(12, [1, 1])])
        store.write_records([_rec(12, "response")])
        store.write_records([_rec(12, "request")])
        store.write_records([fb(13, [0, 1])])  # the prediction replayed after the join
        store.write_records([_rec(13)])
        store.write_records([_rec(13)])
        store.write_records([_rec(14)])  # the other order: label after its prediction
        store.write_records([fb(14, [1, 0])])
        self.refresh(store)
        want = {10: [1, 0], 11: [0, None], 12: [1, 1], 13: [0, 1], 14: [1, 0]}
        for i, labels in want.items():
            assert store.count(SearchQuery(id=f"req-{i}")) == 2, i
            for row, label in enumerate(labels):
                d = store.get(f"req-{i}-{row}")
                assert d["output"] == {"y": [i % 2, 1 - i % 2][row]}, (i, row)
                assert parse_timestamp(d["timestamp"]) == _rec(i).timestamp, (i, row)
                assert d.get("truth") == (None if label is None else {"label": label}), (i, row)

    def test_response_half_keeps_the_request_timestamp(self, store):
        """Issue 16: the response half writes ``response_timestamp`` and leaves the request's
        ``timestamp`` alone, whichever half arrives first (plant caught: the response half
        writing ``timestamp``)."""
        req = _rec(3, "request")
        resp = _rec(3, "response")
        resp.timestamp = req.timestamp + timedelta(seconds=7)
        store.write_records([resp, req])
        store.write_records([resp])  # a replayed response must not move the request time either
        self.refresh(store)
        d = store.get("req-3-0")
        assert parse_timestamp(d["timestamp"]) == req.timestamp
        assert parse_timestamp(d["response_timestamp"]) == resp.timestamp

    def test_filters(self, store):
        store.write_records([_rec(i, model="a" if i % 2 else "b") for i in range(10)])
        self.refresh(store)
        assert store.count(SearchQuery(model="a")) == 10
        since = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=5)
        until = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=7)
        got = store.search(SearchQuery(since=since, until=until, limit=100))
        assert sorted({d["record_id"] for d in got}) == ["req-5", "req-6", "req-7"]
        assert store.search(SearchQuery(id="req-3-1"))[0]["doc_id"] == "req-3-1"
        assert len(store.search(SearchQuery(limit=3))) == 3

    def test_full_text(self, store):
        r = _rec(1)
        r.inputs = {"comment": ["the quick brown fox", "lazy dog"]}
        store.write_records([r, _rec(2)])
        self.refresh(store)
        got = store.search(SearchQuery(text="fox"))
        assert [d["doc_id"] for d in got] == ["req-1-0"]

    def test_full_text_covers_names_values_bodies_and_both_halves(self, store):
        """Issue 12: full text finds a row by a column's name, by its values (numbers, words, a
        number inside a nested value), by words of the raw bodies, and keeps both halves' words
        when the halves merge, in either order (caught: the later half's text replaced the
        earlier half's in Elasticsearch)."""
        t = datetime(2026, 1, 1, tzinfo=UTC)

        def halves(i):
            req = InferenceRecord(id=f"ft-{i}", model="m", timestamp=t, part="request",
                                  inputs={"petal_width": [3.25], "city": ["Trondheim"], "pos": [[17, 42]]},
                                  request='{"note": "zebra"}')
            resp = InferenceRecord(id=f"ft-{i}", model="m", timestamp=t, part="response",
                                   outputs={"species": ["virginica"]}, response='{"why": "giraffe"}')
            return req, resp

        req1, resp1 = halves(1)
        req2, resp2 = halves(2)
        for r in (req1, resp1, resp2, req2):  # one exchange request first, the other response first
            store.write_records([r])
        store.write_records([_rec(3)])  # a document none of the words are in
        self.refresh(store)
        for word in ("petal_width", "3.25", "trondheim", "42", "zebra", "species", "virginica", "giraffe"):
            assert sorted(d["doc_id"] for d in store.search(SearchQuery(text=word))) == ["ft-1-0", "ft-2-0"], word
        assert store.count(SearchQuery(text="colour")) == 2  # _rec(3)'s two rows, by a column name

    def test_detections_and_outlier_scores(self, store):
        store.write_records([_rec(1)])
        self.refresh(store)
        drift = Detection(detector="ks", kind="drift", model="m", version="v1", window_size=2, is_drift=True,
                          p_value=0.001, window_start=datetime(2026, 1, 1, tzinfo=UTC))
        calm = Detection(detector="ks", kind="drift", model="m", version="v1", window_size=3, is_drift=False,
                         p_value=0.5, window_start=datetime(2026, 1, 2, tzinfo=UTC))
        out = Detection(detector="mahalanobis", kind="outlier", model="m", version="v1", window_size=2,
                        is_outlier=True, threshold=1.0, row_ids=["req-1-0", "req-1-1"], scores=[0.5, 3.0])
        store.write_detections([drift, calm, out, drift])
        self.refresh(store)
        assert store.count(SearchQuery(kind="detections")) == 3
        assert store.count(SearchQuery(kind="detections", drift_only=True)) == 2
        assert store.get("req-1-1")["outlier"]["mahalanobis"]["is_outlier"] is True
        assert store.get("req-1-0")["outlier"]["mahalanobis"]["is_outlier"] is False

    def test_replay_keeps_attached_outlier_scores(self, store):
        store.write_records([_rec(4)])
        self.refresh(store)
        store.write_detections([Detection(detector="iforest", kind="outlier", model="m", window_size=1,
                                          threshold=0.5, row_ids=["req-4-0"], scores=[0.9])])
        self.refresh(store)
        store.write_records([_rec(4), _rec(4, "request")])  # a replay of the whole exchange and a half
        self.refresh(store)
        assert store.count(SearchQuery(id="req-4")) == 2
        d = store.get("req-4-0")
        assert d["outlier"]["iforest"] == {"score": 0.9, "is_outlier": True}
        assert d["output"] == {"y": 0} and d["input"]["x"] == 4.0

    def test_scores_arriving_before_their_rows_are_kept(self, store):
        t = datetime(2026, 1, 1, tzinfo=UTC)
        store.write_detections([Detection(detector="iforest", kind="outlier", model="m", window_size=1,
                                          threshold=0.5, row_ids=["req-5-1"], scores=[0.7],
                                          window_start=t, window_end=t + timedelta(seconds=10))])
        self.refresh(store)
        store.write_records([_rec(5)])
        self.refresh(store)
        assert store.count(SearchQuery(id="req-5")) == 2
        d = store.get("req-5-1")
        assert d["outlier"]["iforest"]["is_outlier"] is True
        assert d["input"]["x"] == 5.5 and d["timestamp"]

    def test_deadletters_keep_raw_and_reason(self, store):
        dl = DeadLetter(raw=b"\xffnot json", source="http", reason="invalid JSON at byte 0")
        store.write_deadletters([dl, dl])
        self.refresh(store)
        got = store.search(SearchQuery(kind="deadletters"))
        assert len(got) == 1 and got[0]["reason"] == "invalid JSON at byte 0"
        assert DeadLetter.from_json(_json(got[0])).raw == b"\xffnot json"


def _json(d):
    import orjson

    return orjson.dumps(d)


KSERVE_BODY = b'{"instances": [[1.5, 2.0], [3.0, 4.5]]}'


class CollectorContract:
    """Every way in (:class:`inferwatch.ingest.Collector`). Needs a fixture ``collector`` (fresh,
    not started) and a method ``deliver(collector, record_id, model, body) -> None`` that hands
    ``body`` (a KServe v1 request) to the collector through its own transport and returns once
    the collector acknowledged it (or raises when the collector does not take it)."""

    def deliver(self, collector, record_id, model, body):
        raise NotImplementedError

    def _running(self, collector, tmp_path):
        from inferwatch.config import load_config
        from inferwatch.ingest import Ingestor
        from inferwatch.metrics import Metrics
        from inferwatch.sqlite_log import SQLiteLog

        cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path)})
        lg = SQLiteLog(cfg.log_path)
        collector.start(Ingestor(lg, cfg, Metrics()))
        return cfg, lg

    def test_satisfies_the_protocol(self, collector):
        from inferwatch.ingest import Collector

        assert isinstance(collector, Collector) and collector.name

    def test_an_acknowledged_payload_is_a_record_on_the_log(self, collector, tmp_path):
        cfg, lg = self._running(collector, tmp_path)
        try:
            self.deliver(collector, "c-1", "toy-model", KSERVE_BODY)
            got = [InferenceRecord.from_json(e.value) for e in _drain(lg.consumer(cfg.log.records_topic, "t"), 1)]
        finally:
            collector.stop()
        assert [(r.id, r.model, r.part) for r in got] == [("c-1", "toy-model", "request")]
        assert got[0].inputs == {"f0": [1.5, 3.0], "f1": [2.0, 4.5]} and got[0].request_bytes() == KSERVE_BODY

    def test_an_undecodable_payload_is_a_dead_letter_with_its_bytes(self, collector, tmp_path):
        cfg, lg = self._running(collector, tmp_path)
        try:
            try:
                self.deliver(collector, "c-2", "toy-model", b"\xffnot json")
            except Exception:  # a transport may also say no to the sender; the letter is kept either way
                pass
            letters = [DeadLetter.from_json(e.value)
                       for e in _drain(lg.consumer(cfg.log.deadletter_topic, "t"), 1)]
        finally:
            collector.stop()
        assert [dl.raw for dl in letters] == [b"\xffnot json"] and letters[0].reason
        assert lg.size(cfg.log.records_topic) == 0


class DetectionSinkContract:
    """Every detection sink (:class:`inferwatch.sink.DetectionSink`). Needs a fixture ``sink`` and a
    method ``delivered(sink) -> int``: how many detections the sink's destination shows (for
    sinks that deliver only fired detections, ``fired_only = True``, only those)."""

    fired_only = True

    def delivered(self, sink):
        raise NotImplementedError

    def test_satisfies_the_protocol(self, sink):
        from inferwatch.sink import DetectionSink

        assert isinstance(sink, DetectionSink) and sink.name and isinstance(sink.inline, bool)

    def test_writes_arrive_and_count(self, sink):
        fired = Detection(detector="ks", kind="drift", model="m", window_size=10, is_drift=True, p_value=0.001,
                          window_start=datetime(2026, 1, 1, tzinfo=UTC))
        # another model's calm window: nothing for a fired-only sink (a calm window of the model that
        # fired would be delivered by a sink that resolves what it raised, as the alert sink does)
        calm = Detection(detector="ks", kind="drift", model="m2", window_size=11, is_drift=False, p_value=0.4,
                         window_start=datetime(2026, 1, 2, tzinfo=UTC))
        want = 1 if self.fired_only else 2
        assert sink.write([fired, calm]) == want
        assert self.delivered(sink) == want
        assert sink.write([]) == 0
        assert self.delivered(sink) == want


# -- detectors -------------------------------------------------------------------------------

def _key(d: Detection) -> dict[str, Any]:
    out = dataclasses.asdict(d)
    out.pop("timestamp")
    return out


def check_detector_contract(factory: Callable[..., Any], kwargs: dict[str, Any], ref: pd.DataFrame,
                            window: pd.DataFrame, other_reference: pd.DataFrame) -> None:
    """The detector protocol's laws (:class:`inferwatch.detector.Detector`) for detectors built by
    ``factory(**kwargs)``, on a reference and a window whose rows differ from a reference of
    ``other_reference`` (fit / update / result give a typed Detection; reset keeps the
    reference; the detector pickles; merging partial windows equals the whole window, with the
    empty window as identity; row ids given to ``update`` change no decision and are the ids a
    detector names rows by; misuse raises DetectorError)."""
    det = factory(**kwargs)
    assert isinstance(det, Detector)
    assert isinstance(det.name, str) and det.kind in ("drift", "outlier", "quality", "performance")
    with pytest.raises(DetectorError):
        factory(**kwargs).update(window)

    assert det.fit(ref) is det
    assert det.update(window.iloc[:70]) is det
    assert det.update(window.iloc[70:].to_dict(orient="list")) is det  # a Table works too
    whole = det.result()
    assert isinstance(whole, Detection)
    assert whole.detector == det.name and whole.kind == det.kind
    assert whole.window_size == len(window)
    assert (whole.is_drift is not None) or (whole.is_outlier is not None)

    # pickle round trip keeps reference and window
    clone = pickle.loads(pickle.dumps(det))
    assert _key(clone.result()) == _key(whole)

    # monoid: merge of partial windows == whole window; the empty window is the identity
    left = factory(**kwargs).fit(ref).update(window.iloc[:55])
    right = factory(**kwargs).fit(ref).update(window.iloc[55:])
    merged = left.merge(right)
    assert _key(merged.result()) == _key(whole)
    assert left.window_size == 55  # merge returns a new detector
    empty = factory(**kwargs).fit(ref)
    assert _key(empty.merge(det).result()) == _key(whole)
    assert _key(det.merge(empty).result()) == _key(whole)

    # row ids are a field of the window, never a column: the same figures with them, and a
    # detector that names rows (outliers) names them by these ids, across a merge too
    ids = [f"req-{i}-0" for i in range(len(window))]
    named = factory(**kwargs).fit(ref).update(window.iloc[:55], ids=ids[:55]).merge(
        factory(**kwargs).fit(ref).update(window.iloc[55:].to_dict(orient="list"), ids=ids[55:])).result()
    assert {k: v for k, v in _key(named).items() if k != "row_ids"} == \
        {k: v for k, v in _key(whole).items() if k != "row_ids"}
    assert named.row_ids == (ids if whole.row_ids else [])
    if whole.row_ids:
        assert whole.row_ids == [str(i) for i in range(len(window))]  # without ids: positions

    # reset keeps the reference
    assert det.reset() is det and det.window_size == 0
    again = det.update(window).result()
    assert _key(again) == _key(whole)

    with pytest.raises(DetectorError):
        det.merge(factory(**kwargs).fit(other_reference))

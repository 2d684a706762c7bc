"""The batching engine's edges (inferwatch/batching.py): the cases `make mutation` showed no
test held — dead letters' bytes and ids, backoff delays, chunk boundaries, the log lines an
operator reads. Expected values follow from the module's documented rules."""

from __future__ import annotations

import hashlib
import logging
import sys
import threading

import numpy as np
import orjson
import pytest

from inferwatch import batching
from inferwatch.batching import RETRYABLE, BatchingSink, Outcome, WriteAction, refused_letters
from inferwatch.errors import AuditStoreError, BackpressureError, RequestRefused
from inferwatch.record import DeadLetter


class Script:
    """Answers each send with the next scripted statuses (all written when out of script)."""

    def __init__(self, script=(), settle="refused", refuse=None):
        self.script = list(script)
        self.calls: list[list[int]] = []
        self.settled: list[tuple[int, int]] = []
        self._settle = settle
        self.refuse = refuse

    def send(self, positions):
        self.calls.append(list(positions))
        if self.refuse is not None and self.refuse & set(positions):
            raise RequestRefused(400, "bad " + "x" * 3000)
        if not self.script:
            return None
        return self.script.pop(0)

    def settle(self, position, status):
        self.settled.append((position, status))
        return self._settle


def test_defaults():
    s = BatchingSink(name="n")
    assert (s.name, s.chunk_actions, s.chunk_bytes, s.max_retries, s.max_backoff_s) == ("n", 2000, 5 * 1024 * 1024,
                                                                                         10, 30.0)
    assert {429, 500, 502, 503, 504} == RETRYABLE
    assert Outcome() == Outcome(0, [])


def test_default_chunks_are_2000_actions_or_5_mib():
    t = Script()
    assert BatchingSink(name="n").write([1] * 4001, t).written == 4001
    assert [len(c) for c in t.calls] == [2000, 2000, 1]
    t = Script()
    mib = 1024 * 1024
    BatchingSink(name="n").write([2 * mib, 3 * mib, 1, 5 * mib, 5 * mib + 1], t)
    # 2 + 3 MiB fill a chunk exactly; an action over the limit still goes, alone
    assert t.calls == [[0, 1], [2], [3], [4]]


def test_chunk_boundaries_are_inclusive():
    t = Script()
    BatchingSink(name="n", chunk_actions=2, chunk_bytes=10).write([5, 5, 5, 4, 1, 1], t)
    assert t.calls == [[0, 1], [2, 3], [4, 5]]
    t = Script()  # each chunk counts its own bytes from 0: 6 + 4 fill the second one exactly
    BatchingSink(name="n", chunk_bytes=10).write([10, 6, 4, 1], t)
    assert t.calls == [[0], [1, 2], [3]]


def test_a_transport_answering_the_wrong_number_of_statuses_is_an_error():
    t = Script([[(201, "")]])
    with pytest.raises(ValueError, match="zip"):
        BatchingSink(name="n").write([1, 1], t)


def test_backoff_doubles_from_0_2_s_with_jitter_and_a_cap(monkeypatch):
    delays: list[float] = []
    draws: list[tuple[float, float]] = []

    def uniform(a, b):
        draws.append((a, b))
        return a  # the bottom of the jitter range: half the delay

    monkeypatch.setattr(batching.random, "uniform", uniform)
    sink = BatchingSink(name="n", max_retries=6, max_backoff_s=3.0, sleep=delays.append)
    t = Script([[(503, "busy")]] * 6)
    assert sink.write([1], t).written == 1
    # 0.1 * 2^attempt, at most max_backoff_s, times the jitter draw (0.5 here)
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.5, 1.5])
    assert set(draws) == {(0.5, 1.0)}


def test_retries_stop_after_max_retries_naming_the_count(caplog):
    sink = BatchingSink(name="es", max_retries=2, max_backoff_s=0.0, sleep=lambda s: None)
    t = Script([[(429, "slow"), (201, "")]] + [[(429, "slow")]] * 5)
    with caplog.at_level(logging.WARNING, logger="inferwatch.batching"), \
            pytest.raises(BackpressureError, match=r"^1 es items still rejected \(429/5xx\) after 2 retries$"):
        sink.write([1, 1], t)
    assert len(t.calls) == 3
    assert "1 es items rejected with 429/5xx; retry 1 in 0.00s" in caplog.messages


def test_settled_items_without_backoff_are_sent_again_at_once():
    sleeps: list[float] = []
    t = Script([[(409, "exists"), (201, "")]], settle="again")
    out = BatchingSink(name="n", sleep=sleeps.append).write([1, 1], t)
    assert (out.written, t.calls, t.settled, sleeps) == (2, [[0, 1], [0]], [(0, 409)], [])
    t = Script([[(409, "exists"), (409, "exists"), (201, "")]], settle="written")
    out = BatchingSink(name="n", sleep=sleeps.append).write([1, 1, 1], t)
    assert (out.written, out.refused, len(t.calls)) == (3, [], 1)


def test_item_statuses_below_300_are_written_and_300_is_not():
    t = Script([[(299, ""), (300, "moved"), (200, "")]])
    out = BatchingSink(name="n", sleep=lambda s: None).write([1, 1, 1], t)
    assert (out.written, out.refused, t.settled) == (2, [(1, "moved")], [(1, 300)])


def test_reasons_are_cut_at_2000_characters(caplog):
    t = Script([[(400, "y" * 2500)]])
    out = BatchingSink(name="n").write([1], t)
    assert out.refused == [(0, "y" * 2000)]
    t = Script(refuse={1})
    with caplog.at_level(logging.WARNING, logger="inferwatch.batching"):
        out = BatchingSink(name="svc").write([1, 1, 1], t)
    assert out.refused == [(1, ("400 bad " + "x" * 3000)[:2000])] and out.written == 2
    assert caplog.messages[0] == "svc refused a request of 3 actions (400 bad " + "x" * 196 + "); sending it in halves"


def test_origin_bytes_of_each_kind():
    assert batching._origin_bytes(b"raw") == b"raw"
    dl = DeadLetter(raw=b"x", source="s", reason="r", id="i")
    assert batching._origin_bytes(dl) == dl.to_json()
    assert batching._origin_bytes({"a": np.int64(3), 1: np.array([1.5])}) == b'{"a":3,"1":[1.5]}'
    assert orjson.loads(batching._origin_bytes([1, "two"])) == [1, "two"]


@pytest.mark.parametrize(("doc_id", "kept"), [
    ("d" * 254, True),            # "s-" + 254 bytes = 256: an id as it is
    ("d" * 255, False),
    ("é" * 127, True),            # 254 bytes in 127 characters
    ("é" * 128, False),           # 256 bytes in 128 characters: over by bytes, not characters
])
def test_letter_ids_past_256_bytes_are_a_prefix_and_a_digest(doc_id, kept):
    letter_id = batching._letter_id("s", doc_id)
    if kept:
        assert letter_id == "s-" + doc_id
        return
    head, _, digest = letter_id.rpartition("~")
    assert head == "s-" + doc_id[:100]
    assert digest == hashlib.blake2b(doc_id.encode(), digest_size=16).hexdigest() and len(digest) == 32
    assert len(letter_id.encode()) <= 256
    # two long ids sharing their first 100 characters stay apart
    assert batching._letter_id("s", doc_id + "!") != letter_id


def test_refused_letters_carry_origin_reason_source_and_stage(caplog):
    actions = [WriteAction("index", "t", "a", origin=b"A"), WriteAction("index", "t", "b", origin={"k": 1}),
               WriteAction("create", "t", "c", origin=b"C")]
    out = Outcome(written=1, refused=[(2, "400 no"), (1, "413 big")])
    with caplog.at_level(logging.ERROR, logger="inferwatch.batching"):
        letters = refused_letters(actions, out, source="elasticsearch", prefix="p")
    assert [(dl.id, dl.raw, dl.reason, dl.source, dl.stage) for dl in letters] == [
        ("p-c", b"C", "400 no", "elasticsearch", "index"), ("p-b", b'{"k":1}', "413 big", "elasticsearch", "index")]
    assert caplog.messages == ["2 documents refused by elasticsearch; sent to the dead letters"]


def test_an_action_that_may_not_be_refused_names_itself():
    actions = [WriteAction("delete", "t", "x-1")]
    with pytest.raises(AuditStoreError, match=r"^sqlite refused delete of 'x-1', which may not be refused: 400 no$"):
        refused_letters(actions, Outcome(refused=[(0, "400 no")]), source="sqlite", prefix="p")


def test_write_action_defaults():
    a = WriteAction("index", "t", "i")
    assert (a.doc, a.origin, a.merge) == (None, None, False)


class _Held:
    """A transport whose send records its thread and returns only once ``release`` is set."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def send(self, positions):
        self.thread = threading.current_thread()
        self.entered.set()
        assert self.release.wait(30), "never released"
        self.done.set()
        return None

    def settle(self, position, status):
        return "refused"


def test_close_waits_for_the_part_in_flight_and_stops_the_sender_thread():
    """close() returns only after the sender thread has finished the part in flight and ended:
    a close that did not shut the pool down, or did not wait for it, returns with the thread alive.

    The release is set just before close() and the interpreter is told not to switch threads for a
    second unless the main thread blocks: a close that waits blocks (so the sender runs and ends),
    one that does not returns before the sender thread was ever scheduled again."""
    engine = BatchingSink(name="closing")
    held = _Held()
    results: list[tuple[str, int]] = []
    consumer = threading.Thread(
        target=lambda: results.extend((t.name, out.written) for t, out in engine.write_ahead(
            [([1, 1], _Named(held, "only"))])), daemon=True)
    consumer.start()
    assert held.entered.wait(30), "the part was never sent"
    sender_thread = held.thread
    assert sender_thread is not None and sender_thread.name.startswith("closing-send")
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    try:
        held.release.set()
        engine.close()
        alive_after_close = sender_thread.is_alive()
        sent_before_close_returned = held.done.is_set()
    finally:
        sys.setswitchinterval(interval)
    assert sent_before_close_returned
    assert not alive_after_close
    consumer.join(30)
    assert not consumer.is_alive()
    assert results == [("only", 2)]
    # a later write starts a new sender thread, closed again the same way
    again = _Held()
    again.release.set()
    assert [out.written for _, out in engine.write_ahead([([1], _Named(again, "again"))])] == [1]
    assert again.thread is not None and again.thread is not sender_thread
    engine.close()
    assert not again.thread.is_alive()


class _Named:
    def __init__(self, inner, name):
        self.inner, self.name = inner, name

    def send(self, positions):
        return self.inner.send(positions)

    def settle(self, position, status):
        return self.inner.settle(position, status)

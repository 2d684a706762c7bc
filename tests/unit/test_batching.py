"""The one batching engine, as pure logic, and the disciplines built on it: alerts through it
(retry, dead letters) and a sink consumer that commits only after its sink took the batch."""

from __future__ import annotations

import http.server
import threading

import orjson
import pytest

from inferwatch.batching import BatchingSink, WriteAction, refused_letters
from inferwatch.config import ElasticsearchConfig, load_config
from inferwatch.errors import AuditStoreError, BackpressureError, RequestRefused
from inferwatch.record import DeadLetter, Detection, InferenceRecord
from inferwatch.sqlite_log import SQLiteLog
from inferwatch.workers import SinkWorker
from sinks.alertmanager import AlertSink


class Scripted:
    """A transport over ``actions`` answering each send with the next scripted statuses (all
    written when the script is out); ``refuse`` are ids whose presence refuses a whole request,
    as a service refuses an oversized or malformed request (413 / 400)."""

    def __init__(self, actions, script=(), refuse=()):
        self.actions = list(actions)
        self.script = list(script)
        self.refuse = set(refuse)
        self.calls: list[list[tuple[str, str]]] = []
        self.kept: dict[str, object] = {}

    def send(self, positions):
        chunk = [self.actions[p] for p in positions]
        self.calls.append([(a.op, a.id) for a in chunk])
        if self.refuse & {a.id for a in chunk}:
            raise RequestRefused(413, "request entity too large")
        if not self.script:
            self.kept.update((a.id, a.doc) for a in chunk)
            return None
        return [(s, f"status {s}") for s in self.script.pop(0)]

    def settle(self, position, status):
        a = self.actions[position]
        if status != 409 or a.op != "create":
            return "refused"
        if not a.merge:
            return "written"
        self.actions[position] = WriteAction("update", a.target, a.id, a.doc, a.origin)
        return "again"


def _engine(**kw):
    return BatchingSink(name="scripted", max_backoff_s=0.0, sleep=lambda s: None, **kw)


def _actions(n, **kw):
    return [WriteAction("create", "t", f"d{i}", {"i": i}, **kw) for i in range(n)]


def _sizes(actions):
    return [len(a.id) * 10 for a in actions]


def test_chunks_by_count_and_by_bytes():
    t = Scripted(_actions(7))
    assert _engine(chunk_actions=3).write(_sizes(t.actions), t).written == 7
    assert [len(c) for c in t.calls] == [3, 3, 1]
    t = Scripted(_actions(5))  # each action is 20 bytes: two fit, a third does not
    assert _engine(chunk_bytes=45).write(_sizes(t.actions), t).written == 5
    assert [len(c) for c in t.calls] == [2, 2, 1]


def test_retryable_items_only_are_sent_again_then_backpressure():
    t = Scripted(_actions(3), [[201, 429, 503], [201, 500]])
    assert _engine().write(_sizes(t.actions), t).written == 3
    assert [[i for _, i in c] for c in t.calls] == [["d0", "d1", "d2"], ["d1", "d2"], ["d2"]]
    stuck = Scripted(_actions(1), [[429]] * 20)
    with pytest.raises(BackpressureError, match="still rejected"):
        _engine(max_retries=3).write([1], stuck)
    assert len(stuck.calls) == 4


def test_conflicts_merge_or_count_as_there_and_refusals_are_reported():
    acts = [WriteAction("create", "t", "a", {}, b"A", merge=True), WriteAction("create", "t", "b", {}, b"B"),
            WriteAction("create", "t", "c", {}, b"C")]
    t = Scripted(acts, [[409, 409, 400]])
    out = _engine().write(_sizes(acts), t)
    assert (out.written, out.refused) == (2, [(2, "status 400")])
    assert t.calls[1] == [("update", "a")]  # the merge, sent at once
    letters = refused_letters(t.actions, out, source="scripted", prefix="s")
    assert [(dl.raw, dl.id, dl.reason, dl.stage) for dl in letters] == [(b"C", "s-c", "status 400", "index")]


def test_a_refused_action_without_origin_is_an_error():
    t = Scripted(_actions(1), [[400]])
    out = _engine().write([1], t)
    with pytest.raises(AuditStoreError, match="may not be refused"):
        refused_letters(t.actions, out, source="scripted", prefix="s")


@pytest.mark.parametrize("n, bad", [(1, [0]), (2, [1]), (9, [4]), (64, [0, 37, 63]), (13, list(range(13)))])
def test_a_whole_request_refused_is_split_until_the_refused_action_is_alone(n, bad):
    acts = _actions(n, origin=b"x")
    t = Scripted(acts, refuse={f"d{i}" for i in bad})
    out = _engine(chunk_actions=16).write(_sizes(acts), t)
    assert sorted(p for p, _ in out.refused) == bad
    assert all(reason == "413 request entity too large" for _, reason in out.refused)
    assert out.written == n - len(bad) and sorted(t.kept) == sorted(f"d{i}" for i in range(n) if i not in bad)
    chunks = -(-n // 16)  # a binary search for the refused ones, not one request per action
    assert len(t.calls) <= chunks + 2 * len(bad) * 4


def test_a_split_keeps_retrying_what_the_service_pushed_back():
    acts = _actions(4, origin=b"x")
    t = Scripted(acts, refuse={"d3"})
    t.script = [[201, 503]]  # the first half, once d3's half is split off: d1 pushed back once
    out = _engine().write(_sizes(acts), t)
    assert (out.written, [p for p, _ in out.refused]) == (3, [3])
    assert [[i for _, i in c] for c in t.calls] == [["d0", "d1", "d2", "d3"], ["d0", "d1"], ["d1"],
                                                     ["d2", "d3"], ["d2"], ["d3"]]


class _Alertmanager(http.server.BaseHTTPRequestHandler):
    statuses: list[int] = []
    bodies: list[bytes] = []

    def do_POST(self):
        self.bodies.append(self.rfile.read(int(self.headers["content-length"])))
        status = self.statuses.pop(0) if self.statuses else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"bad alert" if status == 400 else b"")

    def log_message(self, *args):
        pass


@pytest.fixture
def alertmanager():
    _Alertmanager.statuses, _Alertmanager.bodies = [], []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Alertmanager)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Alertmanager
    server.shutdown()


def _det(i, fired=True):
    return Detection(detector="ks", kind="drift", model="m", window_size=i + 1, is_drift=fired, p_value=0.001)


def test_alerts_are_retried_and_refused_ones_become_dead_letters(alertmanager):
    url, am = alertmanager
    letters: list[DeadLetter] = []
    sink = AlertSink(url, max_backoff_s=0.01, on_deadletter=letters.extend)
    am.statuses = [503, 200]
    # the fired window's alert and, the next window being clean, its resolution
    assert sink.write([_det(0), _det(1, fired=False)]) == 2
    assert len(am.bodies) == 2 and am.bodies[0] == am.bodies[1]  # the same alerts, posted again
    am.statuses = [400]
    assert sink.write([_det(2)]) == 0
    assert [dl.source for dl in letters] == ["alertmanager"] and Detection.from_json(letters[0].raw).window_size == 3
    sink.close()


def test_an_alert_post_refused_whole_is_split_to_the_refused_alert(alertmanager):
    url, am = alertmanager
    letters: list[DeadLetter] = []
    sink = AlertSink(url, max_backoff_s=0.01, on_deadletter=letters.extend)
    am.statuses = [400, 200, 400]  # both alerts refused together; the first alone passes, the second does not
    assert sink.write([_det(0), _det(1)]) == 1
    assert [len(orjson.loads(b)) for b in am.bodies] == [2, 1, 1]
    assert len(letters) == 1 and Detection.from_json(letters[0].raw).window_size == 2
    assert letters[0].reason == "400 HTTP 400: bad alert"
    sink.close()


def test_unreachable_alertmanager_is_backpressure():
    sink = AlertSink("http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(BackpressureError):
        sink.write([_det(0)])
    sink.close()


class _Flaky:
    name, inline = "flaky", False

    def __init__(self, failures):
        self.failures, self.got = failures, []

    def write(self, detections):
        if self.failures:
            self.failures -= 1
            raise BackpressureError("down")
        self.got += [d.window_size for d in detections]
        return len(detections)

    def close(self):
        pass


def test_sink_worker_commits_only_after_the_sink_took_the_batch(tmp_path):
    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path)})
    lg = SQLiteLog(cfg.log_path)
    lg.append(cfg.log.detections_topic, [(b"m", _det(i).to_json()) for i in range(3)])
    group = f"{cfg.detect.group}-flaky"
    stopped = SinkWorker(cfg, lg, _Flaky(failures=10**6), max_backoff_s=0.01)
    threading.Timer(0.3, stopped.stop_event.set).start()
    assert stopped.step() == 0  # stopped while the sink pushed back: nothing committed
    stopped.close()
    assert lg.group_lag(cfg.log.detections_topic, group) == 3
    sink = _Flaky(failures=2)
    worker = SinkWorker(cfg, lg, sink, max_backoff_s=0.01)
    assert worker.step() == 3 and sink.got == [1, 2, 3]
    assert lg.group_lag(cfg.log.detections_topic, group) == 0
    worker.close()


# -- write_ahead: the next part made while the one before it is sent ---------------------------
class Part:
    """A transport for one part that writes down when its sends start and end; ``during`` runs in
    the middle of each send (on the engine's sender thread)."""

    def __init__(self, k, journal, script=(), during=None):
        self.k, self.journal, self.script, self.during = k, journal, list(script), during
        self.calls = 0

    def send(self, positions):
        self.calls += 1
        self.journal.append(("send", self.k))
        if self.during is not None:
            self.during(self)
        self.journal.append(("sent", self.k))
        return [(s, f"status {s}") for s in self.script.pop(0)] if self.script else None

    def settle(self, position, status):
        return "refused"


def _made(parts, journal, fail_at=None, before_failing=None):
    for k, part in enumerate(parts):
        if k == fail_at:
            if before_failing is not None:
                before_failing()
            raise ValueError(f"making part {k} failed")
        journal.append(("make", k))
        yield [1, 1], part


def test_write_ahead_makes_the_next_part_while_one_is_sent_and_sends_in_order():
    journal: list[tuple[str, int]] = []
    made = [threading.Event() for _ in range(5)]
    saw_next: dict[int, bool] = {}

    def wait_for_next(part):  # the send of part k ends only once part k+1 is made (or the guard runs out)
        if part.k + 1 < len(made):
            saw_next[part.k] = made[part.k + 1].wait(timeout=30)

    parts = [Part(k, journal, during=wait_for_next) for k in range(5)]

    def marking():
        for k, item in enumerate(_made(parts, journal)):
            made[k].set()
            yield item

    engine = _engine()
    try:
        for part, out in engine.write_ahead(marking()):
            assert out.written == 2
            journal.append(("durable", part.k))
    finally:
        engine.close()
    assert saw_next == {k: True for k in range(4)}  # every part but the last was made during a send
    at = {event: i for i, event in enumerate(journal)}
    for k in range(4):  # at most one in flight: a send starts after the one before it is durable
        assert at[("sent", k)] < at[("durable", k)] < at[("send", k + 1)]


def test_write_ahead_retries_a_part_before_the_next_one_is_sent():
    journal: list[tuple[str, int]] = []
    parts = [Part(0, journal, script=[[201, 429], [503]]), Part(1, journal), Part(2, journal)]
    engine = _engine()
    outs = [(p.k, out.written) for p, out in engine.write_ahead(_made(parts, journal))]
    assert outs == [(0, 2), (1, 2), (2, 2)]
    assert [e for e in journal if e[0] == "send"] == [("send", 0)] * 3 + [("send", 1), ("send", 2)]
    engine.close()


def test_write_ahead_stops_at_a_failed_part_nothing_after_it_is_sent():
    journal: list[tuple[str, int]] = []
    parts = [Part(0, journal), Part(1, journal, script=[[201, 429]] + [[429]] * 10), Part(2, journal), Part(3, journal)]
    engine = _engine(max_retries=2)
    durable = []
    with pytest.raises(BackpressureError):
        for part, _ in engine.write_ahead(_made(parts, journal)):
            durable.append(part.k)  # what a caller may commit
    assert durable == [0]
    assert [p.calls for p in parts] == [1, 3, 0, 0]  # part 2 was made, never sent
    engine.close()


def test_write_ahead_waits_for_the_part_in_flight_when_making_the_next_one_fails():
    journal: list[tuple[str, int]] = []
    failing = threading.Event()
    parts = [Part(0, journal, during=lambda part: failing.wait(timeout=30)), Part(1, journal)]
    engine = _engine()
    with pytest.raises(ValueError, match="making part 1 failed"):
        for _ in engine.write_ahead(_made(parts, journal, fail_at=1, before_failing=failing.set)):
            pass
    assert journal[-1] == ("sent", 0)  # the send in flight ended before the error reached the caller
    engine.close()


def test_a_failed_chunk_stops_the_store_write_and_later_chunks_are_not_sent():
    # the Elasticsearch store sends its slices through write_ahead: a slice pushed back until the
    # retries run out fails the whole write (the caller commits nothing), and no later slice is sent
    from sinks.elasticsearch import ElasticsearchAuditStore
    from tests.unit.test_es_bulk_logic import ScriptedBulk

    client = ScriptedBulk([[201, 201], [201, 429]] + [[429]] * 4)
    store = ElasticsearchAuditStore(ElasticsearchConfig(max_backoff_s=0.0, max_retries=2, chunk_actions=2),
                                    client=client, setup=False)
    records = [InferenceRecord(id=f"r{i}", model="m", inputs={"x": [i]}) for i in range(6)]
    with pytest.raises(BackpressureError):
        store.write_records(records)
    sent = [[a[next(iter(a))]["_id"] for a in call] for call in client.calls]
    assert sent == [["r0-0", "r1-0"], ["r2-0", "r3-0"], ["r3-0"], ["r3-0"]]
    store.close()

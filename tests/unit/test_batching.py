"""The one batching sink, as pure logic, and the disciplines built on it: alerts through it
(retry, dead letters) and a sink consumer that commits only after its sink took the batch."""

from __future__ import annotations

import http.server
import threading

import pytest

from inferwatch.batching import BatchingSink, WriteAction
from inferwatch.config import load_config
from inferwatch.errors import AuditStoreError, BackpressureError
from inferwatch.record import DeadLetter, Detection
from inferwatch.sqlite_log import SQLiteLog
from inferwatch.workers import SinkWorker
from sinks.alertmanager import AlertSink


class Scripted(BatchingSink):
    """Answers each send with the next scripted statuses (all written when the script is out)."""

    def __init__(self, script, **kw):
        self.letters: list[DeadLetter] = []
        super().__init__(name="scripted", max_backoff_s=0.0, on_deadletter=self.letters.extend,
                         sleep=lambda s: None, **kw)
        self.script = list(script)
        self.calls: list[list[tuple[str, str]]] = []

    def encode(self, a):
        return a.id.encode() * 10

    def send(self, chunk):
        self.calls.append([(a.op, a.id) for a in chunk])
        if not self.script:
            return None
        return [(s, f"status {s}") for s in self.script.pop(0)]

    def on_conflict(self, a):
        return WriteAction("update", a.target, a.id, a.doc, a.origin) if a.merge else None


def _actions(n, **kw):
    return [WriteAction("create", "t", f"d{i}", {"i": i}, **kw) for i in range(n)]


def test_chunks_by_count_and_by_bytes():
    sink = Scripted([], chunk_actions=3)
    assert sink.write(_actions(7)) == 7
    assert [len(c) for c in sink.calls] == [3, 3, 1]
    sink = Scripted([], chunk_bytes=45)  # each action encodes to 20 bytes: two fit, a third does not
    assert sink.write(_actions(5)) == 5
    assert [len(c) for c in sink.calls] == [2, 2, 1]


def test_retryable_items_only_are_sent_again_then_backpressure():
    sink = Scripted([[201, 429, 503], [201, 500]])
    assert sink.write(_actions(3)) == 3
    assert [[i for _, i in c] for c in sink.calls] == [["d0", "d1", "d2"], ["d1", "d2"], ["d2"]]
    stuck = Scripted([[429]] * 20, max_retries=3)
    with pytest.raises(BackpressureError, match="still rejected"):
        stuck.write(_actions(1))
    assert len(stuck.calls) == 4


def test_conflicts_merge_or_count_as_there_and_refusals_become_dead_letters():
    sink = Scripted([[409, 409, 400]])
    acts = [WriteAction("create", "t", "a", {}, b"A", merge=True), WriteAction("create", "t", "b", {}, b"B"),
            WriteAction("create", "t", "c", {}, b"C")]
    assert sink.write(acts) == 2
    assert sink.calls[1] == [("update", "a")]  # the merge, sent at once
    assert [(dl.raw, dl.id, dl.reason) for dl in sink.letters] == [(b"C", "scripted-c", "status 400")]


def test_a_refused_action_without_origin_is_an_error():
    with pytest.raises(AuditStoreError, match="may not be refused"):
        Scripted([[400]]).write(_actions(1))


def test_overlap_returns_only_when_every_chunk_is_durable():
    sink = Scripted([], chunk_actions=2, overlap=True)
    assert sink.write(_actions(9)) == 9 and len(sink.calls) == 5
    sink.close()


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

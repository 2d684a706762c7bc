"""Declared plug-in points: every implementation runs its contract, and a toy plug-in of each
kind joins the pipeline through its registry alone (one module plus one registration)."""

from __future__ import annotations

import http.server
import queue
import threading
from collections.abc import Sequence

import httpx
import orjson
import pytest

from inferwatch import wiring
from inferwatch.audit import AuditStore, SearchQuery
from inferwatch.errors import ConfigError
from inferwatch.ingest import Envelope, Ingestor
from inferwatch.metrics import Metrics
from inferwatch.pipeline import Pipeline
from inferwatch.record import DeadLetter, Detection, InferenceRecord
from inferwatch.wiring import load_config
from sinks.alertmanager import AlertSink
from sinks.prometheus import PrometheusSink
from tests.contracts import CollectorContract, DetectionSinkContract


# -- collectors ----------------------------------------------------------------------------------
class TestHTTPCollector(CollectorContract):
    @pytest.fixture
    def collector(self):
        from collectors.http import HTTPCollector
        from inferwatch.config import CollectorConfig

        return HTTPCollector(CollectorConfig(port=0))

    def deliver(self, collector, record_id, model, body):
        r = httpx.post(f"http://127.0.0.1:{collector.port}/", content=body, headers={
            "Ce-Type": "org.kubeflow.serving.inference.request", "Ce-Id": record_id, "Ce-Source": "test",
            "Ce-Specversion": "1.0",
            "Ce-Inferenceservicename": model, "Content-Type": "application/json"}, timeout=10)
        r.raise_for_status()


class QueueCollector:
    """A toy way in: payloads put on an in-process queue (what an SDK or a topic adapter would do)."""

    name = "queue"

    def __init__(self) -> None:
        self.inbox: queue.Queue[tuple[dict[str, str], bytes, threading.Event] | None] = queue.Queue()
        self.thread: threading.Thread | None = None

    def start(self, ingestor: Ingestor) -> None:
        import asyncio

        def run() -> None:
            loop = asyncio.new_event_loop()
            while (item := self.inbox.get()) is not None:
                fields, body, done = item
                env = Envelope(source=self.name, raw=body, fields={**fields, "part": "request", "request": body})
                loop.run_until_complete(ingestor.ingest([env]))
                done.set()
            loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def put(self, record_id: str, model: str, body: bytes) -> None:
        done = threading.Event()
        self.inbox.put(({"id": record_id, "model": model}, body, done))
        if not done.wait(10):
            raise TimeoutError("the queue collector did not take the payload")

    def stop(self) -> None:
        self.inbox.put(None)
        if self.thread is not None:
            self.thread.join(10)


class TestQueueCollector(CollectorContract):
    @pytest.fixture
    def collector(self):
        return QueueCollector()

    def deliver(self, collector, record_id, model, body):
        collector.put(record_id, model, body)


# -- detection sinks -----------------------------------------------------------------------------
class TestPrometheusSink(DetectionSinkContract):
    fired_only = False

    @pytest.fixture
    def sink(self):
        return PrometheusSink(Metrics())

    def delivered(self, sink):
        text = sink.metrics.exposition().decode()
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("inferwatch_detector_windows_total{")))

    def test_fired_windows_are_counted_apart(self, sink):
        sink.write([Detection(detector="ks", kind="drift", model="m", is_drift=True, p_value=0.001),
                    Detection(detector="ks", kind="drift", model="m", is_drift=False, p_value=0.4)])
        text = sink.metrics.exposition().decode()
        assert 'inferwatch_detections_total{detector="ks",kind="drift",model="m",version=""} 1.0' in text
        assert 'inferwatch_drift_p_value{detector="ks",model="m",version=""} 0.4' in text


class _Alertmanager(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        self.received += orjson.loads(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class TestAlertSink(DetectionSinkContract):
    @pytest.fixture
    def sink(self):
        _Alertmanager.received = []
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Alertmanager)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        s = AlertSink(f"http://127.0.0.1:{server.server_address[1]}")
        yield s
        s.close()
        server.shutdown()

    def delivered(self, sink):
        return len({a["annotations"]["detection_id"] for a in _Alertmanager.received})


# -- toy plug-ins through the registries alone ----------------------------------------------------
class MemoryStore(AuditStore):
    """A toy audit store: documents in a dict (enough of the protocol for the pipeline)."""

    docs: dict[str, dict] = {}

    def write_records(self, records: Sequence[InferenceRecord]) -> int:
        from inferwatch.audit import record_documents

        docs = [d for r in records for d in record_documents(r)]
        for d in docs:
            self.docs.setdefault(d["doc_id"], {}).update(d)
        return len(docs)

    def write_detections(self, detections: Sequence[Detection]) -> int:
        return len(detections)

    def write_deadletters(self, letters: Sequence[DeadLetter]) -> int:
        return len(letters)

    def search(self, query: SearchQuery) -> list[dict]:
        return [d for d in self.docs.values() if query.id in (None, d["record_id"], d["doc_id"])][: query.limit]

    def count(self, query: SearchQuery) -> int:
        return len(self.search(query))

    def get(self, doc_id: str) -> dict | None:
        return self.docs.get(doc_id)


@pytest.fixture
def toys():
    MemoryStore.docs = {}
    queues: list[QueueCollector] = []

    def make_queue(cfg, parts):
        queues.append(QueueCollector())
        return queues[-1]

    wiring.STORES.register("memory", lambda cfg, parts: MemoryStore())
    wiring.COLLECTORS.register("queue", make_queue)
    yield queues
    wiring.STORES.unregister("memory")
    wiring.COLLECTORS.unregister("queue")


def test_a_toy_collector_and_store_join_through_their_registries_alone(toys, tmp_path):
    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path), "audit.backend": "memory",
                                               "collector.kinds": ["queue", "http"], "collector.port": 0})
    pipe = Pipeline(cfg, ["collector", "audit"])
    pipe.start()
    try:
        toys[0].put("q-1", "toy", b'{"instances": [[1], [2]]}')
        httpx.post(f"http://127.0.0.1:{pipe.bound_port}/v1/records", json={"model": "toy", "id": "h-1",
                                                                          "inputs": {"x": [7]}}).raise_for_status()
        assert pipe.wait_idle(timeout=30)
    finally:
        pipe.stop()
    assert isinstance(pipe.store, MemoryStore)
    assert sorted(MemoryStore.docs) == ["h-1-0", "q-1-0", "q-1-1"]
    assert MemoryStore.docs["q-1-1"]["input"] == {"f0": 2} and MemoryStore.docs["q-1-0"]["source"] == "queue"


def test_unknown_plugins_are_named_at_configuration_time():
    with pytest.raises(ConfigError, match=r"audit\.backend.*unknown audit store 'memory'"):
        load_config(None, env={}, overrides={"audit.backend": "memory"})
    with pytest.raises(ConfigError, match=r"collector\.kinds.*unknown collector 'carrier-pigeon'"):
        load_config(None, env={}, overrides={"collector.kinds": ["carrier-pigeon"]})


def test_a_toy_sink_is_fed_by_its_own_consumer_after_the_detections_are_durable(tmp_path):
    from inferwatch.sqlite_log import SQLiteLog
    from inferwatch.workers import SinkWorker

    got: list[str] = []

    class ListSink:
        name, inline = "list", False

        def write(self, detections):
            got.extend(d.id for d in detections)
            return len(detections)

        def close(self):
            pass

    wiring.SINKS.register("list", lambda cfg, parts: ListSink())
    try:
        cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path)})
        sink = wiring.SINKS.build("list", cfg, wiring.Parts())
    finally:
        wiring.SINKS.unregister("list")
    lg = SQLiteLog(cfg.log_path)
    d = Detection(detector="ks", kind="drift", model="m", is_drift=True)
    lg.append(cfg.log.detections_topic, [(b"m", d.to_json())])
    worker = SinkWorker(cfg, lg, sink)
    assert worker.step() == 1 and got == [d.id]
    worker.close()

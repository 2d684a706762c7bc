"""The pipeline runner: the collector, audit and detect roles over one log.

Each consumer role has its own consumer group, so the audit trail and the detectors read the
same records independently. A role commits its position only after its work is durable:

* audit: documents written to the audit store, then commit;
* detect: detections appended to the log, then commit together with the open windows' state.

A crash between the two re-does the batch on restart; document and detection ids are
deterministic, so the repeat changes nothing.
"""

from __future__ import annotations

import gc
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from inferwatch.audit import AuditStore
from inferwatch.config import Config
from inferwatch.errors import BackpressureError, InferwatchError
from inferwatch.log import Consumer, Log, LogEntry, SQLiteLog
from inferwatch.record import DeadLetter, Detection, InferenceRecord, record_mapping
from sinks.prometheus import Metrics

__all__ = ["AuditWorker", "DetectWorker", "Pipeline", "ROLES", "build_audit_store", "build_log"]

log = logging.getLogger("inferwatch.pipeline")

ROLES = ("collector", "audit", "detect")


def build_log(cfg: Config) -> Log:
    """The configured log: SQLite (embedded) or Kafka."""
    if cfg.log.backend == "kafka":
        from inferwatch.kafka_log import KafkaLog

        lg: Log = KafkaLog(cfg.kafka)
    else:
        lg = SQLiteLog(cfg.log_path)
    lg.create_topics([cfg.log.records_topic, cfg.log.detections_topic, cfg.log.deadletter_topic])
    return lg


def build_audit_store(cfg: Config, lg: Log | None = None) -> AuditStore:
    """The configured audit store: SQLite (embedded) or Elasticsearch.

    With a log, documents Elasticsearch rejects (mapping or parse errors) also go to the log's
    dead-letter topic, beside the dead-letter index.
    """
    if cfg.audit.backend == "elasticsearch":
        from sinks.elasticsearch import ElasticsearchAuditStore

        def to_log(letters: list[DeadLetter]) -> None:
            if lg is not None:
                lg.append(cfg.log.deadletter_topic, [(dl.source.encode(), dl.to_json()) for dl in letters])

        return ElasticsearchAuditStore(cfg.elasticsearch, on_deadletter=to_log)
    from sinks.sqlite_audit import SQLiteAuditStore

    return SQLiteAuditStore(cfg.audit_path)


_GC_TUNED = False


def tune_gc() -> None:
    """Tune the cyclic garbage collector for a long-running stream worker (once per process).

    Batches of thousands of decoded records are many short-lived containers without cycles;
    with the default gen-0 threshold of 700 the collector ran dozens of times per batch and,
    measured, took more time than decoding itself. Everything loaded at start-up is frozen out
    of collections; reference counting still frees each batch as soon as it is done.
    """
    global _GC_TUNED
    if _GC_TUNED:
        return
    _GC_TUNED = True
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(50_000, gen1, gen2)


class _Worker:
    """A polling loop with a stop event; ``step()`` does one batch and returns its size."""

    name = "worker"

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def step(self) -> int:
        raise NotImplementedError

    def run(self) -> None:
        tune_gc()
        log.info("%s started", self.name)
        try:
            while not self.stop_event.is_set():
                if self.step() == 0:
                    self.stop_event.wait(0.05)
        except BaseException as exc:
            self.error = exc
            log.exception("%s stopped on error", self.name)
            raise
        finally:
            self.close()
            log.info("%s stopped", self.name)

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def close(self) -> None:
        pass


def _decode_entries(entries: Sequence[LogEntry], parse: Callable[[bytes], Any]) -> tuple[list[Any], list[DeadLetter]]:
    good, bad = [], []
    for e in entries:
        try:
            good.append(parse(e.value))
        except Exception as exc:  # a corrupt log message becomes a dead letter, never a crash
            bad.append(DeadLetter(raw=e.value, source=f"log:{e.topic}", reason=f"unreadable log message: {exc}",
                                  stage="audit", id=f"{e.topic}-{e.partition}-{e.offset}"))
    return good, bad


class AuditWorker(_Worker):
    """Reads records, detections and dead letters from the log into the audit store."""

    name = "audit"

    def __init__(self, cfg: Config, lg: Log, store: AuditStore, metrics: Metrics):
        super().__init__()
        self.cfg, self.log, self.store, self.metrics = cfg, lg, store, metrics
        t = cfg.log
        self.consumers: list[tuple[Consumer, str]] = [
            (lg.consumer(t.records_topic, cfg.audit.group), "records"),
            (lg.consumer(t.detections_topic, cfg.audit.group + "-detections"), "detections"),
            (lg.consumer(t.deadletter_topic, cfg.audit.group + "-deadletters"), "deadletters"),
        ]
        self._last_lag = 0.0
        self._busy = False
        self.documents = 0
        self._inflight: tuple[Future[int | None], Consumer, str, Sequence[LogEntry]] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-write")

    @property
    def writing(self) -> bool:
        """Whether a batch is still being written (its offsets are not committed yet)."""
        return self._inflight is not None

    def _decode(self, kind: str, entries: Sequence[LogEntry]) -> tuple[list[Any], list[DeadLetter]]:
        # records stay in their JSON form: the audit store takes them apart into documents anyway
        parse = {"records": record_mapping, "detections": Detection.from_json,
                 "deadletters": DeadLetter.from_json}[kind]
        return _decode_entries(entries, parse)

    def _write(self, kind: str, payload: tuple[list[Any], list[DeadLetter]]) -> int:
        items, bad = payload
        n = 0
        if items and kind == "records":
            n = self.store.write_records(items)
        elif items and kind == "detections":
            n = self.store.write_detections(items)
        elif items:
            n = self.store.write_deadletters(items)
        if bad:
            self.store.write_deadletters(bad)
            for dl in bad:
                self.metrics.deadlettered.labels(source=dl.source, stage=dl.stage).inc()
        return n

    def _write_retrying(self, kind: str, payload: tuple[list[Any], list[DeadLetter]]) -> int | None:
        """Write until it is durable; on backpressure keep the batch and back off (never drop).
        ``None`` when the worker is stopped before the write succeeded."""
        attempt = 0
        while True:
            try:
                return self._write(kind, payload)
            except BackpressureError as exc:
                attempt += 1
                self.metrics.audit_retries.labels(store=type(self.store).__name__).inc()
                delay = min(self.cfg.elasticsearch.max_backoff_s, 0.2 * 2 ** min(attempt, 8))
                delay *= random.uniform(0.5, 1.0)
                log.warning("audit store backpressure (%s); retry %d in %.1fs", exc, attempt, delay)
                if self.stop_event.wait(delay):
                    return None

    def _finish(self) -> bool:
        """Wait for the write in flight and commit its entries. False if it was abandoned."""
        if self._inflight is None:
            return True
        fut, consumer, kind, entries = self._inflight
        self._inflight = None
        n = fut.result()  # errors other than backpressure stop the worker, uncommitted
        if n is None:
            consumer.seek_to_committed()
            return False
        consumer.commit(entries)
        if kind == "records":
            self.metrics.audited.labels(store=type(self.store).__name__).inc(n)
            self.documents += n
        return True

    def step(self) -> int:
        """Poll each topic; decode a batch here while the previous batch is being written in the
        background, then commit the previous batch (its write is durable) and hand this one over.
        At most one batch is in flight, so memory stays bounded and commits stay in order."""
        total = 0
        # wait for data only when the last round found none: a busy stream is never slowed by
        # waiting on the quiet detections and dead-letter topics
        wait = 0.0 if self._busy else self.cfg.audit.poll_timeout_s / len(self.consumers)
        for consumer, kind in self.consumers:
            entries = consumer.poll(self.cfg.audit.batch_size, timeout=wait)
            if not entries:
                continue
            payload = self._decode(kind, entries)
            if not self._finish():
                return total
            self._inflight = (self._pool.submit(self._write_retrying, kind, payload), consumer, kind, entries)
            total += len(entries)
        if total == 0:
            self._finish()
        self._busy = total > 0
        now = time.monotonic()
        if now - self._last_lag > 5.0:
            self._last_lag = now
            for consumer, _ in self.consumers:
                self.metrics.lag.labels(group=f"{consumer.group}:{consumer.topic}").set(consumer.lag())
        return total

    def close(self) -> None:
        try:
            self._finish()  # a write stopped mid-backoff returns at once and stays uncommitted
        finally:
            self._pool.shutdown(wait=True)
            for c, _ in self.consumers:
                c.close()


class DetectWorker(_Worker):
    """Runs the detectors over the record stream; detections go to the log, metrics and alerts."""

    name = "detect"

    def __init__(self, cfg: Config, lg: Log, metrics: Metrics, *, alerts: Any = None,
                 on_detection: Callable[[Detection], None] | None = None):
        super().__init__()
        from detectors import build_monitor
        from inferwatch.references import ReferenceStore

        self.cfg, self.log, self.metrics, self.alerts = cfg, lg, metrics, alerts
        self.on_detection = on_detection
        self.references = ReferenceStore(Path(cfg.references_path))
        det_cfg = {k: v for k, v in cfg.detect.model_dump().items() if k in ("window", "detectors", "models")}
        self.monitor = build_monitor(det_cfg, self.references)
        self.consumer = lg.consumer(cfg.log.records_topic, cfg.detect.group)
        state = self.consumer.committed_state()
        if state:
            self.monitor.restore(state)
            log.info("detect: restored open windows from the last checkpoint")
        self.detections: list[Detection] = []

    def step(self) -> int:
        entries = self.consumer.poll(self.cfg.detect.batch_size, timeout=0.2)
        if not entries:
            return 0
        recs, bad = _decode_entries(entries, InferenceRecord.from_json)
        dets = self.monitor.process(recs)
        if bad:
            self.log.append(self.cfg.log.deadletter_topic, [(b"detect", dl.to_json()) for dl in bad])
        if dets:
            self.log.append(self.cfg.log.detections_topic, [(d.model.encode(), d.to_json()) for d in dets])
            for d in dets:
                self.metrics.observe_detection(d)
                level = logging.WARNING if d.fired else logging.INFO
                log.log(level, "%s %s model=%s version=%s window=%d p=%s%s", d.detector,
                        "FIRED" if d.fired else "ok", d.model, d.version, d.window_size,
                        None if d.p_value is None else f"{d.p_value:.3g}",
                        f" features={d.drifted_features}" if d.drifted_features else "")
                if self.on_detection:
                    self.on_detection(d)
            self.detections.extend(dets)
            del self.detections[:-1000]
            if self.alerts is not None:
                self.alerts.send(dets)
        self.consumer.commit(entries, state=self.monitor.snapshot())
        return len(entries)

    def close(self) -> None:
        self.consumer.close()


class Pipeline:
    """Runs the roles of one configuration, in this process (threads) or one role per process."""

    def __init__(self, cfg: Config, roles: Sequence[str] = ROLES, *, metrics: Metrics | None = None,
                 on_detection: Callable[[Detection], None] | None = None):
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise InferwatchError(f"unknown role(s) {sorted(unknown)}; choose from {', '.join(ROLES)}")
        self.cfg = cfg
        self.roles = list(roles)
        self.metrics = metrics or Metrics()
        self.log = build_log(cfg)
        self.workers: list[_Worker] = []
        self.server: Any = None
        self._server_thread: threading.Thread | None = None
        self.store: AuditStore | None = None
        if "audit" in self.roles:
            self.store = build_audit_store(cfg, self.log)
            self.workers.append(AuditWorker(cfg, self.log, self.store, self.metrics))
        if "detect" in self.roles:
            from sinks.alertmanager import AlertSink

            am = cfg.alertmanager
            alerts = AlertSink(am.url, am.webhook_url, am.resolve_timeout_s)
            self.workers.append(DetectWorker(cfg, self.log, self.metrics,
                                             alerts=alerts if alerts.enabled else None, on_detection=on_detection))

    def _make_server(self) -> Any:
        import uvicorn

        from collectors.http import create_app
        from collectors.ingest import Ingestor

        app = create_app(Ingestor(self.log, self.cfg, self.metrics))
        config = uvicorn.Config(app, host=self.cfg.collector.host, port=self.cfg.collector.port,
                                log_level="warning", access_log=False, lifespan="off")
        return uvicorn.Server(config)

    def start(self) -> None:
        """Start every role in background threads (the collector's HTTP server included)."""
        for w in self.workers:
            w.start()
        if "collector" in self.roles:
            self.server = self._make_server()
            self._server_thread = threading.Thread(target=self.server.run, name="collector", daemon=True)
            self._server_thread.start()
            deadline = time.monotonic() + 15
            while not self.server.started and time.monotonic() < deadline:
                if not self._server_thread.is_alive():
                    raise InferwatchError(
                        f"the collector could not start on {self.cfg.collector.host}:{self.cfg.collector.port}")
                time.sleep(0.02)
            log.info("collector listening on http://%s:%d", self.cfg.collector.host, self.bound_port)
        elif self.workers:
            self._start_metrics_server()

    def _start_metrics_server(self) -> None:
        from prometheus_client import start_http_server

        m = self.cfg.metrics
        start_http_server(m.port, addr=m.host, registry=self.metrics.registry)
        log.info("metrics on http://%s:%d/metrics", m.host, m.port)

    @property
    def bound_port(self) -> int:
        if self.server is None or not self.server.servers:
            return self.cfg.collector.port
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def alive(self) -> bool:
        threads = [w.thread for w in self.workers] + [self._server_thread]
        return all(t is None or t.is_alive() for t in threads)

    def wait_idle(self, timeout: float = 60.0, poll: float = 0.1) -> bool:
        """Wait until every consumer role has caught up with the log (for demos and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # asked of the log, not of the workers' consumers (a Kafka consumer is not thread-safe)
            lags = []
            for w in self.workers:
                if isinstance(w, AuditWorker):
                    lags += [self.log.group_lag(c.topic, c.group) for c, _ in w.consumers]
                    lags.append(1 if w.writing else 0)
                elif isinstance(w, DetectWorker):
                    lags.append(self.log.group_lag(w.consumer.topic, w.consumer.group))
            if all(x == 0 for x in lags):
                return True
            for w in self.workers:
                if w.error is not None:
                    raise InferwatchError(f"{w.name} failed: {w.error}") from w.error
            time.sleep(poll)
        return False

    def run_forever(self) -> None:
        """Start, then block until SIGINT/SIGTERM; stop cleanly (commit what is done)."""
        import signal

        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.start()
        while not stop.wait(0.5):
            if not self.alive():
                for w in self.workers:
                    if w.error is not None:
                        self.stop()
                        raise InferwatchError(f"{w.name} failed: {w.error}") from w.error
        log.info("stopping")
        self.stop()

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            if self._server_thread is not None:
                self._server_thread.join(15)
        for w in self.workers:
            w.stop()
        if self.store is not None:
            self.store.close()
        self.log.close()


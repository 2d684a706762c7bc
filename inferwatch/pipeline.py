"""The pipeline runner: the collector, audit and detect roles over one log.

Each consumer role has its own consumer group, so the audit trail and the detectors read the
same records independently. A role commits its position only after its work is durable:

* audit: documents written to the audit store, then commit;
* detect: detections appended to the log and exported as metrics, then commit together with
  the open windows' state; alerts read the detections topic as their own consumer and commit
  after posting them.

A crash between the two re-does the batch on restart; document and detection ids are
deterministic, so the repeat changes nothing. The parts (log, audit store, collectors, sinks,
monitor) come from :mod:`inferwatch.wiring`; the workers are in :mod:`inferwatch.workers`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from inferwatch import wiring
from inferwatch.audit import AuditStore
from inferwatch.config import Config
from inferwatch.errors import InferwatchError
from inferwatch.ingest import Collector, Ingestor
from inferwatch.log import Log
from inferwatch.metrics import Metrics
from inferwatch.record import Detection
from inferwatch.workers import AuditWorker, DetectWorker, SinkWorker, Worker

__all__ = ["ROLES", "Pipeline"]

log = logging.getLogger("inferwatch.pipeline")

ROLES = ("collector", "audit", "detect")


class _DeferredLog:
    """A log that could not be opened yet: each use tries to open it again and raises the
    :class:`~inferwatch.errors.LogError` until it succeeds (then it is that log)."""

    def __init__(self, build: Callable[[], Log]):
        self._build = build
        self._log: Log | None = None
        self._lock = threading.Lock()

    def _get(self) -> Log:
        with self._lock:
            if self._log is None:
                self._log = self._build()
            return self._log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


class Pipeline:
    """Runs the roles of one configuration, in this process (threads) or one role per process.

    The parts are built by :mod:`inferwatch.wiring` from ``cfg``; pass ``collectors`` to run other
    ways in than the configured ones.
    """

    def __init__(self, cfg: Config, roles: Sequence[str] = ROLES, *, metrics: Metrics | None = None,
                 on_detection: Callable[[Detection], None] | None = None,
                 collectors: Sequence[Collector] | None = None):
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise InferwatchError(f"unknown role(s) {sorted(unknown)}; choose from {', '.join(ROLES)}")
        self.cfg = cfg
        self.roles = list(roles)
        self.metrics = metrics or Metrics(series_cap=cfg.metrics.series_cap)
        # nothing here needs the log or the audit store to be up: a role started during an
        # outage waits for them (not ready) instead of exiting
        try:
            self.log = wiring.LOGS.build(cfg.log.backend, cfg, wiring.Parts())
        except InferwatchError as exc:  # e.g. an embedded log on a full disk: opened when it can be
            log.warning("the log cannot be opened yet (%s); the roles will keep trying", exc)
            self.log = cast(Log, _DeferredLog(lambda: wiring.LOGS.build(cfg.log.backend, cfg, wiring.Parts())))
        self.topics_ready = threading.Event()
        self._topics_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._create_topics(first=True)
        self.workers: list[Worker] = []
        self.collectors: list[Collector] = []
        self.metrics_server: Any = None
        self._metrics_thread: threading.Thread | None = None
        self._store: AuditStore | None = None
        if "audit" in self.roles:
            try:
                self._store = wiring.build_audit_store(cfg, self.log)
            except InferwatchError as exc:
                log.warning("audit store not available yet (%s); the audit role will keep trying", exc)
            self.workers.append(AuditWorker(cfg, self.log, self._store, self.metrics,
                                            store_factory=lambda: wiring.build_audit_store(cfg, self.log)))
        if "detect" in self.roles:
            sinks = wiring.build_sinks(cfg, self.metrics, self.log)
            self.workers.append(DetectWorker(cfg, self.log, lambda: wiring.build_monitor(cfg),
                                             sinks=[s for s in sinks if s.inline], on_detection=on_detection,
                                             metrics=self.metrics))
            self.workers += [SinkWorker(cfg, self.log, s, metrics=self.metrics) for s in sinks if not s.inline]
        if "collector" in self.roles:
            self.collectors = (list(collectors) if collectors is not None
                               else wiring.build_collectors(cfg, ready=self.workers_ready))

    @property
    def store(self) -> AuditStore | None:
        """The audit store (``None`` until it could be reached)."""
        for w in self.workers:
            if isinstance(w, AuditWorker) and w.store is not None:
                return w.store
        return self._store

    def _create_topics(self, first: bool = False) -> bool:
        t = self.cfg.log
        try:
            self.log.create_topics([t.records_topic, t.detections_topic, t.deadletter_topic])
        except InferwatchError as exc:
            if first:
                log.warning("cannot create the log's topics yet (%s); retrying in the background", exc)
            return False
        self.topics_ready.set()
        return True

    def _keep_creating_topics(self) -> None:
        delay = 0.5
        while not self._stopping.is_set() and not self._create_topics():
            self._stopping.wait(delay)
            delay = min(delay * 2, 5.0)
        if self.topics_ready.is_set():
            log.info("the log's topics exist")

    def workers_ready(self) -> bool:
        """All consumer roles of this process connected and working, and the log's topics there."""
        return self.topics_ready.is_set() and all(w.ready for w in self.workers)

    def start(self) -> None:
        """Start every role in background threads (the collectors included)."""
        if not self.topics_ready.is_set():
            self._topics_thread = threading.Thread(target=self._keep_creating_topics, name="topics", daemon=True)
            self._topics_thread.start()
        for w in self.workers:
            w.start()
        if self.collectors:
            ingestor = Ingestor(self.log, self.cfg, self.metrics, wiring.log_message(self.log, self.cfg))
            for c in self.collectors:
                c.start(ingestor)
        elif self.workers:
            self._start_metrics_server()

    def _start_metrics_server(self) -> None:
        """``/metrics``, ``/healthz`` and ``/readyz`` of the consumer roles (token auth and TLS as
        configured in ``metrics``)."""
        import uvicorn
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        from inferwatch.httpauth import TokenAuth, uvicorn_tls
        from inferwatch.metrics import CONTENT_TYPE

        async def metrics(request: Request) -> Response:
            return Response(self.metrics.exposition(), media_type=CONTENT_TYPE)

        async def healthz(request: Request) -> Response:
            return JSONResponse({"status": "ok"})

        async def readyz(request: Request) -> Response:
            ok = self.workers_ready()
            body: dict[str, Any] = {"ready": ok, "roles": {w.name: w.ready for w in self.workers}}
            errors = {w.name: w.last_error for w in self.workers if not w.ready and w.last_error}
            if errors:
                body["errors"] = errors
            return JSONResponse(body, status_code=200 if ok else 503)

        m = self.cfg.metrics
        app: Any = Starlette(routes=[Route("/metrics", metrics), Route("/healthz", healthz), Route("/readyz", readyz)])
        if m.auth_tokens:
            app = TokenAuth(app, m.auth_tokens)
        config = uvicorn.Config(app, host=m.host, port=m.port, log_level="warning", access_log=False,
                                lifespan="off", **uvicorn_tls(m.tls_certfile, m.tls_keyfile))
        self.metrics_server = uvicorn.Server(config)
        self._metrics_thread = threading.Thread(target=self.metrics_server.run, name="metrics", daemon=True)
        self._metrics_thread.start()
        deadline = time.monotonic() + 15
        while not self.metrics_server.started and self._metrics_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.metrics_server.started:
            raise InferwatchError(f"the metrics endpoint could not start on {m.host}:{m.port}")
        log.info("metrics on %s://%s:%d/metrics", "https" if m.tls_certfile else "http", m.host, self.metrics_port)

    @property
    def metrics_port(self) -> int:
        """The port the consumer roles' metrics endpoint listens on."""
        server = self.metrics_server
        if server is None or not server.servers:
            return self.cfg.metrics.port
        return int(server.servers[0].sockets[0].getsockname()[1])

    @property
    def bound_port(self) -> int:
        """The port the first collector listens on (the configured port before ``start``)."""
        for c in self.collectors:
            port = getattr(c, "port", None)
            if isinstance(port, int):
                return port
        return self.cfg.collector.port

    def alive(self) -> bool:
        return all(w.thread is None or w.thread.is_alive() for w in self.workers) and all(
            getattr(c, "alive", lambda: True)() for c in self.collectors)

    def wait_idle(self, timeout: float = 60.0, poll: float = 0.1) -> bool:
        """Wait until every consumer role has caught up with the log (for demos and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # asked of the log, not of the workers' consumers (a Kafka consumer is not thread-safe)
            if all(self.log.group_lag(topic, group) == 0 for topic, group in self._positions()) and not any(
                    isinstance(w, AuditWorker) and w.writing for w in self.workers):
                return True
            self._raise_failed()
            time.sleep(poll)
        return False

    def _positions(self) -> list[tuple[str, str]]:
        t, out = self.cfg.log, []
        for w in self.workers:
            if isinstance(w, AuditWorker):
                g = self.cfg.audit.group
                out += [(t.records_topic, g), (t.detections_topic, g + "-detections"),
                        (t.deadletter_topic, g + "-deadletters")]
            elif isinstance(w, DetectWorker):
                out.append((t.records_topic, self.cfg.detect.group))
            elif isinstance(w, SinkWorker):
                out.append((t.detections_topic, f"{self.cfg.detect.group}-{w.sink.name}"))
        return out

    def _raise_failed(self) -> None:
        for w in self.workers:
            if w.error is not None:
                raise InferwatchError(f"{w.name} failed: {w.error}") from w.error

    def run_forever(self) -> None:
        """Start, then block until SIGINT/SIGTERM; stop cleanly (commit what is done)."""
        import signal

        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.start()
        while not stop.wait(0.5):
            if not self.alive():
                try:
                    self._raise_failed()
                except InferwatchError:
                    self.stop()
                    raise
        log.info("stopping")
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        for c in self.collectors:
            c.stop()
        for w in self.workers:
            w.stop()
        if self.metrics_server is not None:
            self.metrics_server.should_exit = True
            if self._metrics_thread is not None:
                self._metrics_thread.join(15)
        store = self.store
        if store is not None:
            store.close()
        self.log.close()

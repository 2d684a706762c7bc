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

from inferwatch import wiring
from inferwatch.audit import AuditStore
from inferwatch.config import Config
from inferwatch.errors import InferwatchError
from inferwatch.ingest import Collector, Ingestor
from inferwatch.metrics import Metrics
from inferwatch.record import Detection
from inferwatch.workers import AuditWorker, DetectWorker, SinkWorker, Worker

__all__ = ["ROLES", "Pipeline"]

log = logging.getLogger("inferwatch.pipeline")

ROLES = ("collector", "audit", "detect")


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
        self.log = wiring.build_log(cfg)
        self.workers: list[Worker] = []
        self.collectors: list[Collector] = []
        self.store: AuditStore | None = None
        if "audit" in self.roles:
            self.store = wiring.build_audit_store(cfg, self.log)
            self.workers.append(AuditWorker(cfg, self.log, self.store, self.metrics))
        if "detect" in self.roles:
            sinks = wiring.build_sinks(cfg, self.metrics, self.log)
            self.workers.append(DetectWorker(cfg, self.log, wiring.build_monitor(cfg),
                                             sinks=[s for s in sinks if s.inline], on_detection=on_detection))
            self.workers += [SinkWorker(cfg, self.log, s) for s in sinks if not s.inline]
        if "collector" in self.roles:
            self.collectors = list(collectors) if collectors is not None else wiring.build_collectors(cfg)

    def start(self) -> None:
        """Start every role in background threads (the collectors included)."""
        for w in self.workers:
            w.start()
        if self.collectors:
            ingestor = Ingestor(self.log, self.cfg, self.metrics)
            for c in self.collectors:
                c.start(ingestor)
        elif self.workers:
            self._start_metrics_server()

    def _start_metrics_server(self) -> None:
        from prometheus_client import start_http_server

        m = self.cfg.metrics
        start_http_server(m.port, addr=m.host, registry=self.metrics.registry)
        log.info("metrics on http://%s:%d/metrics", m.host, m.port)

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
        out = []
        for w in self.workers:
            if isinstance(w, AuditWorker):
                out += [(c.topic, c.group) for c, _ in w.consumers]
            elif isinstance(w, DetectWorker | SinkWorker):
                out.append((w.consumer.topic, w.consumer.group))
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
        for c in self.collectors:
            c.stop()
        for w in self.workers:
            w.stop()
        if self.store is not None:
            self.store.close()
        self.log.close()

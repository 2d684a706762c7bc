"""The stream workers of the consumer roles, each a polling loop over the log.

* :class:`AuditWorker` — records, detections and dead letters into the audit store;
* :class:`DetectWorker` — records through the detectors; detections to the log and the inline
  sinks (metrics);
* :class:`SinkWorker` — detections from the log to a sink that talks to a service (alerts).

Each commits its log position only after its work is durable: a crash between the two re-does
the batch on restart, and deterministic document and detection ids make the repeat change
nothing. Built by :class:`inferwatch.pipeline.Pipeline` from parts :mod:`inferwatch.wiring` made.
"""

from __future__ import annotations

import gc
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from inferwatch.audit import AuditStore
from inferwatch.config import Config
from inferwatch.errors import BackpressureError
from inferwatch.log import Consumer, Log, LogEntry
from inferwatch.metrics import Metrics
from inferwatch.record import DeadLetter, Detection, InferenceRecord
from inferwatch.sink import DetectionSink

__all__ = ["AuditWorker", "DetectWorker", "Monitor", "SinkWorker", "Worker", "tune_gc"]

log = logging.getLogger("inferwatch.pipeline")


class Monitor(Protocol):
    """What the detect worker runs (``detectors.Monitor``): records in, detections out, and its
    open windows as a state blob checkpointed with the log position."""

    def process(self, records: Sequence[InferenceRecord]) -> list[Detection]: ...

    def snapshot(self) -> bytes: ...

    def restore(self, state: bytes) -> None: ...


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


class Worker:
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

    def until_durable(self, write: Callable[[], int], what: str, max_backoff_s: float,
                      on_retry: Callable[[], None] | None = None) -> int | None:
        """Run ``write`` until it succeeds; on :class:`BackpressureError` keep the batch and back off
        (never drop). ``None`` when the worker is stopped before the write succeeded."""
        attempt = 0
        while True:
            try:
                return write()
            except BackpressureError as exc:
                attempt += 1
                if on_retry is not None:
                    on_retry()
                delay = min(max_backoff_s, 0.2 * 2 ** min(attempt, 8)) * random.uniform(0.5, 1.0)
                log.warning("%s backpressure (%s); retry %d in %.1fs", what, exc, attempt, delay)
                if self.stop_event.wait(delay):
                    return None


def _decode_entries(entries: Sequence[LogEntry], parse: Callable[[bytes], Any]) -> tuple[list[Any], list[DeadLetter]]:
    good, bad = [], []
    for e in entries:
        try:
            good.append(parse(e.value))
        except Exception as exc:  # a corrupt log message becomes a dead letter, never a crash
            bad.append(DeadLetter(raw=e.value, source=f"log:{e.topic}", reason=f"unreadable log message: {exc}",
                                  stage="audit", id=f"{e.topic}-{e.partition}-{e.offset}"))
    return good, bad


class AuditWorker(Worker):
    """Reads records, detections and dead letters from the log into the audit store."""

    name = "audit"

    def __init__(self, cfg: Config, lg: Log, store: AuditStore, metrics: Metrics):
        super().__init__()
        self.cfg, self.log, self.store, self.metrics = cfg, lg, store, metrics
        # the store's series exist at 0 from the start: increase() then sees the first document and retry
        metrics.audited.labels(store=type(store).__name__)
        metrics.audit_retries.labels(store=type(store).__name__)
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
        parse = {"records": InferenceRecord.from_json, "detections": Detection.from_json,
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
        store = type(self.store).__name__
        return self.until_durable(lambda: self._write(kind, payload), f"audit store {store}",
                                  self.cfg.elasticsearch.max_backoff_s,
                                  on_retry=self.metrics.audit_retries.labels(store=store).inc)

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
            self.metrics.observe_searchable(type(self.store).__name__, [e.timestamp for e in entries], time.time())
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


class DetectWorker(Worker):
    """Runs the detectors over the record stream; detections go to the log, then to the sinks
    (metrics, alerts), then the position is committed together with the open windows."""

    name = "detect"

    def __init__(self, cfg: Config, lg: Log, monitor: Monitor, *, sinks: Sequence[DetectionSink] = (),
                 on_detection: Callable[[Detection], None] | None = None):
        super().__init__()
        self.cfg, self.log, self.monitor, self.sinks = cfg, lg, monitor, list(sinks)
        self.on_detection = on_detection
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
                level = logging.WARNING if d.fired else logging.INFO
                log.log(level, "%s %s model=%s version=%s window=%d p=%s%s", d.detector,
                        "FIRED" if d.fired else "ok", d.model, d.version, d.window_size,
                        None if d.p_value is None else f"{d.p_value:.3g}",
                        f" features={d.drifted_features}" if d.drifted_features else "")
                if self.on_detection:
                    self.on_detection(d)
            for sink in self.sinks:
                sink.write(dets)
            self.detections.extend(dets)
            del self.detections[:-1000]
        self.consumer.commit(entries, state=self.monitor.snapshot())
        return len(entries)

    def close(self) -> None:
        self.consumer.close()


class SinkWorker(Worker):
    """Feeds one detection sink that talks to a service (``inline = False``, e.g. alerts) from the
    detections topic, as its own consumer group: poll, write (retrying while the service pushes
    back), then commit — commit after flush, like the audit role."""

    def __init__(self, cfg: Config, lg: Log, sink: DetectionSink, *, max_backoff_s: float = 30.0):
        super().__init__()
        self.name = f"sink-{sink.name}"
        self.cfg, self.log, self.sink, self.max_backoff_s = cfg, lg, sink, max_backoff_s
        self.consumer = lg.consumer(cfg.log.detections_topic, f"{cfg.detect.group}-{sink.name}")

    def step(self) -> int:
        entries = self.consumer.poll(self.cfg.detect.batch_size, timeout=0.2)
        if not entries:
            return 0
        dets, bad = _decode_entries(entries, Detection.from_json)
        if bad:  # unreadable detections are the audit role's to keep; this sink skips them
            log.warning("%s: %d unreadable detections skipped", self.name, len(bad))
        if self.until_durable(lambda: self.sink.write(dets), self.name, self.max_backoff_s) is None:
            self.consumer.seek_to_committed()
            return 0
        self.consumer.commit(entries)
        return len(entries)

    def close(self) -> None:
        try:
            self.sink.close()
        finally:
            self.consumer.close()

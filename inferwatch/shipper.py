"""Getting records from a process that serves traffic onto the log, off the request path.

A logging proxy or an SDK inside a model server must never slow or fail the model's traffic,
and must not lose what it saw. :class:`Shipper` does that in three stages:

1. :meth:`Shipper.submit` puts an envelope on a bounded in-memory queue and returns at once;
   when the queue is full the envelope is dropped, counted (``inferwatch_ship_dropped_total``,
   reason ``queue_full``) and logged as an error: never silently, never blocking.
2. A writer thread encodes envelopes into log items (``encode``: e.g. decode into records, or
   dead letters with the reason) and appends them to a bounded disk :class:`~inferwatch.spool.Spool`
   (reason ``spool_full`` when it is full).
3. A drainer thread sends the spool's oldest items (``send``: the log's append, or a POST to the
   collector) and deletes them only once sent; while the destination is unreachable it retries
   with backoff, and the spool holds what arrives meanwhile. A retried item carries the same
   record id, so the audit store and the detectors count it once.

:meth:`Shipper.flush` waits until everything submitted so far has been sent; :meth:`Shipper.close`
flushes (bounded by a timeout) and stops: what is still in the spool is sent by the next start.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from inferwatch.spool import Item, Spool

__all__ = ["ShipMetrics", "Shipper"]

log = logging.getLogger("inferwatch.shipper")


class ShipMetrics:
    """The shipper's counters, on ``registry`` (a fresh one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.submitted = Counter("inferwatch_ship_submitted", "Exchanges handed to the shipper",
                                 ["source"], registry=self.registry)
        self.dropped = Counter("inferwatch_ship_dropped", "Exchanges dropped, by reason (queue_full, spool_full)",
                               ["source", "reason"], registry=self.registry)
        self.sent = Counter("inferwatch_ship_sent", "Log items sent to the destination", ["source"],
                            registry=self.registry)
        self.send_failures = Counter("inferwatch_ship_send_failures", "Failed sends (retried)", ["source"],
                                     registry=self.registry)
        self.spooled_items = Gauge("inferwatch_ship_spool_items", "Items waiting in the disk spool", ["source"],
                                   registry=self.registry)
        self.spooled_bytes = Gauge("inferwatch_ship_spool_bytes", "Bytes waiting in the disk spool", ["source"],
                                   registry=self.registry)


class Shipper:
    """Envelopes in (bounded, non-blocking), items out through a disk spool (see the module).

    ``encode(batch) -> items`` turns submitted objects into (topic, key, value) items;
    ``send(items)`` delivers items in order or raises.
    """

    def __init__(self, encode: Callable[[list[Any]], list[Item]], send: Callable[[list[Item]], None],
                 spool_path: str | Path, *, source: str, max_queue: int = 10_000,
                 spool_max_bytes: int = 256 * 1024 * 1024, batch: int = 500, metrics: ShipMetrics | None = None,
                 max_backoff_s: float = 5.0) -> None:
        self.encode = encode
        self.send = send
        self.source = source
        self.spool = Spool(spool_path, spool_max_bytes)
        self.batch = batch
        self.metrics = metrics or ShipMetrics()
        self.max_backoff_s = max_backoff_s
        self._queue: queue.Queue[Any] = queue.Queue(max_queue)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0  # taken off the queue, not yet in the spool
        self._threads: list[threading.Thread] = []
        self._last_error_log = 0.0
        self.dropped = 0
        self.last_error: str | None = None
        self._gauges()

    # -- the caller's side ---------------------------------------------------------------------
    def start(self) -> Shipper:
        if not self._threads:
            self._stop.clear()
            for target, name in ((self._write_loop, "writer"), (self._drain_loop, "drainer")):
                t = threading.Thread(target=target, name=f"inferwatch-ship-{name}", daemon=True)
                t.start()
                self._threads.append(t)
        return self

    def submit(self, item: Any) -> bool:
        """Queue ``item``; ``False`` (counted, logged) when the queue is full. Never blocks."""
        self.metrics.submitted.labels(source=self.source).inc()
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self._drop(1, "queue_full")
            return False

    def pending(self) -> int:
        """Items not yet sent: queued, being written, or in the spool."""
        with self._lock:
            return self._queue.qsize() + self._in_flight + len(self.spool)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far is sent; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while self.pending():
            self._wake.set()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 10.0) -> bool:
        """Flush (at most ``timeout`` s), then stop; what is left stays in the spool."""
        flushed = self.flush(timeout) if self._threads else False
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self._threads = []
        if not flushed and self.pending():
            log.error("%s: closing with %d items not sent; they stay in the spool %s", self.source,
                      self.pending(), self.spool.path)
        return flushed

    # -- the threads -----------------------------------------------------------------------------
    def _drop(self, n: int, reason: str) -> None:
        self.dropped += n
        self.metrics.dropped.labels(source=self.source, reason=reason).inc(n)
        now = time.monotonic()
        if now - self._last_error_log > 1.0:  # an error log per second at most, with the running total
            self._last_error_log = now
            log.error("%s: dropped %d exchange(s) (%s); %d dropped so far", self.source, n, reason, self.dropped)

    def _gauges(self) -> None:
        self.metrics.spooled_items.labels(source=self.source).set(len(self.spool))
        self.metrics.spooled_bytes.labels(source=self.source).set(self.spool.bytes)

    def _take(self) -> list[Any]:
        try:
            first = self._queue.get(timeout=0.05)
        except queue.Empty:
            return []
        with self._lock:
            self._in_flight += 1
        items = [first]
        while len(items) < self.batch:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
            with self._lock:
                self._in_flight += 1
        return items

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            taken = self._take()
            if not taken:
                continue
            try:
                items = self.encode(taken)
            except Exception:  # an encoder bug must not stop the shipper: count, log, go on
                log.exception("%s: cannot encode %d exchange(s)", self.source, len(taken))
                items = []
                self._drop(len(taken), "encode_error")
            refused = self.spool.put(items)
            with self._lock:
                self._in_flight -= len(taken)
            if refused:
                self._drop(refused, "spool_full")
            self._gauges()
            self._wake.set()

    def _drain_loop(self) -> None:
        backoff = 0.05
        while not self._stop.is_set() or (len(self.spool) and backoff <= 0.05):
            rows = self.spool.peek(self.batch)
            if not rows:
                self._wake.wait(0.2)
                self._wake.clear()
                continue
            try:
                self.send([(t, k, v) for _, t, k, v in rows])
            except Exception as exc:
                self.metrics.send_failures.labels(source=self.source).inc()
                self.last_error = str(exc)
                now = time.monotonic()
                if now - self._last_error_log > 5.0:
                    self._last_error_log = now
                    log.error("%s: destination unreachable (%s); %d item(s) wait in the spool, retrying",
                              self.source, exc, len(self.spool))
                if self._stop.is_set():
                    return
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            backoff = 0.05
            self.last_error = None
            self.spool.ack(rows[-1][0])
            self.metrics.sent.labels(source=self.source).inc(len(rows))
            self._gauges()


def group_by_topic(items: Sequence[Item]) -> list[tuple[str, list[tuple[bytes, bytes]]]]:
    """Consecutive items of one topic together, order kept (one append per run)."""
    out: list[tuple[str, list[tuple[bytes, bytes]]]] = []
    for topic, key, value in items:
        if out and out[-1][0] == topic:
            out[-1][1].append((key, value))
        else:
            out.append((topic, [(key, value)]))
    return out

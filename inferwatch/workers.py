"""The stream workers of the consumer roles, each a polling loop over the log.

* :class:`AuditWorker` — records, detections and dead letters into the audit store;
* :class:`DetectWorker` — records through the detectors; detections to the log and the inline
  sinks (metrics);
* :class:`SinkWorker` — detections from the log to a sink that talks to a service (alerts).

Each commits its log position only after its work is durable: a crash between the two re-does
the batch on restart, and deterministic document and detection ids make the repeat change
nothing.

A worker never exits on an outage of the log or the audit store, however long: any error in a
step marks it not ready (``inferwatch_ready{role}`` 0, counted in ``inferwatch_role_errors_total``),
drops its connections (what was not committed is read again), backs off with jitter up to
``MAX_BACKOFF_S`` and connects again, until it works. The detect worker counts each record once:
copies of a record (same model, version, id and part) within its horizon are skipped, and the
horizon is checkpointed with the windows. Built by :class:`inferwatch.pipeline.Pipeline` from parts :mod:`inferwatch.wiring` made.
"""

from __future__ import annotations

import copy
import gc
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, cast

from inferwatch.audit import AuditStore
from inferwatch.config import Config
from inferwatch.dedup import SeenKeys
from inferwatch.errors import BackpressureError, InferwatchError
from inferwatch.log import Consumer, Log, LogEntry
from inferwatch.metrics import Metrics
from inferwatch.record import DeadLetter, Detection, InferenceRecord
from inferwatch.sink import DetectionSink

__all__ = ["AuditWorker", "DetectWorker", "Monitor", "SinkWorker", "Worker", "tune_gc"]

log = logging.getLogger("inferwatch.pipeline")

#: the longest pause between two attempts to reconnect after an error
MAX_BACKOFF_S = 5.0


class Monitor(Protocol):
    """What the detect worker runs (``detectors.Monitor``): records in, detections out, and its
    open windows as a state blob checkpointed with the log position."""

    def process(self, records: Sequence[InferenceRecord]) -> list[Detection]: ...

    def snapshot(self) -> bytes: ...

    def restore(self, state: bytes) -> None: ...


_GC_TUNED = False
#: the gen-0 threshold of stream workers (see :func:`tune_gc`)
GC_GEN0_THRESHOLD = 1_000_000


def tune_gc() -> None:
    """Tune the cyclic garbage collector for a long-running stream worker (once per process).

    Batches of thousands of decoded records are many short-lived containers without cycles;
    with the default gen-0 threshold of 700 the collector ran dozens of times per batch and,
    measured, took more time than decoding itself. Everything loaded at start-up is frozen out
    of collections; reference counting still frees each batch as soon as it is done.

    The gen-0 count is the containers allocated and not yet freed, so a threshold above what
    the batches in flight hold alive (two batches of 5,000 records of 50 one-row columns are
    ~600,000 lists and dicts) lets a batch be freed before any collection looks at it: 1,000,000
    measured as fast as no collector at all in the audit path (50,000: 10-15% more CPU, every
    live batch scanned several times). Cyclic garbage, rare here, is still collected, after at
    most a million net allocations.
    """
    global _GC_TUNED
    if _GC_TUNED:
        return
    _GC_TUNED = True
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


class Worker:
    """A polling loop with a stop event; ``step()`` does one batch and returns its size.

    ``connect()`` makes what the worker needs (consumers, stores); it runs before the first
    step and again after any error, when ``disconnect()`` has dropped the old connections."""

    name = "worker"

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None  # an error that ended the loop (BaseException only)
        self.metrics = metrics or Metrics()
        self.connected = False
        self.ready = False
        self.errors = 0
        self.last_error: str | None = None

    def connect(self) -> None:
        """Make the connections the steps use (idempotent)."""

    def disconnect(self) -> None:
        """Drop the connections after an error; uncommitted work will be read again."""

    def ensure_connected(self) -> None:
        if not self.connected:
            self.connect()
            self.connected = True

    def step(self) -> int:
        raise NotImplementedError

    def _set_ready(self, ok: bool) -> None:
        if ok != self.ready:
            self.ready = ok
            self.metrics.ready.labels(role=self.name).set(1.0 if ok else 0.0)

    def run(self) -> None:
        tune_gc()
        log.info("%s started", self.name)
        attempt = 0
        last_report = 0.0
        self.metrics.ready.labels(role=self.name).set(0.0)
        try:
            while not self.stop_event.is_set():
                try:
                    self.ensure_connected()
                    n = self.step()
                except Exception as exc:  # an outage: back off, reconnect, never exit
                    attempt += 1
                    self.errors += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self._set_ready(False)
                    self.metrics.role_errors.labels(role=self.name).inc()
                    now = time.monotonic()
                    if attempt == 1 or now - last_report > 30:
                        last_report = now
                        log.warning("%s: %s; reconnecting (attempt %d)", self.name, self.last_error, attempt,
                                    exc_info=not isinstance(exc, InferwatchError))
                    self._drop()
                    delay = min(MAX_BACKOFF_S, 0.2 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1.0)
                    self.stop_event.wait(delay)
                    continue
                if attempt:
                    log.info("%s: working again after %d failed attempts", self.name, attempt)
                    attempt = 0
                self._set_ready(self.healthy())
                if n == 0:
                    self.stop_event.wait(0.05)
        except BaseException as exc:
            self.error = exc
            log.exception("%s stopped on error", self.name)
            raise
        finally:
            self.close()
            self._set_ready(False)
            log.info("%s stopped", self.name)

    def healthy(self) -> bool:
        """Ready after a successful step (subclasses add their own conditions)."""
        return True

    def _drop(self) -> None:
        try:
            self.disconnect()
        except Exception:  # dropping a broken connection may fail too; it is gone either way
            log.debug("%s: disconnect failed", self.name, exc_info=True)
        self.connected = False

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


def _decode_entries(entries: Sequence[LogEntry], parse: Callable[[bytes], Any],
                    prepared: Callable[[bytes, bytes], Any] | None = None) -> tuple[list[Any], list[DeadLetter]]:
    """Each entry's value through ``parse``; an entry that carries its audit documents through
    ``prepared`` first (value, documents), when given: what it gives is taken instead (``None``:
    the value is parsed)."""
    good, bad = [], []
    for e in entries:
        try:
            audit = getattr(e, "audit", None) if prepared is not None else None  # a plug-in log's entries may lack it
            if audit is not None:
                item = prepared(e.value, audit)  # type: ignore[misc]
                if item is not None:
                    good.append(item)
                    continue
            good.append(parse(e.value))
        except Exception as exc:  # a corrupt log message becomes a dead letter, never a crash
            bad.append(DeadLetter(raw=e.value, source=f"log:{e.topic}", reason=f"unreadable log message: {exc}",
                                  stage="audit", id=f"{e.topic}-{e.partition}-{e.offset}"))
    return good, bad


class AuditWorker(Worker):
    """Reads records, detections and dead letters from the log into the audit store."""

    name = "audit"

    def __init__(self, cfg: Config, lg: Log, store: AuditStore | None, metrics: Metrics,
                 store_factory: Callable[[], AuditStore] | None = None):
        super().__init__(metrics)
        self.cfg, self.log, self.store = cfg, lg, store
        self.store_factory = store_factory
        self.consumers: list[tuple[Consumer, str]] = []
        self.retrying = False
        if store is not None:
            self._series_at_zero(store)
        self._last_lag = time.monotonic()  # the first reading 5 s in: the fetches have brought the marks
        self._busy = False
        self.documents = 0
        self._inflight: tuple[Future[int | None], Consumer, str, Sequence[LogEntry]] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-write")

    @property
    def writing(self) -> bool:
        """Whether a batch is still being written (its offsets are not committed yet)."""
        return self._inflight is not None

    def _series_at_zero(self, store: AuditStore) -> None:
        """The store's series exist at 0 from the start: increase() then sees the first document and retry."""
        self.metrics.audited.labels(store=type(store).__name__)
        self.metrics.audit_retries.labels(store=type(store).__name__)

    def connect(self) -> None:
        if self.store is None:
            if self.store_factory is None:
                raise InferwatchError("the audit worker has no store")
            self.store = self.store_factory()
            self._series_at_zero(self.store)
        if not self.consumers:
            t, group = self.cfg.log, self.cfg.audit.group
            made: list[tuple[Consumer, str]] = []
            try:
                for topic, suffix, kind in ((t.records_topic, "", "records"),
                                            (t.detections_topic, "-detections", "detections"),
                                            (t.deadletter_topic, "-deadletters", "deadletters")):
                    made.append((self.log.consumer(topic, group + suffix), kind))
            except BaseException:
                for c, _ in made:
                    c.close()
                raise
            self.consumers = made

    def disconnect(self) -> None:
        if self._inflight is not None:  # let the write end; its entries stay uncommitted and are read again
            fut = self._inflight[0]
            self._inflight = None
            try:
                fut.result()
            except Exception:
                pass
        consumers, self.consumers = self.consumers, []
        for c, _ in consumers:
            c.close()

    def healthy(self) -> bool:
        return not self.retrying

    def _decode(self, kind: str, entries: Sequence[LogEntry]) -> tuple[list[Any], list[DeadLetter]]:
        if kind == "records":
            # a record that came with its audit documents (built once, by the collector) is not
            # decoded here when the store takes them as they are
            prepared = getattr(self.store, "prepared", None) if self.cfg.audit.prepared else None
            return _decode_entries(entries, InferenceRecord.from_json, prepared if callable(prepared) else None)
        parse = {"detections": Detection.from_json, "deadletters": DeadLetter.from_json}[kind]
        return _decode_entries(entries, parse)

    def _write(self, kind: str, payload: tuple[list[Any], list[DeadLetter]]) -> int:
        items, bad = payload
        store = self.store
        if store is None:
            raise InferwatchError("the audit store is not connected")
        n = 0
        if items and kind == "records":
            n = store.write_records(items)
        elif items and kind == "detections":
            n = store.write_detections(items)
        elif items:
            n = store.write_deadletters(items)
        if bad:
            store.write_deadletters(bad)
            for dl in bad:
                self.metrics.deadlettered.labels(source=dl.source, stage=dl.stage).inc()
        return n

    def _write_retrying(self, kind: str, payload: tuple[list[Any], list[DeadLetter]]) -> int | None:
        store = type(self.store).__name__
        per_model: dict[tuple[str, str], int] = {}
        if kind == "records":
            for r in payload[0]:
                per_model[(r.model, r.version or "")] = per_model.get((r.model, r.version or ""), 0) + 1

        def retrying() -> None:  # not ready while the store pushes back
            self.retrying = True
            self._set_ready(False)
            self.metrics.audit_retries.labels(store=store).inc()
            for (model, version), n in per_model.items():
                self.metrics.audit_retried_records.labels(model=model, version=version).inc(n)

        n = self.until_durable(lambda: self._write(kind, payload), f"audit store {store}",
                               self.cfg.elasticsearch.max_backoff_s, on_retry=retrying)
        self.retrying = False
        return n

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
        self.ensure_connected()
        total = 0
        # wait for data only when the last round found none: a busy stream is never slowed by
        # waiting on the quiet detections and dead-letter topics
        wait = 0.0 if self._busy else self.cfg.audit.poll_timeout_s / len(self.consumers)
        for consumer, kind in self.consumers:
            n = self._take(consumer, kind, wait)
            if n < 0:
                return total
            total += n
            if n:  # data came: the quiet topics after it are asked without waiting (a wait there
                wait = 0.0  # stalled the stream each time a background fetch left a poll empty)
        if total == 0:
            self._finish()
        self._busy = total > 0
        now = time.monotonic()
        if now - self._last_lag > 5.0:
            self._last_lag = now
            for consumer, _ in self.consumers:
                try:
                    lag = consumer.lag()
                except InferwatchError as exc:  # a gauge is not worth a reconnect
                    log.debug("lag of %s unknown: %s", consumer.group, exc)
                    continue
                self.metrics.lag.labels(group=f"{consumer.group}:{consumer.topic}").set(lag)
        return total

    def _take(self, consumer: Consumer, kind: str, wait: float) -> int:
        """Poll one topic, decode what came and hand it over to the writer: the entries taken, or
        -1 when the write before was abandoned (the worker is stopping).

        No batch is ever a local of a frame that is on the stack while a Kafka client is called
        (the other topics' polls, the lag; here the poll's result goes straight on as an argument):
        kafka-python 3 raises and catches a timeout inside a poll that finds nothing, and that
        exception's traceback, in a reference cycle, keeps every frame of the stack alive, with its
        locals, until the cyclic collector runs. Batches held that way stacked up (15,000 decoded
        records left after a run of 20,000) and the collector then scanned them all (one 0.5 s
        collection, inside a run's decoding)."""
        return self._hand_over(consumer, kind, consumer.poll(self.cfg.audit.batch_size, timeout=wait))

    def _hand_over(self, consumer: Consumer, kind: str, entries: Sequence[LogEntry]) -> int:
        if not entries:
            return 0
        payload = self._decode(kind, entries)
        if not self._finish():
            return -1
        self._inflight = (self._pool.submit(self._write_retrying, kind, payload), consumer, kind, entries)
        return len(entries)

    def close(self) -> None:
        try:
            if self.consumers:
                self._finish()  # a write stopped mid-backoff returns at once and stays uncommitted
        except Exception as exc:  # the log is down at shutdown: the batch stays uncommitted
            log.warning("audit: last batch not committed at shutdown (%s); it will be read again", exc)
        finally:
            self._pool.shutdown(wait=True)
            for c, _ in self.consumers:
                c.close()
            self.consumers = []


@dataclass
class _PartitionState:
    """What the detect worker keeps for one log partition: its own windows and recent keys,
    restored from the state committed with that partition's position."""

    monitor: Monitor
    seen: SeenKeys
    last: LogEntry | None = None  # the last processed entry, not checkpointed yet


class DetectWorker(Worker):
    """Runs the detectors over the record stream; detections go to the log, then to the sinks
    (metrics, alerts), then the position is committed together with the open windows.

    State is per log partition: every partition this member holds has its own monitor (windows
    per model, version and partition) and dedup horizon, restored from the state committed with
    that partition's position when the partition is (re)assigned, and checkpointed with its
    offsets. Several detect processes in one consumer group thus each carry the windows of their
    own partitions; one that leaves or dies hands them on through the checkpoints, and the
    member that gets a partition next resumes its windows where they were checkpointed. Records
    are keyed by model, so a model's records (and a record's copies) are on one partition and
    its windows are the model's.

    ``monitor`` is a factory of fresh monitors (or one monitor, copied for each partition)."""

    name = "detect"

    def __init__(self, cfg: Config, lg: Log, monitor: Monitor | Callable[[], Monitor], *,
                 sinks: Sequence[DetectionSink] = (), on_detection: Callable[[Detection], None] | None = None,
                 metrics: Metrics | None = None):
        super().__init__(metrics)
        self.cfg, self.log, self.sinks = cfg, lg, list(sinks)
        if hasattr(monitor, "process"):
            template = copy.deepcopy(cast(Monitor, monitor))
            self._new_monitor: Callable[[], Monitor] = lambda: copy.deepcopy(template)
        else:
            self._new_monitor = cast(Callable[[], Monitor], monitor)
        self.on_detection = on_detection
        self.consumer: Consumer | None = None
        self.detections: list[Detection] = []
        self.partitions: dict[int, _PartitionState] = {}
        self._generation: int | None = None
        self._last_checkpoint = time.monotonic()

    @property
    def seen_duplicates(self) -> int:
        return sum(ps.seen.duplicates for ps in self.partitions.values())

    def connect(self) -> None:
        self.partitions.clear()
        self._generation = None
        self.consumer = self.log.consumer(self.cfg.log.records_topic, self.cfg.detect.group)

    def disconnect(self) -> None:
        self.partitions.clear()  # processed but not checkpointed: read (and recognised) again
        self._generation = None
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            consumer.close()

    def _partition(self, p: int) -> _PartitionState:
        """The state of partition ``p``: restored from the state committed with its position."""
        ps = self.partitions.get(p)
        if ps is not None:
            return ps
        assert self.consumer is not None
        d = self.cfg.detect
        ps = _PartitionState(self._new_monitor(), SeenKeys(d.dedup_keys, d.dedup_age_s))
        monitor_state, seen_state = _split_state(self.consumer.committed_state(p))
        if monitor_state is not None:
            ps.monitor.restore(monitor_state)
        if seen_state is not None:
            ps.seen.restore(seen_state)
        if monitor_state is not None:
            log.info("detect: partition %d: restored open windows (and %d recent record keys) from its checkpoint",
                     p, len(ps.seen))
        self.partitions[p] = ps
        return ps

    def _sync(self) -> None:
        """After the log (re)assigned or repositioned the partitions, every state is restored
        again from the checkpoints the new positions belong to."""
        assert self.consumer is not None
        if self.consumer.generation != self._generation:
            if self._generation is not None:
                log.info("detect: partitions now %s (generation %d)", sorted(self.consumer.assigned()),
                         self.consumer.generation)
            self._generation = self.consumer.generation
            self.partitions.clear()

    def checkpoint(self) -> None:
        """Commit each partition's position with its open windows and recent record keys.

        Done at most every ``detect.checkpoint_interval_s`` (states can be large) and after a
        batch that closed a window: a crash re-reads what came after, whose copies are
        recognised and whose detections have the same ids as before."""
        if self.consumer is not None:
            dirty = {p: ps for p, ps in self.partitions.items() if ps.last is not None}
            if dirty:
                self.consumer.commit([ps.last for ps in dirty.values() if ps.last is not None],
                                     states={p: _join_state(ps.monitor.snapshot(), ps.seen.snapshot())
                                             for p, ps in dirty.items()})
                for ps in dirty.values():
                    ps.last = None
                self._sync()  # a commit that failed after a rebalance repositioned the partitions
        self._last_checkpoint = time.monotonic()

    def _checkpoint_due(self) -> bool:
        return time.monotonic() - self._last_checkpoint >= self.cfg.detect.checkpoint_interval_s

    def step(self) -> int:
        self.ensure_connected()
        assert self.consumer is not None
        entries = self.consumer.poll(self.cfg.detect.batch_size, timeout=0.2)
        self._sync()
        if not entries:
            if self._checkpoint_due():
                self.checkpoint()
            return 0
        by_partition: dict[int, list[LogEntry]] = {}
        for e in entries:
            by_partition.setdefault(e.partition, []).append(e)
        dets: list[Detection] = []
        bad: list[DeadLetter] = []
        copies = 0
        parse = InferenceRecord.from_json
        for p, part_entries in by_partition.items():
            ps = self._partition(p)
            first = ps.seen.first
            recs: list[InferenceRecord] = []
            for e in part_entries:
                try:
                    r = parse(e.value)
                except Exception as exc:  # a corrupt log message becomes a dead letter, never a crash
                    bad.append(DeadLetter(raw=e.value, source=f"log:{e.topic}",
                                          reason=f"unreadable log message: {exc}",
                                          stage="audit", id=f"{e.topic}-{e.partition}-{e.offset}"))
                    continue
                # a copy of a record already counted (a client's resend) is skipped
                if first(r.identity(), e.timestamp):
                    recs.append(r)
                else:
                    copies += 1
            found = ps.monitor.process(recs)
            for d in found:
                d.extra.setdefault("partition", p)
            dets += found
            ps.last = part_entries[-1]
        if copies:
            self.metrics.duplicates.labels(stage="detect").inc(copies)
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
        if dets or self._checkpoint_due():
            self.checkpoint()
        return len(entries)

    def close(self) -> None:
        try:
            if self.connected and self.consumer is not None:
                self.checkpoint()
        except Exception as exc:  # the log is down at shutdown: what came after the last checkpoint is re-read
            log.warning("detect: no checkpoint at shutdown (%s); the last entries will be read again", exc)
        finally:
            self.disconnect()


class SinkWorker(Worker):
    """Feeds one detection sink that talks to a service (``inline = False``, e.g. alerts) from the
    detections topic, as its own consumer group: poll, write (retrying while the service pushes
    back), then commit — commit after flush, like the audit role."""

    def __init__(self, cfg: Config, lg: Log, sink: DetectionSink, *, max_backoff_s: float = 30.0,
                 metrics: Metrics | None = None):
        super().__init__(metrics)
        self.name = f"sink-{sink.name}"
        self.cfg, self.log, self.sink, self.max_backoff_s = cfg, lg, sink, max_backoff_s
        self.consumer: Consumer | None = None

    def connect(self) -> None:
        self.consumer = self.log.consumer(self.cfg.log.detections_topic, f"{self.cfg.detect.group}-{self.sink.name}")

    def disconnect(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            consumer.close()

    def step(self) -> int:
        self.ensure_connected()
        assert self.consumer is not None
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
            self.disconnect()


_STATE_MAGIC = b"IWDS1"


def _join_state(monitor: bytes, seen: bytes) -> bytes:
    """The detect checkpoint: the monitor's windows and the recent record keys."""
    return _STATE_MAGIC + len(monitor).to_bytes(8, "little") + monitor + seen


def _split_state(state: bytes | None) -> tuple[bytes | None, bytes | None]:
    """(monitor state, seen keys) of a checkpoint; a checkpoint from before dedup is the monitor's alone."""
    if not state:
        return None, None
    if not state.startswith(_STATE_MAGIC):
        return state, None
    n = int.from_bytes(state[len(_STATE_MAGIC):len(_STATE_MAGIC) + 8], "little")
    start = len(_STATE_MAGIC) + 8
    return state[start:start + n], state[start + n:] or None

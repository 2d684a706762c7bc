"""The audit role's batches are freed by reference counting, even when a Kafka client's poll
leaves a reference cycle that keeps the caller's stack alive.

kafka-python 3 raises and catches a timeout inside every poll that finds nothing; the exception,
kept in a dict of the raising frame, is a cycle (frame -> dict -> exception -> traceback ->
frame) that holds every frame of the stack, with its locals, until the cyclic collector runs.
The workers raise the collector's threshold far above the default (``tune_gc``), so a batch
held by such a frame stays in memory and is scanned when the collector finally runs.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from inferwatch.config import load_config
from inferwatch.log import Consumer, Log, LogEntry
from inferwatch.metrics import Metrics
from inferwatch.record import InferenceRecord
from inferwatch.sqlite_log import SQLiteLog
from inferwatch.workers import AuditWorker
from sinks.sqlite_audit import SQLiteAuditStore


class CycleOnEmptyPoll:
    """A consumer whose poll, when it finds nothing, leaves what kafka-python 3 leaves: a caught
    exception in a cycle with the poll's frame (and so with every caller's frame)."""

    def __init__(self, inner: Consumer):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[LogEntry]:
        out = self.inner.poll(max_records, timeout)
        if not out:
            state: dict[str, BaseException] = {}
            try:
                raise TimeoutError("nothing within the timeout")
            except TimeoutError as exc:
                state["exception"] = exc
        return out


class CyclingLog:
    """``lg`` whose consumers are :class:`CycleOnEmptyPoll`."""

    def __init__(self, lg: Log):
        self.lg = lg

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lg, name)

    def consumer(self, topic: str, group: str) -> CycleOnEmptyPoll:
        return CycleOnEmptyPoll(self.lg.consumer(topic, group))


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.enable()


def records_in_cycles() -> int:
    """Decoded records that only the cyclic collector would free (collects them)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return sum(1 for o in gc.garbage if type(o) is InferenceRecord)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def filled_log(path: Path, topic: str, n: int) -> SQLiteLog:
    lg = SQLiteLog(path)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    lg.append(topic, [(b"m", InferenceRecord(id=f"r{i}", model="m", timestamp=t0 + timedelta(seconds=i),
                                             inputs={"x": [i]}).to_json()) for i in range(n)])
    return lg


def test_the_stand_in_keeps_a_callers_batch_alive(tmp_path: Path, no_collector: None) -> None:
    """The oracle: a caller holding decoded records while the stand-in polls an empty topic leaves
    them to the cyclic collector (as kafka-python's empty polls did to the audit role's batches)."""
    lg = CyclingLog(SQLiteLog(tmp_path / "log.db"))
    lg.create_topics(["empty"])
    consumer = lg.consumer("empty", "g")

    def caller() -> None:
        held = [InferenceRecord(id=f"r{i}", model="m") for i in range(10)]
        assert consumer.poll(10) == []
        assert len(held) == 10

    caller()
    assert records_in_cycles() == 10
    consumer.close()


def test_no_decoded_batch_is_left_to_the_cyclic_collector(tmp_path: Path, no_collector: None) -> None:
    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path), "audit.batch_size": 50,
                                               "audit.poll_timeout_s": 0.0})
    lg = filled_log(tmp_path / "log.db", cfg.log.records_topic, 400)
    lg.create_topics([cfg.log.detections_topic, cfg.log.deadletter_topic])
    store = SQLiteAuditStore(tmp_path / "audit.db")
    worker = AuditWorker(cfg, CyclingLog(lg), store, Metrics())  # type: ignore[arg-type]
    try:
        steps = 0
        while worker.documents < 400 and steps < 100:  # records, then the quiet topics' empty polls, each step
            worker.step()
            steps += 1
        assert worker.documents == 400
        assert records_in_cycles() == 0
    finally:
        worker.close()
        store.close()
        lg.close()

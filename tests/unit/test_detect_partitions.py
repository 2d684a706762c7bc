"""The detect worker's state per log partition (issue 11), on a small in-memory partitioned log
that keeps the :mod:`inferwatch.log` contract (a state per partition stored with its position;
after a reassignment every partition resumes from the position stored with its state). Two
workers hand partitions back and forth; the detections must be those of one uninterrupted
monitor per model (the oracle), each window once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from inferwatch.config import load_config
from inferwatch.log import Consumer, KeyValue, Log, LogEntry
from inferwatch.metrics import Metrics
from inferwatch.record import Detection, InferenceRecord
from inferwatch.references import ReferenceStore
from inferwatch.wiring import build_monitor, monitor_from
from inferwatch.workers import DetectWorker

T0 = datetime(2026, 5, 1, tzinfo=UTC)


class MemoryLog(Log):
    """Partitions are lists; groups keep (committed offset, state, state offset) per partition;
    ``assign`` moves partitions between consumers like a rebalance."""

    def __init__(self, partitions: int):
        self.parts: dict[str, list[list[LogEntry]]] = {}
        self.n = partitions
        self.groups: dict[tuple[str, str, int], tuple[int, bytes | None, int]] = {}
        self.consumers: list[MemoryConsumer] = []

    def create_topics(self, topics):
        for t in topics:
            self.parts.setdefault(t, [[] for _ in range(self.n)])

    def append(self, topic: str, items: Sequence[KeyValue]) -> None:
        self.create_topics([topic])
        for k, v in items:
            p = 0 if k is None else sum(k) % self.n
            part = self.parts[topic][p]
            part.append(LogEntry(topic, p, len(part), k, v, float(len(part))))

    def consumer(self, topic: str, group: str) -> MemoryConsumer:
        self.create_topics([topic])
        c = MemoryConsumer(self, topic, group)
        self.consumers.append(c)
        return c

    def size(self, topic: str) -> int:
        return sum(len(p) for p in self.parts.get(topic, []))

    def group_lag(self, topic: str, group: str) -> int:
        return sum(len(p) - self.groups.get((group, topic, i), (0, None, 0))[0]
                   for i, p in enumerate(self.parts[topic]))

    def reset_group(self, topic: str, group: str) -> None:
        raise NotImplementedError


class MemoryConsumer(Consumer):
    def __init__(self, log: MemoryLog, topic: str, group: str):
        self.log, self.topic, self.group = log, topic, group
        self._assigned: frozenset[int] = frozenset()
        self.pos: dict[int, int] = {}
        self.generation = 0

    def assign(self, parts: set[int]) -> None:
        """A rebalance: the new assignment, every partition positioned from its stored state."""
        self._assigned = frozenset(parts)
        self.pos = {}
        for p in parts:
            committed, state, state_at = self.log.groups.get((self.group, self.topic, p), (0, None, 0))
            self.pos[p] = state_at if state is not None else committed
        self.generation += 1

    def assigned(self) -> frozenset[int]:
        return self._assigned

    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[LogEntry]:
        out: list[LogEntry] = []
        for p in sorted(self._assigned):
            take = self.log.parts[self.topic][p][self.pos[p]:self.pos[p] + max_records - len(out)]
            self.pos[p] += len(take)
            out += take
        return out

    def commit(self, entries: Sequence[LogEntry], states: Mapping[int, bytes] | None = None) -> None:
        nxt: dict[int, int] = {}
        for e in entries:
            nxt[e.partition] = max(nxt.get(e.partition, 0), e.offset + 1)
        assert set(states or {}) <= set(nxt)
        for p, o in nxt.items():
            _, state, state_at = self.log.groups.get((self.group, self.topic, p), (0, None, 0))
            if states and p in states:
                state, state_at = states[p], o
            self.log.groups[(self.group, self.topic, p)] = (o, state, state_at)

    def committed_state(self, partition: int = 0) -> bytes | None:
        return self.log.groups.get((self.group, self.topic, partition), (0, None, 0))[1]

    def seek_to_committed(self) -> None:
        self.assign(set(self._assigned))

    def lag(self) -> int:
        return 0


def _records(model: str, start: int, stop: int) -> list[InferenceRecord]:
    rng = np.random.default_rng(sum(model.encode()))
    xs = rng.normal(size=stop)
    return [InferenceRecord(id=f"{model}-{i}", model=model, timestamp=T0 + timedelta(seconds=i),
                            inputs={"x": [float(xs[i] + (1.0 if i >= 120 else 0.0))]}) for i in range(start, stop)]


def _key(d: Detection) -> tuple[object, ...]:
    return d.model, d.extra["window_seq"], d.window_start, d.window_end, d.window_size, d.p_value


def test_partitions_move_between_workers_with_their_windows(tmp_path):
    cfg = load_config(None, env={}, overrides={
        "data_dir": str(tmp_path), "detect.batch_size": 7, "detect.checkpoint_interval_s": 3600,
        "detect.window": {"type": "count", "size": 25}, "detect.detectors": [{"type": "ks", "p_val": 0.05}]})
    models = ["a", "b", "c", "d"]  # keys a=97, b=98, c=99, d=100: partitions 1, 0, 1, 0
    refs = ReferenceStore(cfg.references_path)
    rng = np.random.default_rng(0)
    for m in models:
        refs.register(m, pd.DataFrame({"x": rng.normal(size=500)}))
    lg = MemoryLog(2)
    topic = cfg.log.records_topic

    def append(start: int, stop: int) -> None:
        for m in models:
            lg.append(topic, [(m.encode(), r.to_json()) for r in _records(m, start, stop)])

    def run(w: DetectWorker) -> None:
        for _ in range(1000):
            if not w.step():
                return

    w1 = DetectWorker(cfg, lg, lambda: build_monitor(cfg), metrics=Metrics())
    w2 = DetectWorker(cfg, lg, lambda: build_monitor(cfg), metrics=Metrics())
    w1.ensure_connected()
    w2.ensure_connected()
    c1, c2 = w1.consumer, w2.consumer
    assert isinstance(c1, MemoryConsumer) and isinstance(c2, MemoryConsumer)
    c1.assign({0, 1})
    append(0, 60)
    run(w1)  # w1 holds windows of both partitions, checkpointed only after a batch with detections
    w1.checkpoint()
    append(60, 90)
    run(w1)  # in memory only: 30 records a model that w1 never checkpoints
    c1.assign({0})  # partition 1 moves to w2, which resumes it from w1's last checkpoint
    c2.assign({1})
    run(w1)
    run(w2)
    append(90, 140)
    run(w1)
    run(w2)
    w2.checkpoint()
    w1.checkpoint()
    c2.assign(set())  # and back: w1 must take w2's windows of partition 1, not its own older ones
    c1.assign({0, 1})
    append(140, 200)
    run(w1)
    run(w2)
    w1.checkpoint()

    found: dict[str, Detection] = {}
    for p in lg.parts[cfg.log.detections_topic]:
        for e in p:
            d = Detection.from_json(e.value)
            if d.id in found:
                assert _key(found[d.id]) == _key(d)  # a window computed again: the same id and figures
            found[d.id] = d
    expected = []
    for m in models:
        expected += monitor_from({"window": cfg.detect.window, "detectors": cfg.detect.detectors}, refs).process(
            _records(m, 0, 200))
    assert len(expected) == len(models) * 200 // 25
    assert sorted(_key(d) for d in found.values()) == sorted(_key(d) for d in expected)

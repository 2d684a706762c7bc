"""Several detect workers in one Kafka consumer group (issue 11): each holds the windows of its
own partitions, checkpointed per partition; members join, leave gracefully and crash without a
checkpoint, and still every window's detection is the one an uninterrupted run computes for that
model's records: none lost, none twice (one id per window), and copies of a record on the log
counted once.

The oracle is independent of the log and the workers: one monitor per model fed that model's
records in order, without copies."""

from __future__ import annotations

import uuid
import zlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from inferwatch.config import load_config
from inferwatch.kafka_log import KafkaLog
from inferwatch.metrics import Metrics
from inferwatch.record import Detection, InferenceRecord
from inferwatch.references import ReferenceStore
from inferwatch.wiring import build_monitor, monitor_from
from inferwatch.workers import DetectWorker
from tests.contracts import KAFKA_CLIENTS, _drain
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MODELS = [f"m{i}" for i in range(6)]
WINDOW = 40
PER_MODEL = 400  # 10 windows per model


def _records(model: str, start: int, stop: int) -> list[InferenceRecord]:
    shift = 0.8 if model in ("m1", "m4") else 0.0
    out = []
    for i in range(start, stop):
        rng = np.random.default_rng(zlib.crc32(f"{model}-{i}".encode()))
        out.append(InferenceRecord(id=f"{model}-{i}", model=model, version="v1",
                                   timestamp=T0 + timedelta(seconds=i),
                                   inputs={"a": [float(rng.normal() + (shift if i >= 200 else 0.0))],
                                           "b": [float(rng.normal())]}))
    return out


def _key(d: Detection | dict[str, Any]) -> tuple[Any, ...]:
    d = d if isinstance(d, dict) else d.to_dict()
    return (d["model"], d["detector"], d["extra"]["window_seq"], str(d["window_start"]), str(d["window_end"]),
            d["window_size"], d["p_value"])


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_detect_members_join_leave_and_crash_each_window_once(stack_env, tmp_path, client):
    tag = uuid.uuid4().hex[:8]
    cfg = load_config(None, env={}, overrides={
        "data_dir": str(tmp_path / "data"), "log.backend": "kafka",
        "log.records_topic": f"iwt-{tag}.records", "log.detections_topic": f"iwt-{tag}.detections",
        "log.deadletter_topic": f"iwt-{tag}.deadletter",
        "kafka.bootstrap_servers": stack_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"], "kafka.partitions": 3,
        "kafka.linger_ms": 1, "kafka.client": client, "detect.group": f"detect-{tag}", "detect.batch_size": 50,
        "detect.checkpoint_interval_s": 0.2,
        "detect.window": {"type": "count", "size": WINDOW}, "detect.detectors": [{"type": "ks", "p_val": 0.05}],
    })
    rng = np.random.default_rng(3)
    refs = ReferenceStore(cfg.references_path)
    for m in MODELS:
        refs.register(m, pd.DataFrame({"a": rng.normal(size=1000), "b": rng.normal(size=1000)}), version="v1")
    lg = KafkaLog(cfg.kafka)
    topic = cfg.log.records_topic
    lg.create_topics([topic, cfg.log.detections_topic, cfg.log.deadletter_topic])
    workers: list[DetectWorker] = []

    def append(start: int, stop: int, copies: bool = False) -> None:
        items = []
        for m in MODELS:
            recs = _records(m, start, stop)
            items += [(m.encode(), r.to_json()) for r in recs]
            if copies:  # a client's resends: the same records again, later on the log
                items += [(m.encode(), r.to_json()) for r in recs[::7]]
        lg.append(topic, items)

    def member() -> DetectWorker:
        w = DetectWorker(cfg, lg, lambda: build_monitor(cfg), metrics=Metrics())
        w.start()
        workers.append(w)
        return w

    def processed() -> int:
        return lg.size(topic) - lg.group_lag(topic, cfg.detect.group)

    def holds_partitions(*ws: DetectWorker) -> bool:
        return all(w.consumer is not None and w.consumer.assigned() for w in ws)

    def split_of(*ws: DetectWorker) -> bool:
        sets = [w.consumer.assigned() if w.consumer is not None else frozenset() for w in ws]
        return sum(len(x) for x in sets) == 3 and frozenset().union(*sets) == frozenset(range(3))

    try:
        a, b = member(), member()
        # a split both members agree on (disjoint, covering the three partitions): kafka-python
        # may rejoin once right after the first join, and a member that is alone for a moment
        # holds every partition
        wait_until(lambda: holds_partitions(a, b) and split_of(a, b), timeout=180, what="a and b split the partitions")
        append(0, 120)
        wait_until(lambda: processed() == lg.size(topic), timeout=180, what="two members read the first part")
        # which member computed which window is Kafka's timing (a rejoin right after the first
        # join can leave one member alone with every partition for a moment, seen twice in full
        # runs); what must hold is checked below: every window once, equal to one monitor per model
        assert a.detections or b.detections
        a.stop()  # graceful: checkpoints, leaves the group; b gets its partitions and their windows
        assert a.thread is not None and not a.thread.is_alive()
        c = member()
        wait_until(lambda: holds_partitions(b, c) and b.consumer is not None and len(b.consumer.assigned()) < 3,
                   timeout=180, what="b and c share the partitions")
        append(120, 260, copies=True)
        wait_until(lambda: processed() == lg.size(topic), timeout=180, what="b and c read the second part")
        assert c.detections, "c computed no window"
        # c crashes: nothing it does from now on is committed
        c.checkpoint = lambda: None  # type: ignore[method-assign]
        append(260, 330)
        wait_until(lambda: any(ps.last is not None for ps in c.partitions.values()), timeout=180,
                   what="c processed records it will not checkpoint")
        c.stop()
        append(330, PER_MODEL, copies=True)
        wait_until(lambda: processed() == lg.size(topic), timeout=180, what="b reads the rest")
        b.stop()
        assert not any(w.error for w in workers)

        reader = lg.consumer(cfg.log.detections_topic, f"reader-{tag}")
        messages = [Detection.from_json(e.value) for e in _drain(reader, 10**6, rounds=20)]
        reader.close()
    finally:
        for w in workers:
            w.stop()
        lg.delete_topics([topic, cfg.log.detections_topic, cfg.log.deadletter_topic])
        lg.close()

    # the oracle: each model's records in order, once, through a monitor of its own
    expected = []
    for m in MODELS:
        mon = monitor_from({"window": cfg.detect.window, "detectors": cfg.detect.detectors}, refs)
        expected += mon.process(_records(m, 0, PER_MODEL))
    assert len(expected) == len(MODELS) * PER_MODEL // WINDOW
    assert any(d.is_drift for d in expected) and not all(d.is_drift for d in expected)

    by_id: dict[str, list[Detection]] = defaultdict(list)
    for d in messages:
        by_id[d.id].append(d)
    # a window recomputed after the crash has the id and the content it had: one per window
    for same in by_id.values():
        assert len({_key(d) for d in same}) == 1
    found = sorted(_key(same[0]) for same in by_id.values())
    assert found == sorted(_key(d) for d in expected)
    assert len(by_id) == len(expected)

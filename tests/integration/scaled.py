"""The scaled path for the ways-in tests: fresh Kafka topics and Elasticsearch indices on the stack,
an in-process audit worker (the audit role's code) from the log into Elasticsearch."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from inferwatch.audit import SearchQuery
from inferwatch.config import Config, load_config
from inferwatch.kafka_log import KafkaLog
from inferwatch.log import LogEntry
from inferwatch.metrics import Metrics
from inferwatch.record import DeadLetter, InferenceRecord
from inferwatch.workers import AuditWorker
from sinks.elasticsearch import ElasticsearchAuditStore


@dataclass
class Scaled:
    cfg: Config
    log: KafkaLog
    store: ElasticsearchAuditStore
    worker: AuditWorker | None = None

    def start_audit(self) -> None:
        self.worker = AuditWorker(self.cfg, self.log, self.store, Metrics())
        self.worker.start()

    def count(self, **query: Any) -> int:
        self.store.refresh()
        return self.store.count(SearchQuery(**query))

    def docs(self, **query: Any) -> list[dict[str, Any]]:
        self.store.refresh()
        return self.store.search(SearchQuery(limit=10_000, **query))

    def records_on_log(self, max_n: int = 100_000) -> list[InferenceRecord]:
        return [InferenceRecord.from_json(e.value) for e in self.entries_on_log(max_n)]

    def entries_on_log(self, max_n: int = 100_000) -> list[LogEntry]:
        """The records topic's entries, in (partition, offset) order, read by a fresh group."""
        c = self.log.consumer(self.cfg.log.records_topic, "peek-" + uuid.uuid4().hex)
        seen: dict[tuple[int, int], LogEntry] = {}
        try:
            for _ in range(50):
                batch = c.poll(5000, timeout=0.5)
                if not batch and seen:
                    break
                seen.update({(e.partition, e.offset): e for e in batch})  # (see _by_position)
                if len(seen) >= max_n:
                    break
        finally:
            c.close()
        return [seen[k] for k in sorted(seen)]

    def letters_on_log(self) -> list[DeadLetter]:
        c = self.log.consumer(self.cfg.log.deadletter_topic, "peek-" + uuid.uuid4().hex)
        try:
            seen: dict[tuple[int, int], DeadLetter] = {}
            for _ in range(6):
                seen.update(_by_position(c.poll(5000, timeout=0.5), DeadLetter.from_json))
            return [seen[k] for k in sorted(seen)]
        finally:
            c.close()


def e2e_overrides(stack_env: dict[str, str], tag: str, data_dir: Any, **more: Any) -> dict[str, Any]:
    """Config overrides for a whole pipeline on the stack with everything named after ``tag``:
    ``iwt-<tag>.*`` topics, ``iwt-<tag>`` indices, ``audit-<tag>``/``detect-<tag>`` groups (cleaned
    up by :func:`delete_test_indices`); ``more`` adds to or replaces them."""
    return {
        "data_dir": str(data_dir), "collector.port": 0,
        "log.backend": "kafka", "log.records_topic": f"iwt-{tag}.records",
        "log.detections_topic": f"iwt-{tag}.detections", "log.deadletter_topic": f"iwt-{tag}.deadletter",
        "audit.backend": "elasticsearch", "audit.group": f"audit-{tag}",
        "kafka.bootstrap_servers": stack_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"],
        "elasticsearch.hosts": [stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"]],
        "elasticsearch.index_prefix": f"iwt-{tag}", "detect.group": f"detect-{tag}", **more}


def delete_test_indices(hosts: str, tag: str) -> None:
    """Delete every ``iwt-<tag>-*`` index a test made (a test's cleanup, shared by the e2e tests)."""
    from elasticsearch import Elasticsearch

    es = Elasticsearch(hosts)
    names = list(es.indices.get(index=f"iwt-{tag}-*", allow_no_indices=True).body)
    if names:
        es.indices.delete(index=",".join(names))


def _by_position(entries: Any, parse: Any) -> dict[tuple[int, int], Any]:
    """Entries keyed by (partition, offset): a peek consumer that never commits reads a
    partition again from the start when the group rebalances (kafka-python may rejoin once
    right after the first join), so what is *on the log* is the set of positions seen."""
    return {(e.partition, e.offset): parse(e.value) for e in entries}


@contextlib.contextmanager
def scaled_path(stack_env: dict[str, str], name: str, **overrides: Any) -> Iterator[Scaled]:
    """Fresh topics and index prefix named after ``name``; everything deleted afterwards."""
    tag = f"{name}-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k.startswith("INFERWATCH_")}
    env.update(stack_env)
    cfg = load_config(None, env=env, overrides={
        "log.backend": "kafka", "audit.backend": "elasticsearch",
        "log.records_topic": f"iw-{tag}.records", "log.detections_topic": f"iw-{tag}.detections",
        "log.deadletter_topic": f"iw-{tag}.deadletter", "audit.group": f"iw-{tag}-audit",
        "elasticsearch.index_prefix": f"iw-{tag}", "kafka.partitions": 1, **overrides})
    lg = KafkaLog(cfg.kafka)
    topics = [cfg.log.records_topic, cfg.log.detections_topic, cfg.log.deadletter_topic]
    lg.create_topics(topics)
    store = ElasticsearchAuditStore(cfg.elasticsearch)
    s = Scaled(cfg, lg, store)
    try:
        yield s
    finally:
        if s.worker is not None:
            s.worker.stop()
            s.worker.close()
        with contextlib.suppress(Exception):
            store.es.indices.delete(index=f"iw-{tag}*", ignore_unavailable=True, allow_no_indices=True)
        with contextlib.suppress(Exception):
            store.close()
        with contextlib.suppress(Exception):
            lg.delete_topics(topics)
        lg.close()

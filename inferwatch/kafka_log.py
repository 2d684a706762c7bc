"""The scaled log: Apache Kafka through kafka-python (>= 3).

* Topics are created by the pipeline (partitions, replication factor, retention from config).
* The producer waits for all in-sync replicas (``acks=all``) with idempotence on, batches
  (``linger_ms``/``batch_size``) and compresses; records are keyed by model, so one model's
  records stay in order within a partition.
* Each role is one consumer group. Offsets are committed manually, per partition, to just past
  the last entry the caller hands to :meth:`KafkaConsumerLog.commit` — the caller does that only
  after its sink has durably taken the batch. A rebalance that takes partitions away before the
  commit makes the commit fail for them; the new owner re-reads those entries (at-least-once,
  and idempotent sinks make the effect exactly-once).
* State blobs (a detector's open windows) are stored with the offsets they belong to in a
  compacted checkpoint topic; on restart the consumer seeks to the checkpoint's offsets, so the
  state and the position always match.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from inferwatch.config import KafkaConfig
from inferwatch.errors import LogError
from inferwatch.log import Consumer, KeyValue, Log, LogEntry

__all__ = ["CHECKPOINT_TOPIC", "KafkaConsumerLog", "KafkaLog"]

log = logging.getLogger("inferwatch.kafka")

CHECKPOINT_TOPIC = "inferwatch.checkpoints"


def _client_config(cfg: KafkaConfig) -> dict[str, Any]:
    c: dict[str, Any] = {"bootstrap_servers": cfg.bootstrap_servers.split(","), "client_id": cfg.client_id,
                         "security_protocol": cfg.security_protocol}
    optional = {"sasl_mechanism": cfg.sasl_mechanism, "sasl_plain_username": cfg.sasl_username,
                "sasl_plain_password": cfg.sasl_password, "ssl_cafile": cfg.ssl_cafile,
                "ssl_certfile": cfg.ssl_certfile, "ssl_keyfile": cfg.ssl_keyfile}
    c.update({k: v for k, v in optional.items() if v is not None})
    return c


def _kafka() -> Any:
    try:
        import kafka
    except ImportError as exc:  # pragma: no cover - a core dependency
        from inferwatch.errors import MissingExtraError

        raise MissingExtraError("kafka-python", "kafka") from exc
    return kafka


class KafkaLog(Log):
    """A :class:`Log` on Apache Kafka.

    ``append`` returns once every message is acknowledged by all in-sync replicas.
    """

    def __init__(self, cfg: KafkaConfig):
        self.cfg = cfg
        self._producer: Any = None
        self._admin: Any = None

    @property
    def producer(self) -> Any:
        if self._producer is None:
            kafka = _kafka()
            cfg = self.cfg
            try:
                self._producer = kafka.KafkaProducer(
                    **_client_config(cfg), acks="all", enable_idempotence=True,
                    compression_type=None if cfg.compression_type == "none" else cfg.compression_type,
                    linger_ms=cfg.linger_ms, batch_size=cfg.batch_size, max_request_size=16 * 1024 * 1024,
                    retries=2**31 - 1, delivery_timeout_ms=120_000,
                )
            except kafka.errors.KafkaError as exc:
                raise LogError(f"cannot connect to Kafka at {cfg.bootstrap_servers}: {exc}") from exc
        return self._producer

    @property
    def admin(self) -> Any:
        if self._admin is None:
            kafka = _kafka()
            try:
                self._admin = kafka.KafkaAdminClient(**_client_config(self.cfg))
            except kafka.errors.KafkaError as exc:
                raise LogError(f"cannot connect to Kafka at {self.cfg.bootstrap_servers}: {exc}") from exc
        return self._admin

    def create_topics(self, topics: Iterable[str], *, compacted: bool = False) -> None:
        kafka = _kafka()
        cfg = self.cfg
        existing = set(self.admin.list_topics())
        configs: dict[str, str] = {"min.insync.replicas": str(min(2, cfg.replication_factor))}
        if cfg.retention_ms is not None:
            configs["retention.ms"] = str(cfg.retention_ms)
        if compacted:  # checkpoints hold open windows and recent record keys: allow large ones
            configs = {"cleanup.policy": "compact", "min.insync.replicas": configs["min.insync.replicas"],
                       "max.message.bytes": str(16 * 1024 * 1024)}
        wanted = {t: {"num_partitions": 1 if compacted else cfg.partitions,
                      "replication_factor": cfg.replication_factor, "configs": configs}
                  for t in topics if t not in existing}
        if not wanted:
            return
        try:
            self.admin.create_topics(wanted, raise_errors=False, wait_for_metadata=True, timeout_ms=30_000)
        except kafka.errors.TopicAlreadyExistsError:
            pass
        except kafka.errors.KafkaError as exc:
            raise LogError(f"cannot create topics {sorted(wanted)}: {exc}") from exc
        missing = set(wanted) - set(self.admin.list_topics())
        if missing:
            raise LogError(f"topics not created: {sorted(missing)}")
        log.info("created topics %s", ", ".join(sorted(wanted)))

    def append(self, topic: str, items: Sequence[KeyValue]) -> None:
        if not items:
            return
        kafka = _kafka()
        try:
            futures = [self.producer.send(topic, key=k, value=v) for k, v in items]
            self.producer.flush()
            for f in futures:
                f.get(timeout=0)
        except kafka.errors.KafkaError as exc:
            raise LogError(f"append to {topic!r} failed: {exc}") from exc

    def consumer(self, topic: str, group: str) -> KafkaConsumerLog:
        return KafkaConsumerLog(self, topic, group)

    def size(self, topic: str) -> int:
        kafka = _kafka()
        c = kafka.KafkaConsumer(**_client_config(self.cfg))
        try:
            parts = c.partitions_for_topic(topic) or set()
            tps = [kafka.TopicPartition(topic, p) for p in parts]
            end = c.end_offsets(tps)
            begin = c.beginning_offsets(tps)
            return int(sum(end[tp] - begin[tp] for tp in tps))
        finally:
            c.close()

    def _end_offsets(self, topic: str) -> dict[int, int]:
        kafka = _kafka()
        c = kafka.KafkaConsumer(**_client_config(self.cfg))
        try:
            parts = c.partitions_for_topic(topic) or set()
            tps = [kafka.TopicPartition(topic, p) for p in parts]
            return {tp.partition: int(o) for tp, o in c.end_offsets(tps).items()}
        finally:
            c.close()

    def group_lag(self, topic: str, group: str) -> int:
        kafka = _kafka()
        try:
            committed = self.admin.list_group_offsets(group).get(group, {})
            end = self._end_offsets(topic)
        except kafka.errors.KafkaError as exc:
            raise LogError(f"lag of {group}/{topic} failed: {exc}") from exc
        done = {tp.partition: om.offset for tp, om in committed.items() if tp.topic == topic and om.offset >= 0}
        return int(sum(max(0, e - done.get(p, 0)) for p, e in end.items()))

    def reset_group(self, topic: str, group: str) -> None:
        kafka = _kafka()
        from kafka.admin import OffsetSpec

        try:
            parts = self._end_offsets(topic)
            specs = {kafka.TopicPartition(topic, p): OffsetSpec.EARLIEST for p in parts}
            result = self.admin.reset_group_offsets(group, specs)
        except kafka.errors.KafkaError as exc:
            raise LogError(f"reset of {group}/{topic} failed: {exc}") from exc
        errors = {tp.partition: r["error"] for tp, r in result.items() if r.get("error") not in (None, kafka.errors.NoError)}
        if errors:
            raise LogError(f"reset of {group}/{topic} failed for partitions {errors} (is the group still running?)")
        # forget any checkpointed state of the group: the replay rebuilds it
        self.create_topics([CHECKPOINT_TOPIC], compacted=True)
        self.append(CHECKPOINT_TOPIC, [(f"{group}|{topic}".encode(), orjson.dumps({"offsets": {}, "state": None}))])

    def delete_topics(self, topics: Iterable[str]) -> None:
        self.admin.delete_topics(list(topics), raise_errors=False)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None
        if self._admin is not None:
            self._admin.close()
            self._admin = None


class KafkaConsumerLog(Consumer):
    """One member of a consumer group on one topic, with manual commits."""

    def __init__(self, owner: KafkaLog, topic: str, group: str):
        kafka = _kafka()
        self.kafka = kafka
        self.owner = owner
        self.topic = topic
        self.group = group
        self._checkpoint: dict[str, Any] | None = None
        self._checkpoint_loaded = False
        cfg = owner.cfg
        consumer_self = self

        class _Listener(kafka.ConsumerRebalanceListener):  # type: ignore[misc,name-defined]
            def on_partitions_revoked(self, revoked: Any) -> None:
                if revoked:
                    log.info("%s: partitions revoked %s", group, sorted(tp.partition for tp in revoked))

            def on_partitions_assigned(self, assigned: Any) -> None:
                consumer_self._on_assigned(assigned)

        try:
            self._consumer = kafka.KafkaConsumer(
                **_client_config(cfg), group_id=group, enable_auto_commit=False,
                auto_offset_reset="earliest", max_poll_records=cfg.max_poll_records,
                isolation_level="read_committed", max_partition_fetch_bytes=cfg.max_partition_fetch_bytes,
                fetch_max_bytes=cfg.fetch_max_bytes, fetch_min_bytes=cfg.fetch_min_bytes,
                fetch_max_wait_ms=cfg.fetch_max_wait_ms, metadata_max_age_ms=30_000,
                session_timeout_ms=cfg.session_timeout_ms, heartbeat_interval_ms=cfg.heartbeat_interval_ms,
                # static membership: a restarted member with the same id takes its partitions back at once
                **({"group_instance_id": f"{cfg.group_instance_id}.{group}"} if cfg.group_instance_id else {}),
            )
            # know the topic's partitions before joining: a member that joins while its metadata
            # has no partitions yet is assigned nothing until the next metadata refresh
            deadline = time.monotonic() + 30
            while not self._consumer.partitions_for_topic(topic) and time.monotonic() < deadline:
                time.sleep(0.2)
            self._consumer.subscribe([topic], listener=_Listener())
        except kafka.errors.KafkaError as exc:
            raise LogError(f"cannot consume {topic!r} as {group!r}: {exc}") from exc
        self._buffer: list[LogEntry] = []
        self._committed: dict[int, int] = {}

    # -- checkpoints ----------------------------------------------------------------------
    def _key(self) -> bytes:
        return f"{self.group}|{self.topic}".encode()

    def _load_checkpoint(self) -> dict[str, Any] | None:
        if self._checkpoint_loaded:
            return self._checkpoint
        self._checkpoint_loaded = True
        kafka = self.kafka
        self.owner.create_topics([CHECKPOINT_TOPIC], compacted=True)
        c = kafka.KafkaConsumer(**_client_config(self.owner.cfg), enable_auto_commit=False)
        try:
            tp = kafka.TopicPartition(CHECKPOINT_TOPIC, 0)
            c.assign([tp])
            c.seek_to_beginning(tp)
            end = c.end_offsets([tp])[tp]
            deadline = time.monotonic() + 30
            while c.position(tp) < end and time.monotonic() < deadline:
                for msgs in c.poll(timeout_ms=500).values():
                    for m in msgs:
                        if m.key == self._key():
                            self._checkpoint = orjson.loads(m.value) if m.value else None
        finally:
            c.close()
        return self._checkpoint

    def _on_assigned(self, assigned: Any) -> None:
        parts = sorted(tp.partition for tp in assigned)
        log.info("%s: partitions assigned %s", self.group, parts)
        self._committed = {p: o for p, o in self._committed.items() if p in parts}
        self._buffer.clear()
        cp = self._checkpoint
        if cp:
            offsets = {int(p): int(o) for p, o in cp["offsets"].items()}
            for tp in assigned:
                if tp.partition in offsets:
                    self._consumer.seek(tp, offsets[tp.partition])

    def committed_state(self) -> bytes | None:
        cp = self._load_checkpoint()
        if not cp or cp.get("state") is None:
            self._checkpoint = cp if cp and cp.get("offsets") else None
            return None
        import base64

        return base64.b64decode(cp["state"])

    # -- consuming ------------------------------------------------------------------------
    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[LogEntry]:
        kafka = self.kafka
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except kafka.errors.KafkaError as exc:
            raise LogError(f"poll of {self.topic!r} failed: {exc}") from exc
        out: list[LogEntry] = []
        for tp in sorted(batches, key=lambda t: t.partition):
            for m in batches[tp]:
                out.append(LogEntry(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp / 1000.0))
        return out

    def commit(self, entries: Sequence[LogEntry], state: bytes | None = None) -> None:
        kafka = self.kafka
        offsets: dict[Any, Any] = {}
        for e in entries:
            tp = kafka.TopicPartition(e.topic, e.partition)
            nxt = e.offset + 1
            if tp not in offsets or offsets[tp].offset < nxt:
                offsets[tp] = kafka.OffsetAndMetadata(nxt, "", -1)
        if state is not None:
            import base64

            previous = dict((self._checkpoint or {}).get("offsets", {}))
            previous.update({str(tp.partition): om.offset for tp, om in offsets.items()})
            self._checkpoint = {"offsets": previous, "state": base64.b64encode(state).decode()}
            self.owner.append(CHECKPOINT_TOPIC, [(self._key(), orjson.dumps(self._checkpoint))])
        if not offsets:
            return
        try:
            self._consumer.commit(offsets)
            self._committed.update({tp.partition: om.offset for tp, om in offsets.items()})
        except kafka.errors.CommitFailedError as exc:
            # the group rebalanced: these partitions belong to another member now, which will
            # re-read the uncommitted entries; rewind ours so nothing is skipped either way
            log.warning("%s: commit failed after a rebalance (%s); entries will be re-read", self.group, exc)
            self.seek_to_committed()
        except kafka.errors.KafkaError as exc:
            raise LogError(f"commit of {self.group}/{self.topic} failed: {exc}") from exc

    def seek_to_committed(self) -> None:
        for tp in self._consumer.assignment():
            committed = self._consumer.committed(tp)
            if committed is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)

    def lag(self) -> int:
        """Entries after the group's committed position. For assigned partitions this uses the
        high-water marks the fetches already brought and the offsets this member committed (no
        network round trip); other partitions are asked of the broker."""
        kafka = self.kafka
        try:
            parts = self._consumer.partitions_for_topic(self.topic) or set()
            tps = [kafka.TopicPartition(self.topic, p) for p in parts]
            assigned = self._consumer.assignment()
            total = 0
            unknown = []
            for tp in tps:
                hw = self._consumer.highwater(tp) if tp in assigned else None
                done = self._committed.get(tp.partition)
                if hw is None or done is None:
                    unknown.append(tp)
                else:
                    total += max(0, hw - done)
            if unknown:
                end = self._consumer.end_offsets(unknown)
                for tp in unknown:
                    committed = self._consumer.committed(tp)
                    if committed is not None:
                        self._committed[tp.partition] = committed
                    total += max(0, end[tp] - (committed or 0))
            return int(total)
        except kafka.errors.KafkaError as exc:
            raise LogError(f"lag of {self.group}/{self.topic} failed: {exc}") from exc

    def close(self) -> None:
        try:
            self._consumer.close(autocommit=False)
        except Exception:  # closing must not mask the error that made us close
            log.debug("consumer close failed", exc_info=True)

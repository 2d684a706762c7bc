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
* State blobs (a detector's open windows) are per partition: each is a message of the
  compacted checkpoint topic, keyed ``group|topic|partition``, holding the offset it belongs to;
  the offset commit of that partition carries a pointer to it in its metadata (``iwcp:<offset in
  the checkpoint topic>``; a position-only commit keeps the pointer). When partitions are
  assigned (start, rebalance) or :meth:`KafkaConsumerLog.seek_to_committed` is called, each one
  with a pointer is positioned at its state's offset and the state is kept for
  :meth:`KafkaConsumerLog.committed_state`: state and position always match, whichever member
  of the group gets the partition. Every checkpoint message is a consistent (state, offset) pair
  (written before the commit that points to it), so even a member that lost its partitions and
  wrote a late checkpoint cannot make the group skip or double-count: at worst a later owner
  resumes from an older pair and reads again.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from inferwatch.config import KafkaConfig
from inferwatch.errors import LogError
from inferwatch.log import Consumer, KeyValue, Log, LogEntry

__all__ = ["CHECKPOINT_TOPIC", "KafkaConsumerLog", "KafkaLog"]

log = logging.getLogger("inferwatch.kafka")

CHECKPOINT_TOPIC = "inferwatch.checkpoints"

#: a checkpoint message: magic, the partition offset the state belongs to, the state
_CP_MAGIC = b"IWCP1"
#: the offset commit's metadata that points at a partition's checkpoint message
_CP_POINTER = "iwcp:"


def _checkpoint_value(offset: int, state: bytes) -> bytes:
    return _CP_MAGIC + struct.pack("<q", offset) + state


def _parse_checkpoint(value: bytes | None) -> tuple[int, bytes] | None:
    """(offset, state) of a checkpoint message; ``None`` for a reset marker or another format."""
    if not value or not value.startswith(_CP_MAGIC):
        return None
    (offset,) = struct.unpack_from("<q", value, len(_CP_MAGIC))
    return int(offset), bytes(value[len(_CP_MAGIC) + 8:])


def _pointer(metadata: str | None) -> int | None:
    if metadata:  # confluent-kafka (2.16) commits the metadata with its C string's NUL terminator
        metadata = metadata.rstrip("\x00")
    if metadata and metadata.startswith(_CP_POINTER):
        try:
            return int(metadata[len(_CP_POINTER):])
        except ValueError:
            return None
    return None


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


def checkpoint_key(group: str, topic: str, partition: int) -> bytes:
    """The checkpoint topic's key of ``group``'s state of ``topic``'s ``partition``."""
    return f"{group}|{topic}|{partition}".encode()


def read_checkpoints(cfg: KafkaConfig, group: str, topic: str,
                     pointers: Mapping[int, int]) -> dict[int, tuple[int, int, bytes]]:
    """partition -> (message offset, state offset, state) for the checkpoint messages the
    pointers name; a pointer whose message was compacted away (a newer one with the same key
    exists: a late write of a member that lost the partition) falls back to the newest
    message of the key, which is a consistent pair as well."""
    if not pointers:
        return {}
    kafka = _kafka()
    out: dict[int, tuple[int, int, bytes]] = {}
    c = kafka.KafkaConsumer(**_client_config(cfg), enable_auto_commit=False,
                            max_partition_fetch_bytes=32 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    try:
        tp = kafka.TopicPartition(CHECKPOINT_TOPIC, 0)
        c.assign([tp])
        end = c.end_offsets([tp])[tp]
        missing: set[int] = set()
        for partition, ptr in sorted(pointers.items(), key=lambda kv: kv[1]):
            if ptr >= end:
                missing.add(partition)
                continue
            c.seek(tp, ptr)
            msg = _next_message(c, tp)
            cp = _parse_checkpoint(msg.value) if msg is not None and msg.offset == ptr \
                and msg.key == checkpoint_key(group, topic, partition) else None
            if cp is None:
                missing.add(partition)
            else:
                out[partition] = (ptr, cp[0], cp[1])
        if missing:
            log.warning("%s: checkpoint of partitions %s compacted away; using the newest of each",
                        group, sorted(missing))
            keys = {checkpoint_key(group, topic, p): p for p in missing}
            c.seek_to_beginning(tp)
            deadline = time.monotonic() + 120
            while c.position(tp) < end:
                if time.monotonic() > deadline:
                    raise LogError(f"reading {CHECKPOINT_TOPIC} took too long")
                for msgs in c.poll(timeout_ms=500).values():
                    for m in msgs:
                        if m.key in keys:
                            cp = _parse_checkpoint(m.value)
                            p = keys[m.key]
                            if cp is None:
                                out.pop(p, None)
                            else:
                                out[p] = (m.offset, cp[0], cp[1])
    except kafka.errors.KafkaError as exc:
        raise LogError(f"reading the checkpoints of {group}/{topic} failed: {exc}") from exc
    finally:
        c.close()
    return out


def _next_message(c: Any, tp: Any) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for msgs in c.poll(timeout_ms=500, max_records=1).values():
            if msgs:
                return msgs[0]
    raise LogError(f"no checkpoint message in {CHECKPOINT_TOPIC} at offset {c.position(tp)} within 30 s")


#: the header that carries a record's audit documents (:attr:`inferwatch.log.LogEntry.audit`)
AUDIT_HEADER = "inferwatch-audit"


def _audit(headers: Any) -> bytes | None:
    """The audit documents among a message's headers (``(name, value)`` pairs), if any."""
    for name, value in headers:
        if name == AUDIT_HEADER:
            return bytes(value) if value is not None else None
    return None


class KafkaLog(Log):
    """A :class:`Log` on Apache Kafka.

    ``append`` returns once every message is acknowledged by all in-sync replicas. A message's
    audit documents travel in its :data:`AUDIT_HEADER` header.
    """

    carries_audit = True

    def __init__(self, cfg: KafkaConfig):
        self.cfg = cfg
        self._producer: Any = None
        self._admin: Any = None
        self._producer_lock = threading.Lock()
        self._checkpoint_topic_ready = False

    @property
    def producer(self) -> Any:
        with self._producer_lock:
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

    def producer_failed(self, producer: Any) -> None:
        """Drop ``producer`` after a failed or timed-out append: the next append makes a new one.
        (After a five-minute broker outage kafka-python's producer never reconnected: every
        later append timed out while new clients worked.) Its unsent messages fail, and their
        callers retry."""
        with self._producer_lock:
            if self._producer is not producer or producer is None:
                return  # another thread replaced it already
            self._producer = None
        log.warning("Kafka producer dropped after a failed append; the next append connects anew")
        try:
            producer.close(timeout=0)
        except Exception:  # a broken producer may not even close cleanly; it is dropped either way
            log.debug("closing the failed producer", exc_info=True)

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
                       "max.message.bytes": str(16 * 1024 * 1024),
                       # roll segments often: only closed segments are compacted, and a member
                       # that falls back to scanning the topic reads what is not compacted yet
                       "segment.ms": str(10 * 60 * 1000)}
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
        producer = self.producer
        try:
            futures = [producer.send(topic, key=item[0], value=item[1]) if len(item) < 3 or item[2] is None
                       else producer.send(topic, key=item[0], value=item[1], headers=[(AUDIT_HEADER, item[2])])
                       for item in items]
            producer.flush(timeout=self.cfg.append_timeout_s)
            for f in futures:
                f.get(timeout=0)
        except (kafka.errors.KafkaError, AssertionError) as exc:  # AssertionError: a closed producer
            self.producer_failed(producer)
            raise LogError(f"append to {topic!r} failed: {exc}") from exc

    def consumer(self, topic: str, group: str) -> Consumer:
        if self.cfg.client == "confluent":
            from inferwatch.kafka_confluent import ConfluentConsumerLog

            return ConfluentConsumerLog(self, topic, group)
        return KafkaConsumerLog(self, topic, group)

    def write_checkpoints(self, group: str, topic: str, positions: Mapping[int, int],
                          states: Mapping[int, bytes]) -> dict[int, int]:
        """Append ``states`` (partition -> blob, each belonging to ``positions[partition]``) to the
        checkpoint topic, durably; returns partition -> offset of its checkpoint message (what the
        offset commit then points to)."""
        kafka = _kafka()
        if not self._checkpoint_topic_ready:
            self.create_topics([CHECKPOINT_TOPIC], compacted=True)
            self._checkpoint_topic_ready = True
        producer = self.producer
        try:
            futures = {p: producer.send(CHECKPOINT_TOPIC, key=checkpoint_key(group, topic, p),
                                        value=_checkpoint_value(positions[p], st)) for p, st in states.items()}
            producer.flush(timeout=self.cfg.append_timeout_s)
            return {p: int(f.get(timeout=0).offset) for p, f in futures.items()}
        except (kafka.errors.KafkaError, AssertionError) as exc:
            self.producer_failed(producer)
            raise LogError(f"checkpoint of {group}/{topic} failed: {exc}") from exc

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

    def group_offsets(self, topic: str, group: str) -> tuple[dict[int, int], dict[int, int]]:
        """(the group's committed offset, the end offset) per partition of ``topic``."""
        kafka = _kafka()
        try:
            committed = self.admin.list_group_offsets(group).get(group, {})
            end = self._end_offsets(topic)
        except kafka.errors.KafkaError as exc:
            raise LogError(f"lag of {group}/{topic} failed: {exc}") from exc
        done = {tp.partition: om.offset for tp, om in committed.items() if tp.topic == topic and om.offset >= 0}
        return done, end

    def group_lag(self, topic: str, group: str) -> int:
        return _behind(*self.group_offsets(topic, group))

    def reset_group(self, topic: str, group: str) -> None:
        kafka = _kafka()
        c = kafka.KafkaConsumer(**_client_config(self.cfg))
        try:
            tps = [kafka.TopicPartition(topic, p) for p in (c.partitions_for_topic(topic) or set())]
            begin = c.beginning_offsets(tps)
            # offsets with empty metadata: no pointer to a checkpoint, the group's states are
            # forgotten and the replay rebuilds them (the admin's reset would keep the metadata)
            result = self.admin.alter_group_offsets(
                group, {tp: kafka.OffsetAndMetadata(int(begin[tp]), "", -1) for tp in tps})
        except kafka.errors.KafkaError as exc:
            raise LogError(f"reset of {group}/{topic} failed: {exc}") from exc
        finally:
            c.close()
        errors = {tp.partition: e for tp, e in result.items() if e not in (None, kafka.errors.NoError)}
        if errors:
            raise LogError(f"reset of {group}/{topic} failed for partitions {errors} (is the group still running?)")
        # reset markers: a member's fallback scan of the checkpoint topic finds no older state either
        self.create_topics([CHECKPOINT_TOPIC], compacted=True)
        self.append(CHECKPOINT_TOPIC, [(checkpoint_key(group, topic, tp.partition), b"") for tp in tps])

    def delete_topics(self, topics: Iterable[str]) -> None:
        self.admin.delete_topics(list(topics), raise_errors=False)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None
        if self._admin is not None:
            self._admin.close()
            self._admin = None


def _behind(done: Mapping[int, int], end: Mapping[int, int]) -> int:
    """Entries after the committed offsets ``done`` up to the ``end`` offsets, per partition (none committed: from 0)."""
    return int(sum(max(0, e - done.get(p, 0)) for p, e in end.items()))


class AssignmentWatch:
    """Raises :class:`LogError` (the role makes its consumer anew) when a member has held no partition
    for ``kafka.unassigned_timeout_s`` while its group has entries waiting on the topic and makes no
    progress on them (kafka-python: a member whose rejoin never completed was seen holding nothing for
    good). A member with nothing because the group has more members than partitions sees the others
    consume (no lag, or committed offsets that move between two looks) and stays. Shared by both
    clients' consumers; the group's offsets are asked at most every 30 s."""

    def __init__(self, owner: KafkaLog, topic: str, group: str) -> None:
        self.owner, self.topic, self.group = owner, topic, group
        self.unassigned_since: float | None = time.monotonic()
        self.next_lag_check = 0.0
        self._seen: dict[int, int] | None = None  # the group's committed offsets at the last look

    def check(self, holding: bool) -> None:
        """After a poll that brought nothing: ``holding`` whether the member has partitions now."""
        now = time.monotonic()
        if holding:
            self.unassigned_since, self._seen = None, None
            return
        if self.unassigned_since is None:
            self.unassigned_since = now
            return
        idle = now - self.unassigned_since
        if idle < self.owner.cfg.unassigned_timeout_s or now < self.next_lag_check:
            return
        self.next_lag_check = now + 30.0
        done, end = self.owner.group_offsets(self.topic, self.group)
        lag = _behind(done, end)
        seen, self._seen = self._seen, done
        if lag > 0 and seen == done:
            raise LogError(f"{self.group}: no partition of {self.topic!r} assigned for {idle:.0f} s while {lag} "
                           f"entries wait and the group's positions have not moved; joining the group anew")


class KafkaConsumerLog(Consumer):
    """One member of a consumer group on one topic, with manual commits and per-partition states."""

    def __init__(self, owner: KafkaLog, topic: str, group: str):
        kafka = _kafka()
        self.kafka = kafka
        self.owner = owner
        self.topic = topic
        self.group = group
        self.generation = 0
        self._assignments = 0  # assignments seen by the listener; positioned in poll (not on the IO thread)
        self._positioned = 0
        self._assigned: frozenset[int] = frozenset()
        #: whether the last rebalance gave this member partitions and none began since: kafka-python
        #: keeps the old partitions in ``assignment()`` from the revocation until the next join
        #: completes, so a member whose rejoin never completes still "has" them there
        self._held = False
        #: partition -> (checkpoint message offset, state offset, state) of assigned partitions with a state
        self._states: dict[int, tuple[int, int, bytes]] = {}
        cfg = owner.cfg
        consumer_self = self

        class _Listener(kafka.ConsumerRebalanceListener):  # type: ignore[misc,name-defined]
            # runs on the client's IO thread: no blocking calls here, poll() does the positioning
            def on_partitions_revoked(self, revoked: Any) -> None:
                consumer_self._held = False
                if revoked:
                    log.info("%s: partitions revoked %s", group, sorted(tp.partition for tp in revoked))

            def on_partitions_assigned(self, assigned: Any) -> None:
                log.info("%s: partitions assigned %s", group, sorted(tp.partition for tp in assigned))
                consumer_self._held = bool(assigned)
                consumer_self._assignments += 1

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
            if not self._consumer.partitions_for_topic(topic):
                # joining anyway leaves this member without partitions until some later
                # rebalance; not joining keeps the role not ready, retrying, and saying why
                raise LogError(f"topic {topic!r} has no partitions yet (not created?); will try again")
            self._consumer.subscribe([topic], listener=_Listener())
        except (kafka.errors.KafkaError, LogError) as exc:
            self._close_quietly()
            if isinstance(exc, LogError):
                raise
            raise LogError(f"cannot consume {topic!r} as {group!r}: {exc}") from exc
        self._committed: dict[int, int] = {}
        self._watch = AssignmentWatch(owner, topic, group)

    # -- checkpoints ----------------------------------------------------------------------
    def _cp_key(self, partition: int) -> bytes:
        return checkpoint_key(self.group, self.topic, partition)

    def _read_checkpoints(self, pointers: Mapping[int, int]) -> dict[int, tuple[int, int, bytes]]:
        return read_checkpoints(self.owner.cfg, self.group, self.topic, pointers)

    def _committed_metadata(self, partitions: Iterable[int]) -> dict[int, Any]:
        kafka = self.kafka
        out = {}
        for p in partitions:
            om = self._consumer.committed(kafka.TopicPartition(self.topic, p), metadata=True)
            if om is not None:
                out[p] = om
        return out

    def _position(self) -> None:
        """Position every assigned partition: one with a state at its state's offset, the
        others at the committed offset (or the start); a new generation."""
        kafka = self.kafka
        try:
            assigned = {tp.partition: tp for tp in self._consumer.assignment() if tp.topic == self.topic}
            committed = self._committed_metadata(assigned)
            pointers = {p: ptr for p, om in committed.items() if (ptr := _pointer(om.metadata)) is not None}
            self._states = self._read_checkpoints(pointers)
            for p, tp in assigned.items():
                if p in self._states:
                    self._consumer.seek(tp, self._states[p][1])
                elif p in committed and committed[p].offset >= 0:
                    self._consumer.seek(tp, committed[p].offset)
                else:
                    self._consumer.seek_to_beginning(tp)
        except kafka.errors.KafkaError as exc:
            raise LogError(f"positioning {self.group}/{self.topic} failed: {exc}") from exc
        self._assigned = frozenset(assigned)
        self._committed = {p: om.offset for p, om in committed.items() if om.offset >= 0}
        self.generation += 1

    def assigned(self) -> frozenset[int]:
        return self._assigned

    def committed_state(self, partition: int = 0) -> bytes | None:
        if self.generation and partition in self._assigned:
            cached = self._states.get(partition)
            return cached[2] if cached else None
        try:
            om = self._committed_metadata([partition]).get(partition)
            ptr = _pointer(om.metadata) if om is not None else None
            found = self._read_checkpoints({partition: ptr} if ptr is not None else {})
        except self.kafka.errors.KafkaError as exc:
            raise LogError(f"reading the state of {self.group}/{self.topic} failed: {exc}") from exc
        return found[partition][2] if partition in found else None

    # -- consuming ------------------------------------------------------------------------
    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[LogEntry]:
        kafka = self.kafka
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
            assignments = self._assignments
            if assignments != self._positioned:
                # (re)assigned in or around this poll: what it brought may come from the old
                # positions; every partition is positioned afresh (states decide) and read again
                self._positioned = assignments
                self._position()
                return []
        except kafka.errors.KafkaError as exc:
            raise LogError(f"poll of {self.topic!r} failed: {exc}") from exc
        if not batches:
            self._watch.check(self._held)
        out: list[LogEntry] = []
        for tp in sorted(batches, key=lambda t: t.partition):
            for m in batches[tp]:
                out.append(LogEntry(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp / 1000.0,
                                    _audit(m.headers) if m.headers else None))
        return out

    def commit(self, entries: Sequence[LogEntry], states: Mapping[int, bytes] | None = None) -> None:
        kafka = self.kafka
        nxt: dict[int, int] = {}
        for e in entries:
            if e.offset + 1 > nxt.get(e.partition, -1):
                nxt[e.partition] = e.offset + 1
        states = states or {}
        if set(states) - set(nxt):
            raise ValueError(f"states of partitions {sorted(set(states) - set(nxt))} without entries to commit")
        try:
            if states:  # the states first, durably; then the offsets that point to them
                written = self.owner.write_checkpoints(self.group, self.topic, nxt, states)
                self._states.update({p: (written[p], nxt[p], st) for p, st in states.items()})
            offsets = {}
            for p, o in nxt.items():
                cached = self._states.get(p)  # a position-only commit keeps the pointer to the state
                offsets[kafka.TopicPartition(self.topic, p)] = kafka.OffsetAndMetadata(
                    o, f"{_CP_POINTER}{cached[0]}" if cached else "", -1)
        except (kafka.errors.KafkaError, AssertionError) as exc:
            raise LogError(f"checkpoint of {self.group}/{self.topic} failed: {exc}") from exc
        if not offsets:
            return
        try:
            self._consumer.commit(offsets)
            self._committed.update({tp.partition: om.offset for tp, om in offsets.items()})
        except kafka.errors.CommitFailedError as exc:
            # the group rebalanced: these partitions belong to another member now, which resumes
            # from their last committed states; ours are repositioned (a new generation)
            log.warning("%s: commit failed after a rebalance (%s); entries will be re-read", self.group, exc)
            self.seek_to_committed()
        except kafka.errors.KafkaError as exc:
            raise LogError(f"commit of {self.group}/{self.topic} failed: {exc}") from exc

    def seek_to_committed(self) -> None:
        self._position()

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
        self._close_quietly()

    def _close_quietly(self) -> None:
        consumer = getattr(self, "_consumer", None)
        if consumer is None:
            return
        try:
            consumer.close(autocommit=False)
        except Exception:  # closing must not mask the error that made us close
            log.debug("consumer close failed", exc_info=True)

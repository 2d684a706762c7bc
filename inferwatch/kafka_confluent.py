"""The Kafka log's consumers on confluent-kafka (librdkafka): ``kafka.client: confluent``.

The same :class:`~inferwatch.log.Consumer` as :class:`inferwatch.kafka_log.KafkaConsumerLog`, on
the same topics, offsets and checkpoints (a group may even change client between restarts):
manual commits per partition to just past the entries handed to :meth:`commit`, states in the
compacted checkpoint topic with a pointer in the offset commit's metadata, every assigned
partition positioned at its state's offset (else the committed one, else the start) whenever
it is assigned. The producer, the admin client and the checkpoint reads stay on kafka-python
(:class:`~inferwatch.kafka_log.KafkaLog`); what this changes is the fetch, the hot path
(``consume(num_messages=...)`` hands a batch over from librdkafka's own fetcher threads).

librdkafka serves the group's rebalances inside ``consume()``, on the caller's thread: the
assignment callback reads the committed offsets and states and assigns the partitions at their
positions. A ``consume()`` in which the assignment changed may hold entries of the old
assignment ahead of the new one's: its entries are dropped, every partition is set back to
the position the callback chose, and the generation changes; the next poll reads from there.

Errors: librdkafka reconnects and retries by itself. A fatal client error, all brokers down,
or an error message in a fetched batch (other than the end of a partition) make the next
:meth:`poll` raise :class:`~inferwatch.errors.LogError`, the signal every role takes as "not
ready, reconnect": the worker drops this consumer and makes a new one once Kafka answers.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from inferwatch.config import KafkaConfig
from inferwatch.errors import LogError
from inferwatch.kafka_log import (
    _CP_POINTER,
    AssignmentWatch,
    _audit,
    _client_config,
    _kafka,
    _pointer,
    read_checkpoints,
)
from inferwatch.log import Consumer, LogEntry

if TYPE_CHECKING:
    from inferwatch.kafka_log import KafkaLog

__all__ = ["ConfluentConsumerLog", "confluent_config"]

log = logging.getLogger("inferwatch.kafka")

#: what varies between librdkafka's repeats of one line (the connection's timing, the instance)
_VARYING = re.compile(r"\(after \d+ms in state \w+\)|#(consumer|producer)-\d+")


class _OncePerInterval(logging.Filter):
    """librdkafka logs a failing connection at every retry (dozens of lines a second at first,
    for every consumer made during an outage): each distinct line passes once per ``interval``."""

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self.last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = _VARYING.sub("", record.getMessage())
        now = time.monotonic()
        if now - self.last.get(key, -self.interval) < self.interval:
            return False
        if len(self.last) > 1000:
            self.last.clear()
        self.last[key] = now
        return True


#: librdkafka's own log lines (served inside poll and consume), repeats thinned out
librdkafka_log = logging.getLogger("inferwatch.kafka.librdkafka")
librdkafka_log.addFilter(_OncePerInterval())


def _confluent() -> Any:
    try:
        import confluent_kafka
    except ImportError as exc:
        from inferwatch.errors import MissingExtraError

        raise MissingExtraError("confluent-kafka", "confluent") from exc
    return confluent_kafka


def confluent_config(cfg: KafkaConfig) -> dict[str, Any]:
    """librdkafka's names for the connection and security options of ``cfg`` (the ones
    :func:`inferwatch.kafka_log._client_config` gives kafka-python)."""
    c: dict[str, Any] = {"bootstrap.servers": cfg.bootstrap_servers, "client.id": cfg.client_id,
                         "security.protocol": cfg.security_protocol.lower()}
    optional = {"sasl.mechanism": cfg.sasl_mechanism, "sasl.username": cfg.sasl_username,
                "sasl.password": cfg.sasl_password, "ssl.ca.location": cfg.ssl_cafile,
                "ssl.certificate.location": cfg.ssl_certfile, "ssl.key.location": cfg.ssl_keyfile}
    c.update({k: v for k, v in optional.items() if v is not None})
    return c


#: rebalance errors of an offset commit: the partitions went to another member (or are about to)
_REBALANCE_ERRORS = ("REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID",
                     "FENCED_INSTANCE_ID", "_ASSIGNMENT_LOST", "_STATE")


class ConfluentConsumerLog(Consumer):
    """One member of a consumer group on one topic, on confluent-kafka; see the module doc."""

    def __init__(self, owner: KafkaLog, topic: str, group: str):
        ck = _confluent()
        self.ck = ck
        self.owner = owner
        self.topic = topic
        self.group = group
        self.generation = 0
        self._assignments = 0  # rebalance callbacks served (assign, revoke, lost)
        self._assigned: frozenset[int] = frozenset()
        #: the positions the last assignment (or seek_to_committed) set, per assigned partition
        self._starts: dict[int, int] = {}
        #: partition -> (checkpoint message offset, state offset, state) of assigned partitions with a state
        self._states: dict[int, tuple[int, int, bytes]] = {}
        self._committed: dict[int, int] = {}
        self._partitions: tuple[float, list[int]] = (0.0, [])
        self._error: str | None = None  # what makes the next poll fail (set by callbacks)
        self._reader: Any = None  # kafka-python client reading the group's committed offsets
        cfg = owner.cfg
        conf = confluent_config(cfg) | {
            "group.id": group, "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "isolation.level": "read_committed",
            "fetch.max.bytes": cfg.fetch_max_bytes, "max.partition.fetch.bytes": cfg.max_partition_fetch_bytes,
            "fetch.min.bytes": cfg.fetch_min_bytes, "fetch.wait.max.ms": cfg.fetch_max_wait_ms,
            # librdkafka wants room for a whole fetch response and messages no larger than a fetch
            "receive.message.max.bytes": max(100_000_000, cfg.fetch_max_bytes + 512),
            "message.max.bytes": min(1_000_000, cfg.fetch_max_bytes),
            "session.timeout.ms": cfg.session_timeout_ms, "heartbeat.interval.ms": cfg.heartbeat_interval_ms,
            "topic.metadata.refresh.interval.ms": 30_000,
            "error_cb": self._on_error, "logger": librdkafka_log,
        }
        if cfg.group_instance_id:  # static membership, as with kafka-python
            conf["group.instance.id"] = f"{cfg.group_instance_id}.{group}"
        try:
            self._consumer = ck.Consumer(conf)
        except ck.KafkaException as exc:
            raise LogError(f"cannot consume {topic!r} as {group!r}: {exc}") from exc
        try:
            # know the topic's partitions before joining (as the kafka-python consumer does): a
            # member that joins before its metadata has them is assigned nothing for a while
            deadline = time.monotonic() + 30
            while not self._topic_partitions(refresh=True) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not self._topic_partitions():
                # not joining keeps the role not ready, retrying, and saying why
                raise LogError(f"topic {topic!r} has no partitions yet (not created?); will try again")
            self._consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                     on_lost=self._on_revoke)
        except (ck.KafkaException, LogError) as exc:
            self.close()
            if isinstance(exc, LogError):
                raise
            raise LogError(f"cannot consume {topic!r} as {group!r}: {exc}") from exc
        self._watch = AssignmentWatch(owner, topic, group)
        log.info("%s: consuming with confluent-kafka %s (librdkafka %s)", group, ck.version(), ck.libversion()[0])

    # -- callbacks (served inside consume(), on the caller's thread) -----------------------
    def _on_error(self, err: Any) -> None:
        code = err.code()
        if err.fatal() or code == self.ck.KafkaError._ALL_BROKERS_DOWN:
            self._error = f"{err.name()}: {err.str()}"
        else:  # librdkafka reconnects and retries by itself
            log.debug("%s: Kafka client error %s", self.group, err)

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        parts = sorted(tp.partition for tp in partitions if tp.topic == self.topic)
        log.info("%s: partitions assigned %s", self.group, parts)
        self._assignments += 1
        try:
            starts = self._positions(parts)
            consumer.assign([self.ck.TopicPartition(self.topic, p, starts[p]) for p in parts])
        except Exception as exc:  # an exception must not escape into librdkafka
            # without positions no entry may be handed out: the next poll fails, the worker
            # drops this consumer and a new one is assigned afresh
            self._error = f"positioning {self.group}/{self.topic} failed: {exc}"
            consumer.assign(partitions)
            consumer.pause(partitions)
            return
        self._assigned = frozenset(parts)
        self._starts = starts

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        if partitions:
            log.info("%s: partitions revoked %s", self.group, sorted(tp.partition for tp in partitions))
        self._assignments += 1
        self._assigned = frozenset()
        self._starts = {}

    # -- positions and states ------------------------------------------------------------
    def _committed_metadata(self, partitions: Iterable[int]) -> dict[int, tuple[int, str | None]]:
        """partition -> (committed offset, its metadata) of the group, for partitions it committed.

        Asked through kafka-python (a client of the group that never joins it): confluent-kafka
        2.16 reads a committed offset's metadata past its end (librdkafka's copy of it is not
        NUL-terminated; a pointer came back with trailing bytes, or as undecodable UTF-8), and
        the pointer to the state must be exact. (It also commits the metadata with the NUL
        terminator: :func:`inferwatch.kafka_log._pointer` strips it.)"""
        partitions = list(partitions)
        if not partitions:
            return {}
        kafka = _kafka()
        out = {}
        try:
            if self._reader is None:
                self._reader = kafka.KafkaConsumer(**_client_config(self.owner.cfg), group_id=self.group,
                                                   enable_auto_commit=False)
            for p in partitions:
                om = self._reader.committed(kafka.TopicPartition(self.topic, p), metadata=True)
                if om is not None and om.offset >= 0:
                    out[p] = (int(om.offset), om.metadata)
        except kafka.errors.KafkaError as exc:
            raise LogError(f"committed offsets of {self.group}/{self.topic}: {exc}") from exc
        return out

    def _positions(self, parts: Iterable[int]) -> dict[int, int]:
        """Where each of ``parts`` is read from: its state's offset, else the committed one, else
        the start; keeps the states and the committed offsets."""
        parts = list(parts)
        committed = self._committed_metadata(parts)
        pointers = {p: ptr for p, (_, md) in committed.items() if (ptr := _pointer(md)) is not None}
        self._states = read_checkpoints(self.owner.cfg, self.group, self.topic, pointers)
        self._committed = {p: o for p, (o, _) in committed.items()}
        starts = {}
        for p in parts:
            if p in self._states:
                starts[p] = self._states[p][1]
            elif p in committed:
                starts[p] = committed[p][0]
            else:
                starts[p] = self.ck.OFFSET_BEGINNING
        return starts

    def _seek(self, starts: Mapping[int, int]) -> None:
        for p, o in starts.items():
            self._consumer.seek(self.ck.TopicPartition(self.topic, p, o))

    def assigned(self) -> frozenset[int]:
        return self._assigned

    def committed_state(self, partition: int = 0) -> bytes | None:
        if self.generation and partition in self._assigned:
            cached = self._states.get(partition)
            return cached[2] if cached else None
        try:
            committed = self._committed_metadata([partition]).get(partition)
        except self.ck.KafkaException as exc:
            raise LogError(f"reading the state of {self.group}/{self.topic} failed: {exc}") from exc
        ptr = _pointer(committed[1]) if committed is not None else None
        found = read_checkpoints(self.owner.cfg, self.group, self.topic, {partition: ptr} if ptr is not None else {})
        return found[partition][2] if partition in found else None

    def seek_to_committed(self) -> None:
        try:
            starts = self._positions(self._assigned)
            self._seek(starts)
        except self.ck.KafkaException as exc:
            raise LogError(f"positioning {self.group}/{self.topic} failed: {exc}") from exc
        self._starts = starts
        self.generation += 1

    # -- consuming ------------------------------------------------------------------------
    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[LogEntry]:
        ck = self.ck
        before = self._assignments
        consumer = self._consumer
        try:
            # librdkafka's consume() waits until it has ``max_records`` or the timeout passed; the
            # log's poll returns what there is as soon as there is something (as kafka-python's):
            # what is ready now, else the first entry within the timeout and what is ready after it
            msgs = consumer.consume(max_records, 0)
            if not msgs and timeout > 0:
                msgs = consumer.consume(1, timeout)
                if msgs and max_records > 1:
                    msgs += consumer.consume(max_records - 1, 0)
        except (ck.KafkaException, RuntimeError) as exc:  # RuntimeError: a closed consumer
            raise LogError(f"poll of {self.topic!r} failed: {exc}") from exc
        if self._error is not None:
            error, self._error = self._error, None
            raise LogError(f"poll of {self.group}/{self.topic} failed: {error}")
        if self._assignments != before:
            # (re)assigned within this consume: what it brought may come from the old positions;
            # every partition goes back to where the assignment put it, and is read again
            try:
                self._seek(self._starts)
            except ck.KafkaException as exc:
                raise LogError(f"positioning {self.group}/{self.topic} failed: {exc}") from exc
            self.generation += 1
            return []
        if not msgs:
            self._watch.check(bool(self._assigned))
        topic = self.topic
        out: list[LogEntry] = []
        append = out.append
        for m in msgs:
            if m.error() is not None:
                self._message_error(m)
                continue
            headers = m.headers()
            append(LogEntry(topic, m.partition(), m.offset(), m.key(), m.value(), m.timestamp()[1] / 1000.0,
                            _audit(headers) if headers else None))
        return out

    def _message_error(self, m: Any) -> None:
        err = m.error()
        if err.code() == self.ck.KafkaError._PARTITION_EOF:
            return
        raise LogError(f"poll of {self.group}/{self.topic} failed: {err.name()}: {err.str()}")

    def commit(self, entries: Sequence[LogEntry], states: Mapping[int, bytes] | None = None) -> None:
        ck = self.ck
        nxt: dict[int, int] = {}
        for e in entries:
            if e.offset + 1 > nxt.get(e.partition, -1):
                nxt[e.partition] = e.offset + 1
        states = states or {}
        if set(states) - set(nxt):
            raise ValueError(f"states of partitions {sorted(set(states) - set(nxt))} without entries to commit")
        gone = set(nxt) - self._assigned
        if gone:
            # taken away by a rebalance since they were polled: their new owner reads them again
            # from its own position; a commit (or a state) of ours could move it past them
            log.warning("%s: not committing partitions %s, no longer assigned", self.group, sorted(gone))
            nxt = {p: o for p, o in nxt.items() if p not in gone}
            states = {p: s for p, s in states.items() if p not in gone}
        if not nxt:
            return
        if states:  # the states first, durably; then the offsets that point to them
            written = self.owner.write_checkpoints(self.group, self.topic, nxt, states)
            self._states.update({p: (written[p], nxt[p], st) for p, st in states.items()})
        offsets = []
        for p, o in nxt.items():
            cached = self._states.get(p)  # a position-only commit keeps the pointer to the state
            offsets.append(ck.TopicPartition(self.topic, p, o, f"{_CP_POINTER}{cached[0]}" if cached else ""))
        try:
            result = self._consumer.commit(offsets=offsets, asynchronous=False)
            failed = [tp for tp in result or () if tp.error is not None]
            if failed:
                raise ck.KafkaException(failed[0].error)
        except ck.KafkaException as exc:
            err = exc.args[0] if exc.args else None
            name = err.name() if isinstance(err, ck.KafkaError) else ""
            if name in _REBALANCE_ERRORS:
                # the group rebalanced: these partitions belong to another member now, which resumes
                # from their last committed states; ours are repositioned (a new generation)
                log.warning("%s: commit failed after a rebalance (%s); entries will be re-read", self.group, exc)
                self.seek_to_committed()
                return
            raise LogError(f"commit of {self.group}/{self.topic} failed: {exc}") from exc
        self._committed.update(nxt)

    def _topic_partitions(self, refresh: bool = False) -> list[int]:
        at, parts = self._partitions
        if refresh or not parts or time.monotonic() - at > 30:
            try:
                md = self._consumer.list_topics(self.topic, timeout=10)
            except self.ck.KafkaException as exc:
                raise LogError(f"metadata of {self.topic!r}: {exc}") from exc
            t = md.topics.get(self.topic)
            parts = sorted(t.partitions) if t is not None and t.error is None else []
            self._partitions = (time.monotonic(), parts)
        return parts

    def lag(self) -> int:
        """Entries after the group's committed position. Assigned partitions need no round trip:
        the high-water marks (and log starts) the fetches already brought, and the committed
        offsets this member read at assignment or committed since (none there: the partition is
        read from its start). Other partitions' committed offsets are asked of the coordinator in
        one request, through this consumer (a second client made for it cost the role's loop
        0.4-0.9 s per topic and call, measured: the lag is read every 5 s)."""
        ck = self.ck
        try:
            parts = self._topic_partitions()
            others = [p for p in parts if p not in self._assigned]
            committed = dict(self._committed)
            if others:
                for tp in self._consumer.committed([ck.TopicPartition(self.topic, p) for p in others], timeout=10):
                    committed.pop(tp.partition, None)
                    if tp.error is None and tp.offset >= 0:
                        committed[tp.partition] = tp.offset
            total = 0
            for p in parts:
                tp = ck.TopicPartition(self.topic, p)
                marks = self._consumer.get_watermark_offsets(tp, cached=True) if p in self._assigned else None
                if not marks or min(marks) < 0:  # not fetched yet (or not ours): asked of the leader
                    marks = self._consumer.get_watermark_offsets(tp, timeout=10)
                    if not marks:
                        raise LogError(f"lag of {self.group}/{self.topic}: no watermarks of partition {p}")
                lo, hi = marks
                total += max(0, hi - max(lo, committed.get(p, lo)))
            return int(total)
        except ck.KafkaException as exc:
            raise LogError(f"lag of {self.group}/{self.topic} failed: {exc}") from exc

    def close(self) -> None:
        for client in (self._consumer, self._reader):
            if client is None:
                continue
            try:
                client.close()
            except Exception:  # closing must not mask the error that made us close
                log.debug("consumer close failed", exc_info=True)
        self._reader = None

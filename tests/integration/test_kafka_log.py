"""The Kafka log against the real broker: the same contract as the SQLite log, plus partitions,
keys and rebalances; each over both client libraries of its consumers (kafka-python, the
default, and confluent-kafka)."""

from __future__ import annotations

import uuid

import pytest

from inferwatch.config import KafkaConfig
from inferwatch.kafka_log import KafkaLog
from tests.contracts import KAFKA_CLIENTS, LogContract, _drain, _read_all

pytestmark = pytest.mark.integration


@pytest.fixture(params=KAFKA_CLIENTS)
def kafka_cfg(stack_env, request):
    """The stack's Kafka, with each client library behind the log's consumers."""
    return KafkaConfig(bootstrap_servers=stack_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"], partitions=3, linger_ms=1,
                       client=request.param)


class TestKafkaLog(LogContract):
    @pytest.fixture
    def log(self, kafka_cfg):
        lg = KafkaLog(kafka_cfg)
        yield lg
        lg.close()

    @pytest.fixture
    def topic(self, log):
        name = "iwt-" + uuid.uuid4().hex[:12]
        log.create_topics([name])
        yield name
        log.delete_topics([name])

    # one partition per key: order holds per key, so the contract's single-key ordering applies


def test_topics_created_with_partitions_and_retention(stack_env):
    cfg = KafkaConfig(bootstrap_servers=stack_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"], partitions=4,
                      retention_ms=3_600_000)
    lg = KafkaLog(cfg)
    name = "iwt-" + uuid.uuid4().hex[:12]
    try:
        lg.create_topics([name])
        lg.create_topics([name])  # idempotent
        (desc,) = lg.admin.describe_topics([name])
        assert len(desc["partitions"]) == 4
        from kafka.admin import ConfigResource, ConfigResourceType

        configs = lg.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name, ["retention.ms"])])
        text = str(configs)
        assert "retention.ms" in text and "3600000" in text
    finally:
        lg.delete_topics([name])
        lg.close()


def test_records_keyed_by_model_stay_in_order(kafka_cfg):
    lg = KafkaLog(kafka_cfg)
    name = "iwt-" + uuid.uuid4().hex[:12]
    lg.create_topics([name])
    try:
        items = [(f"model-{i % 5}".encode(), f"{i % 5}:{i}".encode()) for i in range(500)]
        lg.append(name, items)
        c = lg.consumer(name, "g-" + uuid.uuid4().hex)
        got = _drain(c, 500)
        assert len(got) == 500
        by_model: dict[bytes, list[int]] = {}
        partitions: dict[bytes, set[int]] = {}
        for e in got:
            by_model.setdefault(e.key, []).append(int(e.value.split(b":")[1]))
            partitions.setdefault(e.key, set()).add(e.partition)
        assert all(v == sorted(v) for v in by_model.values())
        assert all(len(p) == 1 for p in partitions.values())
        assert len({p for ps in partitions.values() for p in ps}) > 1  # models spread over partitions
        c.close()
    finally:
        lg.delete_topics([name])
        lg.close()


def test_rebalance_loses_nothing(kafka_cfg):
    """Two members of one group; the first dies without committing part of its batch: the
    survivor gets those partitions and re-reads the uncommitted entries."""
    lg = KafkaLog(kafka_cfg)
    name = "iwt-" + uuid.uuid4().hex[:12]
    lg.create_topics([name])
    group = "g-" + uuid.uuid4().hex
    try:
        lg.append(name, [(f"k{i}".encode(), str(i).encode()) for i in range(300)])
        a = lg.consumer(name, group)
        first = _drain(a, 50)
        a.commit(first[:20])  # processed 20, holds 30 uncommitted
        committed = {int(e.value) for e in first[:20]}
        b = lg.consumer(name, group)
        a.close()  # leaves the group: its partitions go to b
        seen: set[int] = set()
        for _ in range(200):
            batch = b.poll(100, timeout=0.5)
            seen |= {int(e.value) for e in batch}
            b.commit(batch)
            if committed | seen >= set(range(300)):
                break
        assert committed | seen == set(range(300))
        assert b.lag() == 0
        b.close()
    finally:
        lg.delete_topics([name])
        lg.close()


def test_the_consumers_run_on_the_configured_client(kafka_cfg):
    """``kafka.client`` picks the library behind the consumers (the contract above runs on it)."""
    lg = KafkaLog(kafka_cfg)
    name = "iwt-" + uuid.uuid4().hex[:12]
    lg.create_topics([name])
    try:
        c = lg.consumer(name, "g-" + uuid.uuid4().hex)
        library = type(c._consumer).__module__.split(".")[0]  # type: ignore[attr-defined]
        assert library == {"kafka-python": "kafka", "confluent": "cimpl"}.get(kafka_cfg.client, library + "?")
        c.close()
    finally:
        lg.delete_topics([name])
        lg.close()


def test_a_member_left_without_partitions_while_entries_wait_joins_anew(stack_env):
    """kafka-python: a member whose rejoin never completed (seen in fault runs: revoked, never
    assigned again, in a group of one) is made anew by its role once it has held nothing for
    ``kafka.unassigned_timeout_s`` while entries wait and the group's positions stand still; a
    member with nothing because the other member holds the only partition and keeps up (no lag)
    is left alone."""
    import time

    from inferwatch.errors import LogError

    cfg = KafkaConfig(bootstrap_servers=stack_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"], partitions=1,
                      linger_ms=1, unassigned_timeout_s=1.0)
    lg = KafkaLog(cfg)
    name = "iwt-" + uuid.uuid4().hex[:12]
    lg.create_topics([name])
    group = "g-" + uuid.uuid4().hex
    try:
        lg.append(name, [(b"k", str(i).encode()) for i in range(20)])
        # the other member holds the topic's one partition and commits what it reads
        a = lg.consumer(name, group)
        got = _drain(a, 20)
        a.commit(got)
        b = lg.consumer(name, group)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (b._consumer.assignment() or a._consumer.assignment()):
            a.poll(10, timeout=0.2)
            b.poll(10, timeout=0.2)
        members = (a, b)
        for _ in range(10):  # no lag: holding nothing is not a fault (> 1 s of polls; a rebalance
            for m in members:  # may move the partition between the two, so both poll and commit)
                m.commit(m.poll(10, timeout=0.1) or [])
        # (a backlog the holder works through, positions moving at each look: tests/unit/test_assignment_watch.py)
        # a stuck member, as kafka-python leaves one: revoked (the listener told) at the start of a
        # rejoin that never completes; its client gives nothing and, until a join completes, still
        # lists the old partitions in assignment()
        b.close()
        busy_member = a
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not busy_member._held:
            busy_member.commit(busy_member.poll(10, timeout=0.2) or [])
        assert busy_member._held and busy_member._consumer.assignment()
        held = set(busy_member._consumer.assignment())
        busy_member._consumer._subscription.rebalance_listener.on_partitions_revoked(held)
        busy_member._consumer.poll = lambda **_: {}  # type: ignore[method-assign]
        assert busy_member._consumer.assignment() == held
        lg.append(name, [(b"k", b"late")])
        with pytest.raises(LogError, match="joining the group anew"):
            for _ in range(50):
                busy_member._watch.next_lag_check = 0.0  # a look at every poll: the second one sees no move
                busy_member.poll(10, timeout=0.0)
                time.sleep(0.1)
        busy_member.close()
    finally:
        lg.delete_topics([name])
        lg.close()


def test_a_group_changes_client_library_between_restarts(stack_env):
    """Both clients keep a group's offsets, commit metadata and checkpoints the same way: a group
    that stops on one client and restarts on the other resumes each partition from its state's
    position with that state, and back."""
    bootstrap = stack_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"]
    logs = {client: KafkaLog(KafkaConfig(bootstrap_servers=bootstrap, partitions=3, linger_ms=1, client=client))
            for client in KAFKA_CLIENTS}
    first, second = KAFKA_CLIENTS
    name = "iwt-" + uuid.uuid4().hex[:12]
    group = "g-" + uuid.uuid4().hex
    logs[first].create_topics([name])
    try:
        logs[first].append(name, [(f"k{i}".encode(), str(i).encode()) for i in range(60)])
        c = logs[first].consumer(name, group)
        entries = _drain(c, 60)
        assert sorted(int(e.value) for e in entries) == list(range(60))
        halves: dict[int, list] = {}
        for e in entries:
            halves.setdefault(e.partition, []).append(e)
        assert len(halves) > 1
        for p, es in halves.items():  # a state after the first half, the rest committed without one
            c.commit(es[: len(es) // 2], states={p: f"{first}-{p}".encode()})
            c.commit(es[len(es) // 2:])
        c.close()

        c = logs[second].consumer(name, group)
        got = _drain(c, sum(len(es) - len(es) // 2 for es in halves.values()))
        assert {p: c.committed_state(p) for p in halves} == {p: f"{first}-{p}".encode() for p in halves}
        assert {p: sorted(int(e.value) for e in got if e.partition == p) for p in halves} == \
            {p: sorted(int(e.value) for e in es[len(es) // 2:]) for p, es in halves.items()}
        assert c.lag() == 0
        c.commit(got, states={p: f"{second}-{p}".encode() for p in halves})
        c.close()

        c = logs[first].consumer(name, group)
        assert _read_all(c) == []
        assert {p: c.committed_state(p) for p in halves} == {p: f"{second}-{p}".encode() for p in halves}
        c.close()
    finally:
        logs[first].delete_topics([name])
        for lg in logs.values():
            lg.close()


def test_a_confluent_member_left_without_partitions_while_entries_wait_joins_anew(stack_env):
    """The same watch on the confluent-kafka consumer: a member its client gives nothing (no
    assignment) while entries wait raises LogError after ``kafka.unassigned_timeout_s``; while it
    holds its partitions and keeps up, it does not."""
    import time

    from inferwatch.errors import LogError

    cfg = KafkaConfig(bootstrap_servers=stack_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"], partitions=1,
                      linger_ms=1, unassigned_timeout_s=1.0, client="confluent")
    lg = KafkaLog(cfg)
    name = "iwt-" + uuid.uuid4().hex[:12]
    lg.create_topics([name])
    try:
        lg.append(name, [(b"k", str(i).encode()) for i in range(20)])
        c = lg.consumer(name, "g-" + uuid.uuid4().hex)
        c.commit(_drain(c, 20))
        for _ in range(15):  # assigned and caught up: polls that bring nothing are no fault (> 1 s)
            assert c.poll(10, timeout=0.1) == []
        # a stuck member: its client assigns it nothing and gives it nothing while entries wait
        c._on_revoke(c._consumer, [])  # type: ignore[attr-defined]
        c._consumer = _Silent(c._consumer)  # type: ignore[attr-defined]
        lg.append(name, [(b"k", b"late")])
        with pytest.raises(LogError, match="joining the group anew"):
            for _ in range(50):
                c._watch.next_lag_check = 0.0  # type: ignore[attr-defined]
                c.poll(10, timeout=0.0)
                time.sleep(0.1)
        c.close()
    finally:
        lg.delete_topics([name])
        lg.close()


class _Silent:
    """A confluent consumer that hands out nothing (closing still reaches the real one)."""

    def __init__(self, real):
        self.real = real

    def consume(self, *a, **k):
        return []

    def close(self):
        self.real.close()


class _CountingAsks:
    """A confluent consumer that counts the watermark queries sent to the leader."""

    def __init__(self, real):
        self.real, self.asked = real, 0

    def get_watermark_offsets(self, tp, cached=False, timeout=None):
        if not cached:
            self.asked += 1
            return self.real.get_watermark_offsets(tp, timeout=timeout)
        return self.real.get_watermark_offsets(tp, cached=True)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_the_confluent_lag_of_fetched_partitions_is_exact_without_asking_the_leader(stack_env):
    """The lag of partitions this member holds and has fetched comes from the marks the fetches
    brought and the positions it committed: exact, and no watermark query (a query waits behind
    the consumer's fetch in flight, up to fetch.wait.max.ms a partition, in the audit role's loop;
    the role reads its first lag 5 s after it starts, when the fetches have brought the marks)."""
    cfg = KafkaConfig(bootstrap_servers=stack_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"], partitions=3,
                      linger_ms=1, client="confluent")
    lg = KafkaLog(cfg)
    name = "iwt-" + uuid.uuid4().hex[:12]
    lg.create_topics([name])
    try:
        lg.append(name, [(f"k{i}".encode(), str(i).encode()) for i in range(9)])
        c = lg.consumer(name, "g-" + uuid.uuid4().hex)
        got = _drain(c, 9)
        assert len(got) == 9 and len({e.partition for e in got}) > 1
        c.commit(got[:4])  # each partition's entries come in order: 4 committed, 5 after them
        c._consumer = counting = _CountingAsks(c._consumer)  # type: ignore[attr-defined]
        assert c.lag() == 5 and counting.asked == 0
        c.commit(got)
        assert c.lag() == 0 and counting.asked == 0
        c._consumer = counting.real  # type: ignore[attr-defined]
        c.close()
    finally:
        lg.delete_topics([name])
        lg.close()

"""The embedded log's positions, states and counts (inferwatch/sqlite_log.py): the cases
`make mutation` showed no test held. Each expectation follows from the log's documented
semantics (inferwatch/log.py): positions are the next offset to read, a state is stored with
the position after its entries, a position-only commit keeps the state and its position."""

from __future__ import annotations

import sqlite3
import time

import pytest

from inferwatch.errors import LogError
from inferwatch.log import LogEntry
from inferwatch.sqlite_log import SQLiteLog

# each test reads a few rows of a local file in milliseconds; a poll that never returns fails in
# 30 s rather than at the suite's 300 s (the mutation run's poll mutants that loop forever)
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def log(tmp_path):
    lg = SQLiteLog(tmp_path / "log.db")
    yield lg
    lg.close()


def _fill(log, topic, n, start=0):
    log.append(topic, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(start, start + n)])


def test_entries_carry_topic_partition_offset_key_value_and_append_time(log):
    before = time.time()
    log.append("t", [(b"k", b"v"), (None, b"w")])
    after = time.time()
    c = log.consumer("t", "g")
    got = c.poll(10)
    assert [(e.topic, e.partition, e.key, e.value) for e in got] == [("t", 0, b"k", b"v"), ("t", 0, None, b"w")]
    assert got[1].offset == got[0].offset + 1
    assert all(before <= e.timestamp <= after for e in got)
    assert c.assigned() == frozenset({0})
    assert c.poll(10) == []  # nothing new: an empty poll (timeout 0) returns at once
    c.close()


def test_an_empty_append_writes_nothing(log):
    log.append("t", [])
    assert log.size("t") == 0


def test_size_counts_one_topic(log):
    _fill(log, "a", 3)
    _fill(log, "b", 2)
    assert (log.size("a"), log.size("b"), log.size("c")) == (3, 2, 0)


def test_poll_reads_at_most_max_records_in_order(log):
    _fill(log, "t", 7)
    c = log.consumer("t", "g")
    assert [e.value for e in c.poll(3)] == [b"v0", b"v1", b"v2"]
    assert [e.value for e in c.poll(3)] == [b"v3", b"v4", b"v5"]
    assert [e.value for e in c.poll(3)] == [b"v6"]
    c.close()


def test_poll_without_a_limit_reads_the_consumer_protocol_default(log):
    """The default batch is the one every log's consumer declares (inferwatch.log.Consumer.poll)."""
    import inspect

    from inferwatch.log import Consumer

    default = inspect.signature(Consumer.poll).parameters["max_records"].default
    _fill(log, "t", default + 1)
    c = log.consumer("t", "g")
    assert len(c.poll()) == default
    assert [e.value for e in c.poll()] == [f"v{default}".encode()]
    c.close()


def test_group_lag_counts_from_the_committed_position_per_group_and_topic(log):
    _fill(log, "t", 5)
    _fill(log, "u", 4)
    assert log.group_lag("t", "g") == 5  # never committed: everything
    c = log.consumer("t", "g")
    got = c.poll(10)
    assert c.lag() == 5  # read is not committed
    c.commit(got[:2])
    assert (log.group_lag("t", "g"), c.lag()) == (3, 3)
    assert log.group_lag("u", "g") == 4 and log.group_lag("t", "other") == 5
    c.commit([got[4], got[3]])  # entries in any order: the position is after the largest offset
    assert (log.group_lag("t", "g"), c.lag()) == (0, 0)
    c.close()


def test_reset_group_replays_that_group_on_that_topic_only(log):
    _fill(log, "t", 3)
    _fill(log, "u", 3)
    for topic in ("t", "u"):
        for group in ("g", "h"):
            c = log.consumer(topic, group)
            c.commit(c.poll(10))
            c.close()
    log.reset_group("t", "g")
    assert [log.group_lag(t, g) for t in ("t", "u") for g in ("g", "h")] == [3, 0, 0, 0]
    c = log.consumer("t", "g")
    assert [e.value for e in c.poll(10)] == [b"v0", b"v1", b"v2"]
    c.close()


def test_committed_state_of_partition_0_only(log):
    _fill(log, "t", 2)
    c = log.consumer("t", "g")
    assert c.committed_state() is None and c.committed_state(0) is None
    got = c.poll(10)
    c.commit(got, {0: b"S"})
    assert c.committed_state() == b"S" and c.committed_state(0) == b"S"
    assert c.committed_state(1) is None
    with pytest.raises(ValueError, match=r"partition 0 only, not \[1, 2\]"):
        c.commit(got, {0: b"x", 2: b"y", 1: b"z"})
    with pytest.raises(ValueError, match=r"^a state is stored with the position after its partition's entries: "
                                         r"none given$"):
        c.commit([], {0: b"x"})
    c.commit([])  # nothing to commit: nothing changes
    assert c.committed_state() == b"S" and c.lag() == 0
    c.close()


def test_seek_to_committed_counts_generations_and_returns_to_the_state(log):
    _fill(log, "t", 6)
    c = log.consumer("t", "g")
    assert c.generation == 1
    got = c.poll(10)
    c.commit(got[:2], {0: b"S"})
    c.commit(got[:4])  # position only: the state and its position stay
    c.seek_to_committed()
    assert c.generation == 2
    assert [e.value for e in c.poll(10)] == [b"v2", b"v3", b"v4", b"v5"]
    c.seek_to_committed()
    assert c.generation == 3
    c.close()


def test_a_log_made_before_states_had_their_position_is_upgraded(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, key BLOB,
                              value BLOB NOT NULL, ts REAL NOT NULL);
        CREATE TABLE offsets (grp TEXT NOT NULL, topic TEXT NOT NULL, next_seq INTEGER NOT NULL, state BLOB,
                              updated REAL NOT NULL, PRIMARY KEY (grp, topic));
        INSERT INTO entries(topic, key, value, ts) VALUES ('t', NULL, 'a', 0), ('t', NULL, 'b', 0), ('t', NULL, 'c', 0);
        INSERT INTO offsets VALUES ('g', 't', 3, X'4F4C44', 0);  -- state b"OLD"
    """)
    conn.commit()
    conn.close()
    lg = SQLiteLog(path)
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(offsets)")}
    assert "state_seq" in columns
    c = lg.consumer("t", "g")
    # a state stored without its position resumes at the committed one
    # (seqs start at 1: next_seq 3 is the third entry)
    assert c.committed_state() == b"OLD" and [e.offset for e in c.poll(10)] == [3]
    c.close()
    lg.close()
    SQLiteLog(path).close()  # opening an upgraded log again changes nothing


def test_a_log_that_cannot_be_upgraded_is_a_log_error(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE offsets (grp TEXT, topic TEXT, next_seq INTEGER, state BLOB, updated REAL);")
    conn.close()
    import inferwatch.sqlite_log as mod

    real = mod.open_db

    class Conn:
        def __init__(self, inner):
            self.inner = inner

        def execute(self, sql, *args):
            if sql.startswith("ALTER TABLE offsets ADD COLUMN state_seq"):
                raise sqlite3.OperationalError("database is locked")
            return self.inner.execute(sql, *args)

    monkeypatch.setattr(mod, "open_db", lambda *a: Conn(real(*a)))
    with pytest.raises(LogError, match=r"cannot upgrade the log .*old\.db: database is locked"):
        SQLiteLog(path)


def test_an_upgrade_raced_by_another_process_is_fine(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE offsets (grp TEXT, topic TEXT, next_seq INTEGER, state BLOB, updated REAL);")
    conn.close()
    import inferwatch.sqlite_log as mod

    real = mod.open_db

    class Conn:
        def __init__(self, inner):
            self.inner = inner

        def execute(self, sql, *args):
            if sql.startswith("ALTER TABLE offsets ADD COLUMN state_seq"):
                self.inner.execute(sql, *args)  # the other process's upgrade
                raise sqlite3.OperationalError("duplicate column name: state_seq")
            return self.inner.execute(sql, *args)

        def close(self):
            self.inner.close()

    monkeypatch.setattr(mod, "open_db", lambda *a: Conn(real(*a)))
    SQLiteLog(path).close()


def test_database_errors_are_log_errors_naming_what_failed(log):
    _fill(log, "t", 1)
    c = log.consumer("t", "g")
    got = c.poll(1)
    c._conn.execute("DROP TABLE offsets")
    with pytest.raises(LogError, match=r"^reading the position of g/t failed: no such table: offsets$"):
        c.seek_to_committed()
    with pytest.raises(LogError, match=r"^commit of g/t failed: no such table: offsets$"):
        c.commit(got)
    c._conn.execute("DROP TABLE entries")
    with pytest.raises(LogError, match=r"^poll of 't' failed: no such table: entries$"):
        c.poll(1)
    with pytest.raises(LogError, match=r"^append to 't' failed: no such table: entries$"):
        log.append("t", [(None, b"x")])
    c.close()


def test_entry_fields_have_their_types(log):
    log.append("t", [(b"k", b"v")])
    c = log.consumer("t", "g")
    (e,) = c.poll(1)
    assert isinstance(e, LogEntry) and type(e.offset) is int and type(e.timestamp) is float
    c.close()


def test_a_file_that_is_not_a_log_is_a_log_error_naming_it(tmp_path):
    """open_db's contract: failures raise the caller's error naming what was opened."""
    bad = tmp_path / "not-a-log.db"
    bad.write_bytes(b"this is not an SQLite database, not even its header" * 100)
    with pytest.raises(LogError, match=r"^cannot open SQLite log .*not-a-log\.db: "):
        SQLiteLog(bad)


def test_poll_waits_up_to_its_timeout_and_returns_as_soon_as_entries_arrive(log):
    """The consumer protocol's poll: up to ``max_records`` entries, waiting up to ``timeout``
    seconds (default: the protocol's, 0 — an empty poll returns at once). Entries appended
    during the wait are returned when they arrive, not at the deadline."""
    import inspect
    import threading

    from inferwatch.log import Consumer

    assert inspect.signature(Consumer.poll).parameters["timeout"].default == 0.0
    c = log.consumer("t", "g")
    t0 = time.monotonic()
    assert c.poll() == []
    assert time.monotonic() - t0 < 0.5  # no wait at all, with room for a loaded machine
    t0 = time.monotonic()
    assert c.poll(10, timeout=0.3) == []
    assert time.monotonic() - t0 >= 0.3  # an empty poll waits its whole timeout
    writer = SQLiteLog(log.path)
    timer = threading.Timer(0.2, lambda: writer.append("t", [(b"k", b"late")]))
    t0 = time.monotonic()
    timer.start()
    try:
        got = c.poll(10, timeout=10.0)
    finally:
        timer.join()
        writer.close()
    waited = time.monotonic() - t0
    assert [e.value for e in got] == [b"late"]
    assert 0.2 <= waited < 0.9  # seen within a few of the poll's short naps, far before the deadline
    c.close()

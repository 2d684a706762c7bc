"""The record log: an append-only, partitioned sequence of messages with consumer groups.

Two implementations share this interface: :class:`SQLiteLog` (the embedded default, one
file, WAL mode) and ``inferwatch.kafka_log.KafkaLog`` (Apache Kafka). Everything above the
log is written once against :class:`Log` and :class:`Consumer`.

Semantics both implementations keep:

* ``append`` returns only after the messages are durable (SQLite: committed with
  ``synchronous=FULL``; Kafka: acknowledged by all in-sync replicas).
* each consumer group has its own committed position per partition; ``commit`` moves it
  to just past the given entries, and only the caller decides when (after its sink has
  durably taken the batch). A consumer that dies before committing re-reads the batch.
* ``commit(entries, state=...)`` stores an opaque state blob (a detector's open windows)
  atomically with the position, so a restart resumes both together.

>>> import tempfile, os
>>> log = SQLiteLog(os.path.join(tempfile.mkdtemp(), "log.db"))
>>> log.append("t", [(b"k", b"hello"), (None, b"world")])
>>> c = log.consumer("t", "g")
>>> batch = c.poll()
>>> [e.value for e in batch], c.lag()
([b'hello', b'world'], 2)
>>> c.commit(batch)
>>> c.lag()
0
"""

from __future__ import annotations

import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferwatch.errors import LogError

__all__ = ["Consumer", "Log", "LogEntry", "SQLiteLog"]

KeyValue = tuple[bytes | None, bytes]


@dataclass(slots=True, frozen=True)
class LogEntry:
    """One message read from the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: float


class Consumer(ABC):
    """Reads one topic as a member of a consumer group."""

    topic: str
    group: str

    @abstractmethod
    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[LogEntry]:
        """Up to ``max_records`` entries after the current position (waits up to ``timeout`` s)."""

    @abstractmethod
    def commit(self, entries: Sequence[LogEntry], state: bytes | None = None) -> None:
        """Durably move the group's position past ``entries`` (and store ``state`` with it)."""

    @abstractmethod
    def committed_state(self) -> bytes | None:
        """The state blob stored by the last ``commit`` of this group, if any."""

    @abstractmethod
    def seek_to_committed(self) -> None:
        """Forget uncommitted progress: the next poll re-reads from the committed position."""

    @abstractmethod
    def lag(self) -> int:
        """Messages in the topic after the group's committed position."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Log(ABC):
    """An append-only log of topics."""

    @abstractmethod
    def create_topics(self, topics: Iterable[str]) -> None:
        """Create topics that do not exist yet (idempotent)."""

    @abstractmethod
    def append(self, topic: str, items: Sequence[KeyValue]) -> None:
        """Append ``(key, value)`` messages; returns once they are durable."""

    @abstractmethod
    def consumer(self, topic: str, group: str) -> Consumer:
        """A consumer of ``topic`` in ``group``, positioned at the group's committed offset."""

    @abstractmethod
    def size(self, topic: str) -> int:
        """Number of messages ever appended to ``topic`` (retained ones, for Kafka)."""

    @abstractmethod
    def group_lag(self, topic: str, group: str) -> int:
        """Messages after ``group``'s committed position, asked without joining the group."""

    @abstractmethod
    def reset_group(self, topic: str, group: str) -> None:
        """Move ``group`` back to the start of ``topic`` and drop its state: a full replay.
        Stop the group's consumers first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key BLOB,
    value BLOB NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_topic_seq ON entries(topic, seq);
CREATE TABLE IF NOT EXISTS topics (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS offsets (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    next_seq INTEGER NOT NULL,
    state BLOB,
    updated REAL NOT NULL,
    PRIMARY KEY (grp, topic)
);
"""


def connect(path: str | Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """A SQLite connection in WAL mode, safe for one writer and many reader processes."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def open_db(path: str | Path, schema: str, error: type[Exception], what: str) -> sqlite3.Connection:
    """:func:`connect` and create ``schema``; failures raise ``error`` naming ``what``."""
    try:
        conn = connect(path)
        conn.executescript(schema)
    except sqlite3.Error as exc:
        raise error(f"cannot open SQLite {what} {path}: {exc}") from exc
    return conn


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SQLiteLog(Log):
    """The embedded log: one SQLite table used as an append-only log (single partition 0).

    Offsets are the table's ``seq`` values; the committed position of a group is the next
    ``seq`` to read. Appends run in one transaction each, so a reader never sees a gap.
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn = open_db(self.path, _SCHEMA, LogError, "log")

    def create_topics(self, topics: Iterable[str]) -> None:
        with self._lock:
            self._conn.executemany(
                "INSERT OR IGNORE INTO topics(name) VALUES (?)", [(t,) for t in topics]
            )

    def append(self, topic: str, items: Sequence[KeyValue]) -> None:
        if not items:
            return
        now = time.time()
        try:
            with self._lock, immediate(self._conn) as conn:
                conn.executemany(
                    "INSERT INTO entries(topic, key, value, ts) VALUES (?, ?, ?, ?)",
                    [(topic, k, v, now) for k, v in items],
                )
        except sqlite3.Error as exc:
            raise LogError(f"append to {topic!r} failed: {exc}") from exc

    def consumer(self, topic: str, group: str) -> SQLiteConsumer:
        return SQLiteConsumer(self, topic, group)

    def size(self, topic: str) -> int:
        with self._lock:
            (n,) = self._conn.execute("SELECT count(*) FROM entries WHERE topic=?", (topic,)).fetchone()
        return int(n)

    def group_lag(self, topic: str, group: str) -> int:
        with self._lock:
            row = self._conn.execute("SELECT next_seq FROM offsets WHERE grp=? AND topic=?",
                                     (group, topic)).fetchone()
            (n,) = self._conn.execute("SELECT count(*) FROM entries WHERE topic=? AND seq>=?",
                                      (topic, int(row[0]) if row else 0)).fetchone()
        return int(n)

    def reset_group(self, topic: str, group: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM offsets WHERE grp=? AND topic=?", (group, topic))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class SQLiteConsumer(Consumer):
    """A consumer group member on a :class:`SQLiteLog` (its own connection)."""

    def __init__(self, log: SQLiteLog, topic: str, group: str):
        self.topic = topic
        self.group = group
        self._conn = connect(log.path)
        self._conn.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._position = self._committed()

    def _execute(self, sql: str, args: tuple[object, ...]) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _committed(self) -> int:
        row = self._execute(
            "SELECT next_seq FROM offsets WHERE grp=? AND topic=?", (self.group, self.topic)
        )
        return int(row[0][0]) if row else 0

    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[LogEntry]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                rows = self._execute(
                    "SELECT seq, key, value, ts FROM entries WHERE topic=? AND seq>=? ORDER BY seq LIMIT ?",
                    (self.topic, self._position, max_records),
                )
            except sqlite3.Error as exc:
                raise LogError(f"poll of {self.topic!r} failed: {exc}") from exc
            if rows or time.monotonic() >= deadline:
                break
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        if rows:
            self._position = int(rows[-1][0]) + 1
        return [LogEntry(self.topic, 0, int(s), k, v, float(ts)) for s, k, v, ts in rows]

    def commit(self, entries: Sequence[LogEntry], state: bytes | None = None) -> None:
        if not entries and state is None:
            return
        nxt = max((e.offset for e in entries), default=self._committed() - 1) + 1
        try:
            self._execute(
                "INSERT INTO offsets(grp, topic, next_seq, state, updated) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(grp, topic) DO UPDATE SET next_seq=excluded.next_seq, "
                "state=coalesce(excluded.state, offsets.state), updated=excluded.updated",
                (self.group, self.topic, nxt, state, time.time()),
            )
        except sqlite3.Error as exc:
            raise LogError(f"commit of {self.group}/{self.topic} failed: {exc}") from exc

    def committed_state(self) -> bytes | None:
        row = self._execute(
            "SELECT state FROM offsets WHERE grp=? AND topic=?", (self.group, self.topic)
        )
        return bytes(row[0][0]) if row and row[0][0] is not None else None

    def seek_to_committed(self) -> None:
        self._position = self._committed()

    def lag(self) -> int:
        ((n,),) = self._execute(
            "SELECT count(*) FROM entries WHERE topic=? AND seq>=?", (self.topic, self._committed())
        )
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

"""The embedded log: one SQLite table used as an append-only log with consumer groups (WAL mode).

See :mod:`inferwatch.log` for the semantics every log keeps. A group's row in ``offsets`` holds
its committed position (``next_seq``) and, with a state, the position stored with that state
(``state_seq``): a stateful consumer resumes from ``state_seq``, so a position-only commit after
a stateful one never makes it skip what the state has not seen.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from inferwatch.errors import LogError
from inferwatch.log import Consumer, KeyValue, Log, LogEntry
from inferwatch.sqlite import connect, immediate, open_db

__all__ = ["SQLiteConsumer", "SQLiteLog"]

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
    state_seq INTEGER,
    updated REAL NOT NULL,
    PRIMARY KEY (grp, topic)
);
"""


class SQLiteLog(Log):
    """The embedded log: one SQLite table used as an append-only log (single partition 0).

    Offsets are the table's ``seq`` values; the committed position of a group is the next
    ``seq`` to read. Appends run in one transaction each, so a reader never sees a gap.
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn = open_db(self.path, _SCHEMA, LogError, "log")
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(offsets)")}
        if "state_seq" not in columns:  # a log made before states kept their own position
            try:
                self._conn.execute("ALTER TABLE offsets ADD COLUMN state_seq INTEGER")
            except sqlite3.OperationalError as exc:  # another process added it meanwhile
                if "duplicate column" not in str(exc):
                    raise LogError(f"cannot upgrade the log {self.path}: {exc}") from exc

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
                    [(topic, item[0], item[1], now) for item in items],  # an audit part is not kept
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
    """A consumer group member on a :class:`SQLiteLog` (its own connection). The log has one
    partition, 0, always assigned to every member."""

    def __init__(self, log: SQLiteLog, topic: str, group: str):
        self.topic = topic
        self.group = group
        self._conn = connect(log.path)
        self._conn.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._position = self._resume_position()
        self.generation = 1

    def _execute(self, sql: str, args: tuple[object, ...]) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _row(self) -> tuple[int, bytes | None, int | None] | None:
        """(committed position, state, the state's position) of the group, if it committed."""
        try:
            row = self._execute("SELECT next_seq, state, state_seq FROM offsets WHERE grp=? AND topic=?",
                                (self.group, self.topic))
        except sqlite3.Error as exc:
            raise LogError(f"reading the position of {self.group}/{self.topic} failed: {exc}") from exc
        if not row:
            return None
        nxt, state, state_seq = row[0]
        return int(nxt), None if state is None else bytes(state), None if state_seq is None else int(state_seq)

    def _committed(self) -> int:
        row = self._row()
        return row[0] if row else 0

    def _resume_position(self) -> int:
        """Where reading resumes: the position stored with the state, else the committed one (a
        state stored before states kept their position resumes at the committed one)."""
        row = self._row()
        if row is None:
            return 0
        nxt, state, state_seq = row
        return state_seq if state is not None and state_seq is not None else nxt

    def assigned(self) -> frozenset[int]:
        return frozenset((0,))

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

    def commit(self, entries: Sequence[LogEntry], states: Mapping[int, bytes] | None = None) -> None:
        states = states or {}
        if set(states) - {0}:
            raise ValueError(f"the SQLite log has partition 0 only, not {sorted(set(states) - {0})}")
        state = states.get(0)
        if state is not None and not entries:
            raise ValueError("a state is stored with the position after its partition's entries: none given")
        if not entries:
            return
        nxt = max(e.offset for e in entries) + 1
        try:
            # a position-only commit keeps the earlier state and the position stored with it
            self._execute(
                "INSERT INTO offsets(grp, topic, next_seq, state, state_seq, updated) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(grp, topic) DO UPDATE SET next_seq=excluded.next_seq, "
                "state_seq=CASE WHEN excluded.state IS NULL THEN offsets.state_seq ELSE excluded.state_seq END, "
                "state=coalesce(excluded.state, offsets.state), updated=excluded.updated",
                (self.group, self.topic, nxt, state, None if state is None else nxt, time.time()),
            )
        except sqlite3.Error as exc:
            raise LogError(f"commit of {self.group}/{self.topic} failed: {exc}") from exc

    def committed_state(self, partition: int = 0) -> bytes | None:
        row = self._row() if partition == 0 else None
        return row[1] if row else None

    def seek_to_committed(self) -> None:
        self._position = self._resume_position()
        self.generation += 1

    def lag(self) -> int:
        ((n,),) = self._execute(
            "SELECT count(*) FROM entries WHERE topic=? AND seq>=?", (self.topic, self._committed())
        )
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

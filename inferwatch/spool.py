"""A bounded disk queue: what a way in keeps while the log is unreachable, in order, until drained.

One SQLite file (WAL). :meth:`Spool.put` appends items (topic, key, value) durably and refuses
what would take it over ``max_bytes``; the refused count is returned, so the caller can count it
in a metric and an error log: nothing is dropped silently. :meth:`Spool.peek` reads the oldest
items, :meth:`Spool.ack` deletes them once the log has them. Items survive restarts.

>>> import tempfile, os
>>> s = Spool(os.path.join(tempfile.mkdtemp(), "spool.db"), max_bytes=40)
>>> s.put([("t", b"k", b"0123456789"), ("t", b"k", b"abcdefghij")])  # 11 bytes each: both fit
0
>>> s.put([("t", b"k", b"x" * 30)])  # would exceed 40 bytes: refused
1
>>> [v for _, _, _, v in s.peek(10)]
[b'0123456789', b'abcdefghij']
>>> s.ack(s.peek(1)[-1][0]); len(s), s.bytes
(1, 11)
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

__all__ = ["Spool"]

Item = tuple[str, bytes, bytes]


class Spool:
    """A durable FIFO of (topic, key, value) bounded by total key+value bytes."""

    def __init__(self, path: str | Path, max_bytes: int = 256 * 1024 * 1024) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "topic TEXT NOT NULL, key BLOB, value BLOB NOT NULL, size INTEGER NOT NULL)")
        row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM spool").fetchone()
        self._count, self.bytes = int(row[0]), int(row[1])

    def __len__(self) -> int:
        return self._count

    def put(self, items: Sequence[Item]) -> int:
        """Append ``items`` in order; returns how many were refused for lack of room."""
        rows = []
        refused = 0
        with self._lock:
            room = self.max_bytes - self.bytes
            for topic, key, value in items:
                size = len(key or b"") + len(value)
                if size > room:
                    refused += 1
                    continue
                room -= size
                rows.append((topic, key, value, size))
            if rows:
                with self._tx():
                    self._db.executemany("INSERT INTO spool (topic, key, value, size) VALUES (?, ?, ?, ?)", rows)
                self._count += len(rows)
                self.bytes += sum(r[3] for r in rows)
        return refused

    def peek(self, n: int) -> list[tuple[int, str, bytes, bytes]]:
        """The oldest ``n`` items as (seq, topic, key, value)."""
        with self._lock:
            return [(int(s), str(t), bytes(k or b""), bytes(v)) for s, t, k, v in self._db.execute(
                "SELECT seq, topic, key, value FROM spool ORDER BY seq LIMIT ?", (n,))]

    def ack(self, upto_seq: int) -> None:
        """Delete every item up to and including ``upto_seq`` (they are on the log)."""
        with self._lock, self._tx():
            row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM spool WHERE seq <= ?",
                                   (upto_seq,)).fetchone()
            self._db.execute("DELETE FROM spool WHERE seq <= ?", (upto_seq,))
            self._count -= int(row[0])
            self.bytes -= int(row[1])

    def _tx(self) -> _Tx:
        return _Tx(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")

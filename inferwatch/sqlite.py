"""SQLite helpers shared by the embedded log and the embedded audit store: connections in WAL
mode, schema creation with errors of our tree, and one write-transaction context."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["connect", "immediate", "open_db"]


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

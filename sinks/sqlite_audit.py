"""The embedded audit store: SQLite, one row per audit document, FTS5 over the payload text."""

from __future__ import annotations

import itertools
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from inferwatch.audit import AuditStore, SearchQuery, outlier_documents, record_documents
from inferwatch.batching import BatchingSink, Settled, WriteAction
from inferwatch.errors import AuditStoreError, BackpressureError
from inferwatch.record import DeadLetter, Detection, InferenceRecord, parse_timestamp
from inferwatch.sqlite import immediate, open_db

__all__ = ["SQLiteAuditStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    doc_id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    row INTEGER NOT NULL,
    model TEXT,
    version TEXT,
    ts REAL,
    doc BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_record_id ON records(record_id);
CREATE INDEX IF NOT EXISTS records_model_ts ON records(model, version, ts);
CREATE INDEX IF NOT EXISTS records_ts ON records(ts);
CREATE VIRTUAL TABLE IF NOT EXISTS records_fts USING fts5(text, tokenize='unicode61');
CREATE TABLE IF NOT EXISTS detections (
    id TEXT PRIMARY KEY,
    detector TEXT, kind TEXT, model TEXT, version TEXT,
    ts REAL, is_drift INTEGER, is_outlier INTEGER,
    doc BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS detections_model_ts ON detections(model, ts);
CREATE TABLE IF NOT EXISTS deadletters (
    id TEXT PRIMARY KEY,
    source TEXT, reason TEXT, stage TEXT, ts REAL,
    raw BLOB NOT NULL,
    doc BLOB NOT NULL
);
"""


def _json(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def _epoch(value: Any) -> float | None:
    return None if value is None else parse_timestamp(value).timestamp()


def _fts_text(doc: dict[str, Any]) -> str:
    parts: list[str] = [str(doc.get("model", "")), str(doc.get("version") or "")]
    for section in ("input", "output"):
        for k, v in (doc.get(section) or {}).items():
            parts.append(f"{k} {v}")
    for raw in ("request", "response"):
        if doc.get(raw) and doc.get(f"{raw}_encoding", "text") == "text":
            parts.append(str(doc[raw]))
    return " ".join(parts)


_BAREWORD = re.compile(r"\w+")


def _fts_match(text: str) -> str:
    """Search text as an FTS5 query. A word FTS5 cannot take bare (``3.25``, ``x-1``,
    ``city:Oslo``) is quoted, so it matches as the phrase of its tokens instead of failing as a
    syntax error; words and FTS5's own syntax (``"a phrase"``, ``pre*``, ``( )``) pass unchanged.

    >>> _fts_match('3.25 fox "a b" pre* x-1')
    '"3.25" fox "a b" pre* "x-1"'
    """
    out = []
    for word in text.split():
        bare = _BAREWORD.fullmatch(word.rstrip("*")) or any(c in word for c in '"()')
        out.append(word if bare else '"' + word + '"')
    return " ".join(out)


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    for k, v in new.items():
        if k == "timestamp" and "timestamp" in old:
            continue  # the request half's time wins; replays keep it
        if k == "meta" and isinstance(old.get("meta"), dict):
            merged["meta"] = {**old["meta"], **v}
        else:
            merged[k] = v
    return merged


def _put_record(conn: sqlite3.Connection, doc: dict[str, Any]) -> None:
    """Upsert one row document: merged into the stored one (any order, any number of times)."""
    old = conn.execute("SELECT rowid, doc FROM records WHERE doc_id=?", (doc["doc_id"],)).fetchone()
    if old is not None:
        doc = _merge(orjson.loads(old[1]), orjson.loads(_json(doc)))
        conn.execute("UPDATE records SET doc=?, ts=? WHERE rowid=?",
                     (_json(doc), _epoch(doc.get("timestamp") or doc.get("response_timestamp")), old[0]))
        conn.execute("DELETE FROM records_fts WHERE rowid=?", (old[0],))
        rowid = old[0]
    else:
        cur = conn.execute(
            "INSERT INTO records(doc_id, record_id, row, model, version, ts, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (doc["doc_id"], doc["record_id"], doc["row"], doc.get("model"), doc.get("version"),
             _epoch(doc.get("timestamp") or doc.get("response_timestamp")), _json(doc)))
        rowid = cur.lastrowid
    conn.execute("INSERT INTO records_fts(rowid, text) VALUES (?, ?)", (rowid, _fts_text(doc)))


def _put_detection(conn: sqlite3.Connection, d: Detection) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO detections(id, detector, kind, model, version, ts, is_drift, is_outlier, doc) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (d.id, d.detector, d.kind, d.model, d.version, _epoch(d.window_end or d.timestamp),
         None if d.is_drift is None else int(d.is_drift), None if d.is_outlier is None else int(d.is_outlier),
         d.to_json()))


def _put_outlier(conn: sqlite3.Connection, item: tuple[Detection, dict[str, Any]]) -> None:
    """An outlier score onto its row; a score that came before its row is stored, the row merges in later."""
    d, stub = item
    doc_id = stub["doc_id"]
    old = conn.execute("SELECT doc FROM records WHERE doc_id=?", (doc_id,)).fetchone()
    if old is None:
        cur = conn.execute(
            "INSERT INTO records(doc_id, record_id, row, model, version, ts, doc) VALUES (?, ?, ?, ?, ?, NULL, ?)",
            (doc_id, stub["record_id"], stub["row"], d.model, d.version, _json(stub)))
        conn.execute("INSERT INTO records_fts(rowid, text) VALUES (?, ?)", (cur.lastrowid, ""))
        return
    doc = orjson.loads(old[0])
    doc.setdefault("outlier", {}).update(stub["outlier"])
    conn.execute("UPDATE records SET doc=? WHERE doc_id=?", (_json(doc), doc_id))


def _put_deadletter(conn: sqlite3.Connection, dl: DeadLetter) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO deadletters(id, source, reason, stage, ts, raw, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (dl.id, dl.source, dl.reason, dl.stage, dl.timestamp.timestamp(), dl.raw, dl.to_json()))


_PUT: dict[str, Callable[[sqlite3.Connection, Any], None]] = {
    "records": _put_record, "detections": _put_detection, "outliers": _put_outlier, "deadletters": _put_deadletter}


class _Transactions:
    """One write's actions as the engine's :class:`~inferwatch.batching.Transport`: each chunk is
    one write transaction; a database locked by another writer past ``busy_timeout`` is
    backpressure (retried)."""

    def __init__(self, store: SQLiteAuditStore, actions: list[WriteAction]):
        self.store = store
        self.actions = actions

    def settle(self, position: int, status: int) -> Settled:
        return "refused"  # upserts: SQLite never answers 409

    def send(self, positions: Sequence[int]) -> None:
        store = self.store
        try:
            with store._lock, immediate(store._conn) as conn:
                for p in positions:
                    a = self.actions[p]
                    _PUT[a.target](conn, a.doc)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise BackpressureError(f"SQLite audit store busy: {exc}") from exc
            if "full" in str(exc):  # SQLITE_FULL: wait for space, keep the batch
                raise BackpressureError(f"SQLite audit store: {exc}") from exc
            raise AuditStoreError(f"SQLite audit write failed: {exc}") from exc
        except sqlite3.Error as exc:
            raise AuditStoreError(f"SQLite audit write failed: {exc}") from exc
        return None


class SQLiteAuditStore(AuditStore):
    """Audit documents in one SQLite file (WAL), searchable with FTS5.

    >>> import tempfile, os
    >>> from inferwatch.record import InferenceRecord
    >>> store = SQLiteAuditStore(os.path.join(tempfile.mkdtemp(), "audit.db"))
    >>> req = InferenceRecord(id="a", model="iris", inputs={"petal": [1.5]}, part="request")
    >>> resp = InferenceRecord(id="a", model="iris", outputs={"cls": ["setosa"]}, part="response")
    >>> store.write_records([req, resp, req])
    3
    >>> doc = store.get("a-0")
    >>> doc["input"], doc["output"]
    ({'petal': 1.5}, {'cls': 'setosa'})
    >>> [d["doc_id"] for d in store.search(SearchQuery(text="setosa"))]
    ['a-0']
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn = open_db(self.path, _SCHEMA, AuditStoreError, "audit store")
        self._engine = BatchingSink(name="sqlite", max_retries=5, max_backoff_s=5.0)

    # -- writes: documents mapped to actions; the batching engine runs each chunk as one transaction --
    def _write(self, actions: Iterable[WriteAction]) -> int:
        """Each ``chunk`` actions one transaction (by count alone: SQLite has no request size)."""
        written = 0
        it = iter(actions)
        while part := list(itertools.islice(it, self._engine.chunk_actions)):
            written += self._engine.write([0] * len(part), _Transactions(self, part)).written
        return written

    def write_records(self, records: Sequence[InferenceRecord]) -> int:
        return self._write(WriteAction("update", "records", doc["doc_id"], doc)
                           for r in records for doc in record_documents(r))

    def write_detections(self, detections: Sequence[Detection]) -> int:
        actions = []
        for d in detections:
            actions.append(WriteAction("index", "detections", d.id, d))
            if d.kind == "outlier":
                actions += [WriteAction("update", "outliers", stub["doc_id"], (d, stub)) for stub in outlier_documents(d)]
        self._write(actions)
        return len(detections)

    def write_deadletters(self, letters: Sequence[DeadLetter]) -> int:
        return self._write([WriteAction("index", "deadletters", dl.id, dl) for dl in letters])

    # -- reads ----------------------------------------------------------------------------
    def _where(self, q: SearchQuery) -> tuple[str, str, list[Any]]:
        table = q.kind
        clauses: list[str] = []
        args: list[Any] = []
        if q.model and table != "deadletters":
            clauses.append("model = ?")
            args.append(q.model)
        if q.version and table != "deadletters":
            clauses.append("version = ?")
            args.append(q.version)
        if q.since:
            clauses.append("ts >= ?")
            args.append(q.since.timestamp())
        if q.until:
            clauses.append("ts <= ?")
            args.append(q.until.timestamp())
        if q.id:
            if table == "records":
                # a request id also finds every graph node's record (<request id>/<node>)
                clauses.append("(record_id = ? OR doc_id = ? OR substr(record_id, 1, ?) = ?)")
                args += [q.id, q.id, len(q.id) + 1, f"{q.id}/"]
            else:
                clauses.append("id = ?")
                args.append(q.id)
        if q.drift_only and table == "detections":
            clauses.append("(is_drift = 1 OR is_outlier = 1)")
        if q.text:
            if table == "records":
                clauses.append("rowid IN (SELECT rowid FROM records_fts WHERE records_fts MATCH ?)")
                args.append(_fts_match(q.text))
            else:
                clauses.append("CAST(doc AS TEXT) LIKE ?")
                args.append(f"%{q.text}%")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return table, where, args

    def search(self, query: SearchQuery) -> list[dict[str, Any]]:
        table, where, args = self._where(query)
        order = "ts DESC, doc_id ASC" if table == "records" else "ts DESC"
        try:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT doc FROM {table}{where} ORDER BY {order} LIMIT ?", [*args, query.limit]
                ).fetchall()
        except sqlite3.Error as exc:
            raise AuditStoreError(f"search failed: {exc}") from exc
        return [orjson.loads(r[0]) for r in rows]

    def count(self, query: SearchQuery) -> int:
        table, where, args = self._where(query)
        try:
            with self._lock:
                (n,) = self._conn.execute(f"SELECT count(*) FROM {table}{where}", args).fetchone()
        except sqlite3.Error as exc:
            raise AuditStoreError(f"count failed: {exc}") from exc
        return int(n)

    def get(self, doc_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT doc FROM records WHERE doc_id=?", (doc_id,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

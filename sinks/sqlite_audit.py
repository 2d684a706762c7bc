"""The embedded audit store: SQLite, one row per audit document, FTS5 over the payload text."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from inferwatch.audit import AuditStore, SearchQuery, outlier_documents, record_documents
from inferwatch.errors import AuditStoreError
from inferwatch.log import immediate, open_db
from inferwatch.record import DeadLetter, Detection, InferenceRecord, parse_timestamp

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

    # -- writes ---------------------------------------------------------------------------
    def _tx(self, fn: Any, *args: Any) -> int:
        try:
            with self._lock, immediate(self._conn):
                return int(fn(*args))
        except sqlite3.Error as exc:
            raise AuditStoreError(f"SQLite audit write failed: {exc}") from exc

    def write_records(self, records: Sequence[InferenceRecord]) -> int:
        return self._tx(self._write_records, records)

    def _write_records(self, records: Sequence[InferenceRecord]) -> int:
        conn = self._conn
        n = 0
        for record in records:
            for doc in record_documents(record):
                old = conn.execute(
                    "SELECT rowid, doc FROM records WHERE doc_id=?", (doc["doc_id"],)
                ).fetchone()
                if old is not None:
                    doc = _merge(orjson.loads(old[1]), orjson.loads(_json(doc)))
                    conn.execute(
                        "UPDATE records SET doc=?, ts=? WHERE rowid=?",
                        (_json(doc), _epoch(doc.get("timestamp") or doc.get("response_timestamp")), old[0]),
                    )
                    conn.execute("DELETE FROM records_fts WHERE rowid=?", (old[0],))
                    rowid = old[0]
                else:
                    cur = conn.execute(
                        "INSERT INTO records(doc_id, record_id, row, model, version, ts, doc) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            doc["doc_id"],
                            doc["record_id"],
                            doc["row"],
                            doc.get("model"),
                            doc.get("version"),
                            _epoch(doc.get("timestamp") or doc.get("response_timestamp")),
                            _json(doc),
                        ),
                    )
                    rowid = cur.lastrowid
                conn.execute("INSERT INTO records_fts(rowid, text) VALUES (?, ?)", (rowid, _fts_text(doc)))
                n += 1
        return n

    def write_detections(self, detections: Sequence[Detection]) -> int:
        return self._tx(self._write_detections, detections)

    def _write_detections(self, detections: Sequence[Detection]) -> int:
        conn = self._conn
        for d in detections:
            conn.execute(
                "INSERT OR REPLACE INTO detections(id, detector, kind, model, version, ts, is_drift, is_outlier, doc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    d.id,
                    d.detector,
                    d.kind,
                    d.model,
                    d.version,
                    _epoch(d.window_end or d.timestamp),
                    None if d.is_drift is None else int(d.is_drift),
                    None if d.is_outlier is None else int(d.is_outlier),
                    d.to_json(),
                ),
            )
            if d.kind == "outlier":
                for stub in outlier_documents(d):
                    doc_id = stub["doc_id"]
                    old = conn.execute("SELECT doc FROM records WHERE doc_id=?", (doc_id,)).fetchone()
                    if old is None:  # the score came before its row: store it, the row merges in later
                        cur = conn.execute(
                            "INSERT INTO records(doc_id, record_id, row, model, version, ts, doc) "
                            "VALUES (?, ?, ?, ?, ?, NULL, ?)",
                            (doc_id, stub["record_id"], stub["row"], d.model, d.version, _json(stub)))
                        conn.execute("INSERT INTO records_fts(rowid, text) VALUES (?, ?)", (cur.lastrowid, ""))
                        continue
                    doc = orjson.loads(old[0])
                    doc.setdefault("outlier", {}).update(stub["outlier"])
                    conn.execute("UPDATE records SET doc=? WHERE doc_id=?", (_json(doc), doc_id))
        return len(detections)

    def write_deadletters(self, letters: Sequence[DeadLetter]) -> int:
        return self._tx(self._write_deadletters, letters)

    def _write_deadletters(self, letters: Sequence[DeadLetter]) -> int:
        self._conn.executemany(
            "INSERT OR REPLACE INTO deadletters(id, source, reason, stage, ts, raw, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (dl.id, dl.source, dl.reason, dl.stage, dl.timestamp.timestamp(), dl.raw, dl.to_json())
                for dl in letters
            ],
        )
        return len(letters)

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
                clauses.append("(record_id = ? OR doc_id = ?)")
                args += [q.id, q.id]
            else:
                clauses.append("id = ?")
                args.append(q.id)
        if q.drift_only and table == "detections":
            clauses.append("(is_drift = 1 OR is_outlier = 1)")
        if q.text:
            if table == "records":
                clauses.append("rowid IN (SELECT rowid FROM records_fts WHERE records_fts MATCH ?)")
                args.append(q.text)
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

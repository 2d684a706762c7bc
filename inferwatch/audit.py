"""The audit store interface and the audit document shape shared by every implementation.

An :class:`InferenceRecord` of N rows becomes N documents ``<record id>-<row>``
(:func:`~inferwatch.record.record_documents`, beside the row ids in :mod:`inferwatch.record`:
a record id goes to its documents without coming here). The request and response halves of one
exchange produce the same document ids, and each half writes only the fields it knows, so
storing both (in any order, any number of times) merges them into one document: writes are
idempotent upserts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from inferwatch.record import DeadLetter, Detection, InferenceRecord, parse_row_id, record_documents

__all__ = ["AuditStore", "SearchQuery", "outlier_documents", "record_documents", "reference_from_audit"]

Kind = Literal["records", "detections", "deadletters"]


@dataclass(slots=True)
class SearchQuery:
    """What ``inferwatch search`` and the audit stores understand.

    ``text`` is a full-text query over the payload; ``id`` matches a record id or a document
    id; times are inclusive bounds on the document timestamp.
    """

    kind: Kind = "records"
    text: str | None = None
    model: str | None = None
    version: str | None = None
    id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    drift_only: bool = False
    limit: int = 100


def outlier_documents(detection: Detection) -> list[dict[str, Any]]:
    """The partial row documents an outlier detection writes: each scored row's ``outlier``
    entry, with enough of the row (``doc_id``, ``record_id``, ``row``, ``model``) to stand alone
    when the score arrives before its row (the row merges in later).

    >>> d = Detection(detector="iqr", kind="outlier", model="m", threshold=1.0, row_ids=["r-1"], scores=[2.0])
    >>> outlier_documents(d)
    [{'doc_id': 'r-1', 'record_id': 'r', 'row': 1, 'model': 'm', 'outlier': {'iqr': {'score': 2.0, 'is_outlier': True}}}]
    """
    docs = []
    for rid, score in zip(detection.row_ids, detection.scores, strict=False):
        try:
            record_id, row = parse_row_id(rid)
        except ValueError:  # not one of ours: kept under its own name as row 0, never dropped
            record_id, row = rid, 0
        flag = bool(detection.threshold is not None and score > detection.threshold)
        docs.append({"doc_id": rid, "record_id": record_id, "row": row, "model": detection.model,
                     "outlier": {detection.detector: {"score": score, "is_outlier": flag}}})
    return docs


class AuditStore(ABC):
    """Where every request and response can be searched later.

    Writes are durable when they return and idempotent (document ids are deterministic),
    so a consumer that replays a batch after a crash changes nothing.
    """

    @abstractmethod
    def write_records(self, records: Sequence[InferenceRecord]) -> int:
        """Upsert the records' row documents; returns the number of documents written. The records
        may include what :meth:`prepared` gave."""

    def prepared(self, raw: bytes, audit: bytes) -> Any | None:
        """A record for :meth:`write_records` read from log message ``raw`` and the audit documents
        the collector built with it (:attr:`inferwatch.log.LogEntry.audit`), or ``None``: this store
        builds its own documents from the decoded record (the default)."""
        return None

    @abstractmethod
    def write_detections(self, detections: Sequence[Detection]) -> int:
        """Store detections (drift windows as documents; outlier scores onto their rows)."""

    @abstractmethod
    def write_deadletters(self, letters: Sequence[DeadLetter]) -> int:
        """Store dead letters with their raw bytes and reasons."""

    @abstractmethod
    def search(self, query: SearchQuery) -> list[dict[str, Any]]:
        """Matching documents, newest first, at most ``query.limit``."""

    @abstractmethod
    def count(self, query: SearchQuery) -> int:
        """Number of matching documents (ignores ``limit``)."""

    @abstractmethod
    def get(self, doc_id: str) -> dict[str, Any] | None:
        """One record document by id."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def reference_from_audit(store: AuditStore, model: str, *, version: str | None = None,
                         since: datetime | None = None, until: datetime | None = None,
                         limit: int = 10_000, on: Literal["input", "output"] = "input") -> dict[str, list[Any]]:
    """A reference table from what a model saw in a time range of the audit trail.

    The newest ``limit`` rows in the range (decoded ``input`` columns, or ``output``) as a
    ``Table``; raises ``ValueError`` when the range holds no rows.
    """
    from inferwatch.table import from_rows

    docs = store.search(SearchQuery(model=model, version=version, since=since, until=until, limit=limit))
    rows = [d[on] for d in docs if isinstance(d.get(on), dict)]
    if not rows:
        raise ValueError(f"no audited {on} rows for model {model!r}"
                         f"{' version ' + version if version else ''} in that time range")
    return from_rows(reversed(rows))

"""The audit store interface and the audit document shape shared by every implementation.

An :class:`InferenceRecord` of N rows becomes N documents ``<record id>-<row>``. The request
and response halves of one exchange produce the same document ids, and each half writes only
the fields it knows, so storing both (in any order, any number of times) merges them into one
document: writes are idempotent upserts.

The raw bodies are kept verbatim on the first row's document (``<id>-0``) only, so a batch of
a thousand rows does not store its body a thousand times; every row carries ``n_rows``.

>>> from inferwatch.record import InferenceRecord
>>> docs = record_documents(InferenceRecord(id="r1", model="m", inputs={"x": [1, 2]}, part="request"))
>>> [(d["doc_id"], d["input"]) for d in docs]
[('r1-0', {'x': 1}), ('r1-1', {'x': 2})]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from inferwatch.record import DeadLetter, Detection, InferenceRecord
from inferwatch.table import n_rows, row

__all__ = ["AuditStore", "SearchQuery", "record_documents", "reference_from_audit"]

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


def record_documents(record: InferenceRecord) -> list[dict[str, Any]]:
    """The partial audit documents of one record (``None`` fields left out, so upserts merge)."""
    n = record.n_rows
    base: dict[str, Any] = {
        "record_id": record.id,
        "n_rows": n,
        "model": record.model,
        "version": record.version,
        "namespace": record.namespace,
        "endpoint": record.endpoint,
        "protocol": record.protocol,
        "source": record.source,
        "trace": record.trace,
        "meta": record.meta or None,
    }
    if record.part in ("request", "both"):
        base["timestamp"] = record.timestamp
    if record.part == "response":
        base["response_timestamp"] = record.timestamp
    if record.part == "feedback":
        base["feedback_timestamp"] = record.timestamp
    if record.latency_ms is not None:
        base["latency_ms"] = record.latency_ms
    base = {k: v for k, v in base.items() if v is not None}
    n_in, n_out, n_truth = n_rows(record.inputs), n_rows(record.outputs), n_rows(record.truth)
    docs = []
    for i in range(n):
        doc = dict(base, doc_id=f"{record.id}-{i}", row=i)
        if record.inputs and i < n_in:
            doc["input"] = row(record.inputs, i)
        if record.outputs and i < n_out:
            doc["output"] = row(record.outputs, i)
        if record.truth and i < n_truth:
            doc["truth"] = row(record.truth, i)
        if i == 0:
            if record.request is not None:
                doc["request"] = record.request
                doc["request_encoding"] = record.request_encoding
            if record.response is not None:
                doc["response"] = record.response
                doc["response_encoding"] = record.response_encoding
        docs.append(doc)
    return docs


class AuditStore(ABC):
    """Where every request and response can be searched later.

    Writes are durable when they return and idempotent (document ids are deterministic),
    so a consumer that replays a batch after a crash changes nothing.
    """

    @abstractmethod
    def write_records(self, records: Sequence[InferenceRecord]) -> int:
        """Upsert the records' row documents; returns the number of documents written."""

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

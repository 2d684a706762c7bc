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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from inferwatch.record import DeadLetter, Detection, InferenceRecord
from inferwatch.table import n_rows

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


def record_documents(record: InferenceRecord | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The partial audit documents of one record (``None`` fields left out, so upserts merge).

    ``record`` is an :class:`InferenceRecord` or its JSON form as read from the log (the audit
    role skips building record objects it would only take apart again).
    """
    r: Mapping[str, Any] = record.to_dict() if isinstance(record, InferenceRecord) else record
    get = r.get
    inputs, outputs, truth = get("inputs"), get("outputs"), get("truth")
    n_in, n_out, n_truth = n_rows(inputs), n_rows(outputs), n_rows(truth)
    n = max(n_in, n_out, n_truth, 1)
    base: dict[str, Any] = {"record_id": r["id"], "n_rows": n}
    for key in _COPIED:
        value = get(key)
        if value is not None:
            base[key] = value
    if get("meta"):
        base["meta"] = r["meta"]
    part = get("part") or "both"
    base[_TIME_FIELD.get(part, "timestamp")] = r["timestamp"]
    docs = []
    rid = r["id"]
    for i in range(n):
        doc = dict(base, doc_id=f"{rid}-{i}", row=i)
        if inputs and i < n_in:
            doc["input"] = {k: v[i] for k, v in inputs.items()}
        if outputs and i < n_out:
            doc["output"] = {k: v[i] for k, v in outputs.items()}
        if truth and i < n_truth:
            doc["truth"] = {k: v[i] for k, v in truth.items()}
        if i == 0:
            for raw in ("request", "response"):
                if get(raw) is not None:
                    doc[raw] = r[raw]
                    doc[f"{raw}_encoding"] = get(f"{raw}_encoding") or "text"
        docs.append(doc)
    return docs


_COPIED = ("model", "version", "namespace", "endpoint", "protocol", "source", "trace", "latency_ms")
_TIME_FIELD = {"request": "timestamp", "both": "timestamp", "response": "response_timestamp",
               "feedback": "feedback_timestamp"}


class AuditStore(ABC):
    """Where every request and response can be searched later.

    Writes are durable when they return and idempotent (document ids are deterministic),
    so a consumer that replays a batch after a crash changes nothing.
    """

    @abstractmethod
    def write_records(self, records: Sequence[InferenceRecord | Mapping[str, Any]]) -> int:
        """Upsert the records' row documents (records, or their JSON form as read from the
        log); returns the number of documents written."""

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

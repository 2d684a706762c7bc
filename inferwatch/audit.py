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

from inferwatch.record import DeadLetter, Detection, InferenceRecord, parse_row_id, row_id
from inferwatch.table import n_rows

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


def record_documents(record: InferenceRecord) -> list[dict[str, Any]]:
    """The partial audit documents of one record (``None`` fields left out, so upserts merge)."""
    r = record
    inputs, outputs, truth = r.inputs, r.outputs, r.truth
    n_in, n_out, n_truth = n_rows(inputs), n_rows(outputs), n_rows(truth)
    n = max(n_in, n_out, n_truth, 1)
    if r.part == "feedback" and truth and not inputs and not outputs:
        # labels alone (the feedback endpoint and topic): only the labelled rows' truth, beside what
        # the prediction wrote (its row count and source stay); a label may come before its row
        return [{"doc_id": row_id(r.id, i), "record_id": r.id, "row": i, "model": r.model,
                 "truth": {k: v[i] for k, v in truth.items()}, _TIME_FIELD["feedback"]: r.timestamp}
                for i in range(n_truth) if any(v[i] is not None for v in truth.values())]
    base: dict[str, Any] = {"record_id": r.id, "n_rows": n}
    for key in _COPIED:
        value = getattr(r, key)
        if value is not None:
            base[key] = value
    if r.meta:
        base["meta"] = r.meta
    base[_TIME_FIELD.get(r.part, "timestamp")] = r.timestamp
    docs = []
    for i in range(n):
        doc = dict(base, doc_id=row_id(r.id, i), row=i)
        if inputs and i < n_in:
            doc["input"] = {k: v[i] for k, v in inputs.items()}
        if outputs and i < n_out:
            doc["output"] = {k: v[i] for k, v in outputs.items()}
        if truth and i < n_truth and any(v[i] is not None for v in truth.values()):
            doc["truth"] = {k: v[i] for k, v in truth.items()}
        if i == 0:
            if r.request is not None:
                doc["request"], doc["request_encoding"] = r.request, r.request_encoding or "text"
            if r.response is not None:
                doc["response"], doc["response_encoding"] = r.response, r.response_encoding or "text"
        docs.append(doc)
    return docs


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


_COPIED = ("model", "version", "namespace", "endpoint", "protocol", "source", "trace", "latency_ms",
           "input_schema", "output_schema")
_TIME_FIELD = {"request": "timestamp", "both": "timestamp", "response": "response_timestamp",
               "feedback": "feedback_timestamp"}


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

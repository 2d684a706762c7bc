"""The data contract: :class:`InferenceRecord`, :class:`Detection`, :class:`DeadLetter`.

Everything on the log is one of these, serialised as JSON with orjson.

>>> r = InferenceRecord(id="abc", model="iris", inputs={"x": [1.0, 2.0]})
>>> InferenceRecord.from_json(r.to_json()) == r
True
>>> r.n_rows, r.doc_ids()
(2, ['abc-0', 'abc-1'])
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import math
import operator
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from inferwatch.table import Table, n_rows

__all__ = [
    "RECORD_FIELDS",
    "DeadLetter",
    "Detection",
    "InferenceRecord",
    "Part",
    "decode_body",
    "encode_body",
    "new_id",
    "parse_row_id",
    "parse_timestamp",
    "row_id",
    "utcnow",
]

Part = Literal["request", "response", "both", "feedback"]
Kind = Literal["drift", "outlier", "performance", "quality"]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new UUIDv7 (time-ordered) as a string."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def encode_body(body: bytes | None) -> tuple[str | None, str]:
    """Raw bytes -> (text, encoding). UTF-8 text stays text, anything else is base64."""
    if body is None:
        return None, "text"
    try:
        return body.decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"


def decode_body(text: str | None, encoding: str) -> bytes | None:
    """Inverse of :func:`encode_body`: the verbatim bytes."""
    if text is None:
        return None
    if encoding == "base64":
        return base64.b64decode(text)
    return text.encode("utf-8")


def parse_timestamp(value: str | datetime) -> datetime:
    """The one ISO 8601 timestamp parser: a timezone-aware datetime (naive means UTC).

    Raises ``ValueError`` for anything that is not an ISO 8601 date or date-time.

    >>> parse_timestamp("2026-01-02T03:04:05Z").isoformat()
    '2026-01-02T03:04:05+00:00'
    >>> parse_timestamp("2026-01-02T05:04:05+02:00").utcoffset().total_seconds()
    7200.0
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _dt(value: Any) -> datetime | None:
    return None if value is None else parse_timestamp(value)


def row_id(record_id: str, row: int) -> str:
    """The identity of one row of a record (its audit document id): ``<record id>-<row>``.

    >>> row_id("abc-1", 2), parse_row_id(row_id("abc-1", 2))
    ('abc-1-2', ('abc-1', 2))
    """
    return f"{record_id}-{row}"


def parse_row_id(value: str) -> tuple[str, int]:
    """Inverse of :func:`row_id`; raises ``ValueError`` for a string that is not a row id."""
    record_id, sep, row = value.rpartition("-")
    if not sep or not record_id or not row.isdigit():
        raise ValueError(f"not a row id (<record id>-<row>): {value!r}")
    return record_id, int(row)


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


@dataclass(slots=True)
class InferenceRecord:
    """One request/response exchange with a served model (or one half of it)."""

    id: str
    model: str
    version: str | None = None
    namespace: str | None = None
    endpoint: str | None = None
    timestamp: datetime = field(default_factory=utcnow)
    latency_ms: float | None = None
    protocol: str | None = None
    inputs: Table | None = None
    outputs: Table | None = None
    truth: Table | None = None
    request: str | None = None
    request_encoding: str = "text"
    response: str | None = None
    response_encoding: str = "text"
    trace: str | None = None
    source: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    part: Part = "both"
    #: what the payloads said about their tensors ({"tensors": [{name, datatype, shape}],
    #: "encodings": {column: "utf-8" | "base64"}}), request and response side
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.timestamp = _dt(self.timestamp) or utcnow()

    @property
    def n_rows(self) -> int:
        """Rows in this record: the longer of inputs and outputs (at least 1)."""
        return max(n_rows(self.inputs), n_rows(self.outputs), n_rows(self.truth), 1)

    def doc_ids(self) -> list[str]:
        """Audit document ids, one per row: ``<id>-<row>``."""
        return [row_id(self.id, i) for i in range(self.n_rows)]

    def identity(self) -> int:
        """What makes this record itself, as 64 bits (a copy, resent or replayed, has the same):
        model, version, id and part — a request half and its response half share an id and are
        different records, so are the nodes of a Seldon graph — and, for feedback, its labels
        (several feedback events label one request; only the same labels again are a copy)."""
        key = f"{self.model}\x00{self.version or ''}\x00{self.id}\x00{self.part or 'both'}"
        if self.part == "feedback":
            key += "\x00" + orjson.dumps(self.truth, option=orjson.OPT_SORT_KEYS).decode()
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")

    def request_bytes(self) -> bytes | None:
        return decode_body(self.request, self.request_encoding)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _RECORD_FIELDS}

    def to_json(self) -> bytes:
        return _dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceRecord:
        if list(data) == _RECORD_FIELD_LIST:
            # what to_json writes: every field, in order. By position, because matching keywords
            # compares names by content when they are not the very objects the function knows
            # (orjson's keys are not interned): ~2 µs less per record on the audit and detect roles'
            # decoding (bench_audit_cpu.py)
            return cls(*data.values())
        if data.keys() <= _RECORD_FIELD_SET:
            return cls(**data)
        return cls(**{k: v for k, v in data.items() if k in _RECORD_FIELD_SET})

    @classmethod
    def from_json(cls, raw: bytes | str) -> InferenceRecord:
        """A record read from the log: the one read form of the audit and detect roles.

        Raises ``ValueError`` for anything that is not an :class:`InferenceRecord`'s JSON.

        >>> InferenceRecord.from_json(b'{"id": "a", "model": "m", "timestamp": "2026-01-01T02:00:00+02:00"}').timestamp.hour
        2
        >>> InferenceRecord.from_json(b'{"id": "a", "model": "m", "inputs": [1]}')
        Traceback (most recent call last):
        ...
        ValueError: 'inputs' is not a table (column -> list of values)
        >>> InferenceRecord.from_json(b'{"id": "a", "model": "m", "inputs": {"x": [1, 2], "y": [3]}}')
        Traceback (most recent call last):
        ...
        ValueError: 'inputs' has columns of unequal length: {'x': 2, 'y': 1}
        """
        d = orjson.loads(raw)
        if not isinstance(d, dict) or not isinstance(d.get("id"), str) or not isinstance(d.get("model"), str):
            raise ValueError("not an inference record: it needs string 'id' and 'model'")
        for key in ("inputs", "outputs", "truth"):
            table = d.get(key)
            # set(map(type, ...)): the column check at C speed (the audit role's hot path)
            if table is not None and (not isinstance(table, dict) or not set(map(type, table.values())) <= _LIST):
                raise ValueError(f"'{key}' is not a table (column -> list of values)")
            # a short column would fail every row document built from it (and its batch, on every retry)
            if table and len(set(map(len, table.values()))) > 1:
                raise ValueError(f"'{key}' has columns of unequal length: "
                                 f"{ {name: len(col) for name, col in table.items()} }")
        return cls.from_dict(d)


_LIST = {list}


_COPIED = ("model", "version", "namespace", "endpoint", "protocol", "source", "trace", "latency_ms",
           "input_schema", "output_schema")
_TIME_FIELD = {"request": "timestamp", "both": "timestamp", "response": "response_timestamp",
               "feedback": "feedback_timestamp"}


def record_documents(record: InferenceRecord) -> list[dict[str, Any]]:
    """The partial audit documents of one record (``None`` fields left out, so upserts merge), one
    per row, ``doc_id`` = :func:`row_id`. The raw bodies are kept verbatim on the first row's
    document (``<id>-0``) only, so a batch of a thousand rows does not store its body a thousand
    times; every row carries ``n_rows``.

    >>> docs = record_documents(InferenceRecord(id="r1", model="m", inputs={"x": [1, 2]}, part="request"))
    >>> [(d["doc_id"], d["input"]) for d in docs]
    [('r1-0', {'x': 1}), ('r1-1', {'x': 2})]
    """
    r = record
    inputs, outputs, truth = r.inputs, r.outputs, r.truth
    n_in, n_out, n_truth = n_rows(inputs), n_rows(outputs), n_rows(truth)
    n = max(n_in, n_out, n_truth, 1)
    if r.part == "feedback" and truth and not inputs and not outputs:
        # labels alone (the feedback endpoint and topic): only the labelled rows' truth, beside what
        # the prediction wrote (its row count and source stay); a label may come before its row
        return [{"doc_id": row_id(r.id, i), "record_id": r.id, "row": i, "model": r.model,
                 "truth": _row(truth, i), _TIME_FIELD["feedback"]: r.timestamp}
                for i in range(n_truth) if any(v[i] is not None for v in truth.values())]
    base: dict[str, Any] = {"record_id": r.id, "n_rows": n}
    for key in _COPIED:
        value = getattr(r, key)
        # a float that is not finite is left out as None is: JSON has no such number, the log
        # carries it as null and the record read back has None (the same document either way)
        if value is not None and (type(value) is not float or math.isfinite(value)):
            base[key] = value
    if r.meta:
        base["meta"] = r.meta
    base[_TIME_FIELD.get(r.part, "timestamp")] = r.timestamp
    docs = []
    for i in range(n):
        doc = base.copy()
        doc["doc_id"] = row_id(r.id, i)
        doc["row"] = i
        if inputs and i < n_in:
            doc["input"] = _row(inputs, i)
        if outputs and i < n_out:
            doc["output"] = _row(outputs, i)
        if truth and i < n_truth and any(v[i] is not None for v in truth.values()):
            doc["truth"] = _row(truth, i)
        docs.append(doc)
    first = docs[0]
    if r.request is not None:
        first["request"], first["request_encoding"] = r.request, r.request_encoding or "text"
    if r.response is not None:
        first["response"], first["response_encoding"] = r.response, r.response_encoding or "text"
    return docs


def _row(table: Table, i: int) -> dict[str, Any]:
    """Row ``i`` of a table as a dict, built at C speed (a comprehension is a Python step per column)."""
    return dict(zip(table, map(operator.itemgetter(i), table.values()), strict=False))


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(InferenceRecord))
_RECORD_FIELD_LIST = list(_RECORD_FIELDS)
RECORD_FIELDS = _RECORD_FIELD_SET = frozenset(_RECORD_FIELDS)


#: the extras that are part of a detection's identity (see :attr:`Detection.id`)
_IDENTITY_EXTRAS = ("on", "partition", "window_seq", "record_id")


@dataclass(slots=True)
class Detection:
    """What every detector emits; exporters, alerts and reports read only this."""

    detector: str
    kind: Kind
    model: str
    version: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    window_size: int = 0
    reference_id: str | None = None
    is_drift: bool | None = None
    is_outlier: bool | None = None
    p_value: float | None = None
    distance: float | None = None
    threshold: float | None = None
    feature_p_values: dict[str, float] = field(default_factory=dict)
    feature_distances: dict[str, float] = field(default_factory=dict)
    feature_drift: dict[str, bool] = field(default_factory=dict)
    row_ids: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        self.window_start = _dt(self.window_start)
        self.window_end = _dt(self.window_end)
        self.timestamp = _dt(self.timestamp) or utcnow()

    @property
    def id(self) -> str:
        """Deterministic id: replays of the same window produce the same id, and two windows
        never share one. Besides the detector, model, version, window times and size and the
        reference, the window's identity extras take part: ``on`` (inputs or outputs),
        ``partition`` (the log partition whose records filled it), ``window_seq`` (its number
        among its group's windows: windows with equal times and sizes, e.g. of one batch's
        rows, stay apart) and ``record_id`` (a quality finding about one record)."""
        extra = self.extra
        key = "|".join(
            str(x)
            for x in (
                self.detector,
                self.model,
                self.version,
                self.window_start.isoformat() if self.window_start else None,
                self.window_end.isoformat() if self.window_end else None,
                self.window_size,
                self.reference_id,
                self.row_ids[0] if self.row_ids else None,
                *(extra.get(k) for k in _IDENTITY_EXTRAS),
            )
        )
        return hashlib.sha1(key.encode()).hexdigest()[:20]

    @property
    def fired(self) -> bool:
        return bool(self.is_drift or self.is_outlier)

    @property
    def drifted_features(self) -> list[str]:
        return [k for k, v in self.feature_drift.items() if v]

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["id"] = self.id
        return d

    def to_json(self) -> bytes:
        return _dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Detection:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Detection:
        return cls.from_dict(orjson.loads(raw))


@dataclass(slots=True)
class DeadLetter:
    """A payload that could not be decoded or stored: raw bytes, source, reason."""

    raw: bytes
    source: str
    reason: str
    stage: str = "decode"
    id: str = field(default_factory=new_id)
    timestamp: datetime = field(default_factory=utcnow)
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.timestamp = _dt(self.timestamp) or utcnow()

    def to_dict(self) -> dict[str, Any]:
        text, enc = encode_body(self.raw)
        return {
            "id": self.id,
            "source": self.source,
            "reason": self.reason,
            "stage": self.stage,
            "timestamp": self.timestamp,
            "meta": self.meta,
            "raw": text,
            "raw_encoding": enc,
        }

    def to_json(self) -> bytes:
        return _dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        d = orjson.loads(raw)
        body = decode_body(d.pop("raw"), d.pop("raw_encoding", "text")) or b""
        return cls(raw=body, **d)

"""The scaled audit store: Elasticsearch (searched in Kibana).

Layout
------
* ``<prefix>-records-<model>-YYYY.MM.DD`` — one document per row, ``_id`` = ``<record id>-<row>``;
  request and response halves merge by partial-document upsert (``doc_as_upsert``), so any
  order and any number of replays give the same document. A label (feedback) lands on its
  prediction's document in whatever day's index that is.
* ``<prefix>-records-<model>-waiting`` — labels that came before their prediction (its day is not
  known yet); the prediction takes its label over when it is written, and the waiting copy is
  deleted once the prediction's document is durable. Exact when a model's predictions and labels
  share a log partition (records are keyed by model), as the log guarantees.
* ``<prefix>-detections-YYYY.MM.DD`` — one document per detector window, ``_id`` = the
  detection's deterministic id. Outlier scores are also written onto the rows they scored.
* ``<prefix>-deadletters-YYYY.MM.DD`` — the raw bytes (stored, not indexed) and the reason.

Index templates ``<prefix>-records``, ``<prefix>-detections`` and ``<prefix>-deadletters``
map every field explicitly. The decoded ``input``/``output``/``truth`` columns are
``flattened`` fields: every model brings its own columns, and dynamic mapping would add a
field per column per model until the cluster's mapping limit breaks (a "mapping explosion");
``flattened`` keeps one field each whatever the schema, still answers exact, prefix and
range queries per key (``input.city: Oslo``), and Kibana filters on it. Full-text search
over the payload goes to ``payload_text``, a ``text`` field that Elasticsearch fills itself
(``copy_to``) from the parts under ``fulltext``: each section's columns and values as one JSON
text (``fulltext.input``, ``.output``, ``.truth``; one C-speed serialisation per row instead of a
Python string per value) and the raw bodies when they are text (``fulltext.request``,
``.response``, the first 100,000 characters). The parts are kept in ``_source`` and not indexed
themselves, so when the two halves of an exchange merge, the merged document's ``payload_text``
holds both halves' words (a single pre-built field was overwritten by the later half). The raw
request and response are kept in ``_source`` verbatim but not indexed.

Writes
------
Bulk requests of at most ``chunk_actions`` actions or ``chunk_bytes`` bytes, through the
batching engine (:mod:`inferwatch.batching`). Item-level 429 and 5xx are retried with jittered
exponential backoff; item-level mapping or parse errors become dead letters (index and, through
``on_deadletter``, the dead-letter topic). A whole request refused for what it carries (a 400,
a 413 over ``http.max_content_length`` or a proxy's limit) is split until the one document the
cluster refuses is alone, and that one becomes a dead letter with the cluster's reason. When the
node is unreachable or keeps answering 429, :class:`BackpressureError` tells the caller to keep
its batch and retry later: the log holds the data; nothing is dropped.

Options for clusters that have them: ``ilm_policy`` names an ILM policy in the templates;
``data_stream`` writes detections and dead letters (append-only by nature) to data streams.
Record documents always go to daily indices, because data streams cannot update a document
by id, and merging the two halves of an exchange needs exactly that.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import itertools
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from inferwatch.audit import AuditStore, SearchQuery, outlier_documents, record_documents
from inferwatch.batching import (
    RETRYABLE,
    BatchingSink,
    ItemStatus,
    Op,
    Outcome,
    Settled,
    WriteAction,
    refused_letters,
)
from inferwatch.config import ElasticsearchConfig
from inferwatch.errors import AuditStoreError, BackpressureError, RequestRefused
from inferwatch.record import DeadLetter, Detection, InferenceRecord, parse_timestamp, row_id

__all__ = ["ElasticsearchAuditStore", "index_templates"]

log = logging.getLogger("inferwatch.elasticsearch")

_RAW = {"type": "text", "index": False}
_KW = {"type": "keyword"}
#: the parts of a record document's full text: ``fulltext.<part>``, copied into ``payload_text``
_FULLTEXT_PARTS = ("input", "output", "truth", "request", "response")
_FULLTEXT_MAPPING = {p: {"type": "text", "index": False, "copy_to": "payload_text"} for p in _FULLTEXT_PARTS}


def index_templates(prefix: str = "inferwatch", *, shards: int = 1, replicas: int = 0,
                    ilm_policy: str | None = None, data_stream: bool = False) -> dict[str, dict[str, Any]]:
    """The composable index templates, by name."""
    settings: dict[str, Any] = {"number_of_shards": shards, "number_of_replicas": replicas,
                                "refresh_interval": "1s"}
    if ilm_policy:
        settings["index.lifecycle.name"] = ilm_policy
    records = {
        "dynamic": "strict",
        "dynamic_templates": [{"input_numbers": {"path_match": "input_num.*",
                                                 "mapping": {"type": "double", "index": False}}}],
        "properties": {
            "doc_id": _KW, "record_id": _KW, "row": {"type": "integer"}, "n_rows": {"type": "integer"},
            "model": _KW, "version": _KW, "namespace": _KW, "endpoint": _KW, "protocol": _KW,
            "source": _KW, "trace": _KW, "part": _KW,
            "timestamp": {"type": "date"}, "response_timestamp": {"type": "date"},
            "feedback_timestamp": {"type": "date"}, "latency_ms": {"type": "float"},
            "meta": {"type": "flattened"},
            "input_schema": {"type": "flattened"}, "output_schema": {"type": "flattened"},
            "input": {"type": "flattened", "ignore_above": 1024},
            # the numerical inputs again as doubles (doc values only): what range and histogram
            # aggregations need (a flattened field's values are keywords); the field count is
            # bounded by the model's columns (one records index per model and day), and beyond
            # the index's field limit new columns are left unmapped rather than refused
            "input_num": {"type": "object", "dynamic": True, "subobjects": False},
            # the inputs whose cell ``input`` does not give back as it is (see _odd_cells): binned
            # reports read these cells from _source
            "input_odd": _KW,
            "output": {"type": "flattened", "ignore_above": 1024},
            "truth": {"type": "flattened", "ignore_above": 1024},
            "payload_text": {"type": "text"},  # filled from fulltext.* by copy_to, not in _source
            "fulltext": {"properties": _FULLTEXT_MAPPING},
            "request": _RAW, "request_encoding": _KW, "response": _RAW, "response_encoding": _KW,
            "outlier": {"type": "object", "dynamic": True},
        },
    }
    detections = {
        "dynamic": "strict",
        "properties": {
            "id": _KW, "detector": _KW, "kind": _KW, "model": _KW, "version": _KW, "reference_id": _KW,
            "timestamp": {"type": "date"}, "@timestamp": {"type": "date"},
            "window_start": {"type": "date"}, "window_end": {"type": "date"},
            "window_size": {"type": "long"}, "is_drift": {"type": "boolean"}, "is_outlier": {"type": "boolean"},
            "p_value": {"type": "double"}, "distance": {"type": "double"}, "threshold": {"type": "double"},
            "feature_p_values": {"type": "flattened"}, "feature_distances": {"type": "flattened"},
            "feature_drift": {"type": "flattened"}, "drifted_features": _KW,
            "row_ids": _KW, "scores": {"type": "double", "index": False},
            "extra": {"type": "object", "enabled": False},
        },
    }
    deadletters = {
        "dynamic": "strict",
        "properties": {
            "id": _KW, "source": _KW, "stage": _KW, "timestamp": {"type": "date"}, "@timestamp": {"type": "date"},
            "reason": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}},
            "raw": _RAW, "raw_encoding": _KW, "meta": {"type": "flattened"},
        },
    }
    out = {}
    for name, mapping, streamable in (("records", records, False), ("detections", detections, True),
                                      ("deadletters", deadletters, True)):
        own = dict(settings)
        if name == "records":
            own["mapping.total_fields.ignore_dynamic_beyond_limit"] = True
        body: dict[str, Any] = {"index_patterns": [f"{prefix}-{name}-*"], "priority": 200,
                                "template": {"settings": own, "mappings": mapping},
                                "_meta": {"managed_by": "inferwatch"}}
        if data_stream and streamable:
            body["data_stream"] = {}
        out[f"{prefix}-{name}"] = body
    return out


def _interval_ms(every: str | None) -> int:
    """A fixed interval (``30s``, ``15m``, ``1h``, ``1d``) in milliseconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", str(every or "").strip())
    if not m:
        raise ValueError(f"interval {every!r}: expected a number and ms, s, m, h or d (e.g. 1h)")
    return int(m.group(1)) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[m.group(2)]


@functools.lru_cache(maxsize=4096)
def _safe(name: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "_", name.lower()).strip("_.-") or "unknown"


def _day(ts: Any) -> str:
    if isinstance(ts, str):
        if len(ts) >= 10 and (ts.endswith("+00:00") or ts.endswith("Z")):
            return f"{ts[0:4]}.{ts[5:7]}.{ts[8:10]}"  # UTC already: the date is the prefix
        ts = parse_timestamp(ts)
    if not isinstance(ts, datetime):
        ts = datetime.now(UTC)
    if ts.utcoffset():
        ts = ts.astimezone(UTC)
    return f"{ts.year:04d}.{ts.month:02d}.{ts.day:02d}"


_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z
_OPTS_LINE = _OPTS | orjson.OPT_APPEND_NEWLINE  # a bulk body line: the newline without a copy


def _with_fulltext(doc: dict[str, Any]) -> dict[str, Any]:
    r"""A record document as it is sent: with its full-text parts (``fulltext``, what
    ``payload_text`` is made of), each section serialised once.

    Each section (``input``, ``output``, ``truth``) is its column names and values as JSON: the
    standard analyser makes the same words of ``{"city":"Oslo","age":30}`` as of
    ``city Oslo age 30``. That JSON also goes into the document as it is (an
    ``orjson.Fragment``: the values are not formatted twice). Nested values are indented in the
    text, because ``[1,2]`` would be one token. Raw bodies that are text are included (the first
    100,000 characters); base64 bodies are not.

    >>> doc = _with_fulltext({"input": {"city": "Oslo", "age": 30}, "request": "{}", "request_encoding": "text"})
    >>> _dumps(doc)
    b'{"input":{"city":"Oslo","age":30},"request":"{}","request_encoding":"text","fulltext":{"input":"{\\"city\\":\\"Oslo\\",\\"age\\":30}","request":"{}"}}'
    >>> print(_with_fulltext({"output": {"xy": [1, 2]}})["fulltext"]["output"])
    {
      "xy": [
        1,
        2
      ]
    }
    >>> _with_fulltext({"output": {"y": 0.5}, "response": "AAE=", "response_encoding": "base64"})["fulltext"]
    {'output': '{"y":0.5}'}
    """
    parts: dict[str, str] = {}
    for section in ("input", "output", "truth"):
        values = doc.get(section)
        if values:
            raw = orjson.dumps(values, option=_OPTS)
            if b"[" in raw or raw.find(b"{", 1) > 0:  # nested: "[1,2]" is one token, indented it is two
                parts[section] = orjson.dumps(values, option=_OPTS | orjson.OPT_INDENT_2).decode()
            else:
                parts[section] = raw.decode()
                doc[section] = orjson.Fragment(raw)
    for body in ("request", "response"):
        text = doc.get(body)
        if text and doc.get(f"{body}_encoding", "text") == "text":
            parts[body] = str(text)[:100_000]
    doc["fulltext"] = parts
    return doc


def _indexed(doc: dict[str, Any]) -> dict[str, Any]:
    """A row document as it is sent (in place): ``input_num`` and ``input_odd`` from its inputs,
    then its full-text parts (:func:`_with_fulltext`)."""
    inputs = doc.get("input")
    if inputs:  # the numbers before the section becomes a JSON fragment
        kinds = tuple(map(type, inputs.values())) if isinstance(inputs, dict) else None
        nums = _numbers(inputs, kinds)
        if nums:
            doc["input_num"] = nums
        odd = _odd_cells(inputs, kinds)
        if odd:
            doc["input_odd"] = odd
    return _with_fulltext(doc)


def _form() -> str:
    """What the prepared documents were built by: a digest of this module's and the record
    module's source (every function and constant the documents come from), so that documents a
    collector on other code built are built again by the audit role (after an upgrade, in a
    rolling one, on a replay) instead of being sent as that code made them."""
    import inspect
    import sys

    try:
        text = "".join(inspect.getsource(sys.modules[name]) for name in (__name__, "inferwatch.record"))
    except (OSError, TypeError):  # no source at hand (a frozen install): the package's version
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("inferwatch")
        except PackageNotFoundError:
            text = "unknown"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


#: the form of :func:`audit_documents` this code writes; a store reads only documents of its own form
PREPARED_FORM = _form()


def audit_documents(record: InferenceRecord) -> bytes | None:
    r"""A record's row documents exactly as the audit role sends them, built once where the record
    is made (the collector) and carried beside it on the log (``audit.prepared``): a first line
    saying whose they are (form, id, model, version, part, timestamp), then one line per row
    document, in row order. ``None`` for labels (feedback): where they land depends on what the
    store holds when they are written.

    >>> r = InferenceRecord(id="r1", model="m", inputs={"x": [1, 2]}, part="request",
    ...                     timestamp=datetime(2026, 1, 2, tzinfo=UTC))
    >>> head, *docs = audit_documents(r).split(b"\n")
    >>> {k: v for k, v in orjson.loads(head).items() if k != "form"}
    {'id': 'r1', 'model': 'm', 'version': None, 'part': 'request', 'timestamp': '2026-01-02T00:00:00Z'}
    >>> [(d["doc_id"], d["input"], d["input_num"]) for d in map(orjson.loads, docs)]
    [('r1-0', {'x': 1}, {'x': 1.0}), ('r1-1', {'x': 2}, {'x': 2.0})]
    """
    if record.part == "feedback":
        return None
    head = orjson.dumps({"form": PREPARED_FORM, "id": record.id, "model": record.model, "version": record.version,
                         "part": record.part, "timestamp": record.timestamp}, option=_OPTS)
    return b"\n".join([head, *(orjson.dumps(_indexed(doc), option=_OPTS) for doc in record_documents(record))])


_PREPARED_PARTS = frozenset({"request", "response", "both"})


class PreparedRecord:
    """A record read from the log with its audit documents (:func:`audit_documents`): what the
    audit role needs of it without decoding it. ``raw`` is the record's own JSON (what a dead
    letter keeps; :meth:`record` decodes it when a write needs the whole record)."""

    __slots__ = ("docs", "id", "model", "part", "raw", "timestamp", "version")

    def __init__(self, raw: bytes, id: str, model: str, version: str | None, part: str, timestamp: str,
                 docs: list[bytes]):
        self.raw, self.id, self.model, self.version = raw, id, model, version
        self.part, self.timestamp, self.docs = part, timestamp, docs

    @classmethod
    def read(cls, raw: bytes, audit: bytes) -> PreparedRecord | None:
        """The record of log message ``raw`` with its audit documents ``audit``; ``None`` when
        ``audit`` is not in the form this version writes (the record is then decoded)."""
        head, *docs = audit.split(b"\n")
        try:
            m = orjson.loads(head)
            if (type(m) is not dict or m.get("form") != PREPARED_FORM or not docs
                    or m.get("part") not in _PREPARED_PARTS or type(m.get("id")) is not str
                    or type(m.get("model")) is not str or type(m.get("timestamp")) is not str):
                return None
            return cls(raw, m["id"], m["model"], m["version"], m["part"], m["timestamp"], docs)
        except (orjson.JSONDecodeError, KeyError):
            return None

    @property
    def n_rows(self) -> int:
        return len(self.docs)

    def record(self) -> InferenceRecord:
        return InferenceRecord.from_json(self.raw)

    def to_json(self) -> bytes:
        return self.raw


#: per tuple of a row's value types: which values are numbers, whether those are all exactly
#: ``float``, and (when a copy of the row is the cheaper way there) which values are not numbers
_NUMBER_PLANS: dict[tuple[type, ...], tuple[tuple[bool, ...], bool, tuple[bool, ...] | None]] = {}


def _number_plan(kinds: tuple[type, ...]) -> tuple[tuple[bool, ...], bool, tuple[bool, ...] | None]:
    mask = tuple(issubclass(t, (int, float)) and not issubclass(t, bool) for t in kinds)
    exact = all(t is float for t, number in zip(kinds, mask, strict=True) if number)
    drop = tuple(not number for number in mask)
    plan = mask, exact, drop if exact and 2 * sum(drop) <= sum(mask) else None
    if len(_NUMBER_PLANS) >= 4096:  # bounded: rows of ever new type mixes cost a plan each, no memory
        _NUMBER_PLANS.clear()
    _NUMBER_PLANS[kinds] = plan
    return plan


def _numbers(values: Any, kinds: tuple[type, ...] | None = None) -> dict[str, float]:
    """The finite numbers (``int`` or ``float``, not ``bool``) of a row's inputs as doubles, keys as
    text: the ``input_num`` field (what range and terms aggregations read). An integer too large
    for a double is left out, as infinity is.

    At C speed (this ran per value in Python, ~11 µs of a 50-feature row): the row's value types
    pick a cached plan (which values are numbers); the sum of those is finite only when every one
    of them is, and only a row where it is not (NaN, infinity, a double overflowing the sum) is
    filtered value by value. A row of mostly doubles is copied and its other values deleted.

    >>> _numbers({"a": 1, "b": 2.5, "c": True, "d": "x", "e": float("nan"), "f": None, "g": 10**400})
    {'a': 1.0, 'b': 2.5}
    """
    if not isinstance(values, dict) or not values:
        return {}
    if kinds is None:
        kinds = tuple(map(type, values.values()))
    mask, exact, drop = _NUMBER_PLANS.get(kinds) or _number_plan(kinds)
    nums: Iterable[float] | None = None
    try:
        if exact:
            finite = math.isfinite(sum(itertools.compress(values.values(), mask)))
        else:
            nums = list(map(float, itertools.compress(values.values(), mask)))
            finite = math.isfinite(sum(nums))
    except OverflowError:  # an integer beyond a double
        finite = False
    if not finite:
        return {str(k): float(v) for k, v in itertools.compress(values.items(), mask) if _finite(v)}
    keys: Iterable[Any] = itertools.compress(values, mask)
    try:
        "".join(values)  # every key is text already (as always from JSON): taken as it is
    except TypeError:
        keys, drop = map(str, keys), None
    if drop is not None:
        out = values.copy()
        collections.deque(map(out.__delitem__, itertools.compress(values, drop)), maxlen=0)
        return out
    return dict(zip(keys, itertools.compress(values.values(), mask) if nums is None else nums, strict=True))


#: per tuple of a row's value types: (which values are text, whether any is a list or object),
#: None when neither
_ODD_PLANS: dict[tuple[type, ...], tuple[tuple[bool, ...], bool] | None] = {}
#: longer text is not indexed by the ``flattened`` field (its ``ignore_above``)
IGNORE_ABOVE = 1024
_BOOL_WORDS = frozenset({"true", "false"})


def _odd_cells(values: Any, kinds: tuple[type, ...] | None = None) -> list[str]:
    """The inputs whose cell the ``flattened`` ``input`` field does not give back as the value a
    test on the rows reads: lists and objects (a list's elements are indexed one by one, an
    empty one and an object's own values not under the feature at all), text over
    :data:`IGNORE_ABOVE` characters (not indexed) and the text ``"true"``/``"false"`` (indexed
    as a boolean is). The ``input_odd`` field: binned reports read these cells from the
    documents. ``kinds``: the values' types, when known.

    Most rows have none, found at C speed: a cached plan per tuple of value types, then the
    longest text and a set test on the texts; only a row with an odd cell is looked at value
    by value.

    >>> _odd_cells({"a": 1.5, "b": [1, 2], "c": "true", "d": "x" * 1025, "e": "x" * 1024, "f": {"k": 1}, "g": True})
    ['b', 'c', 'd', 'f']
    >>> _odd_cells({"a": 1.5, "c": "Oslo", "e": "x" * 1024}), _odd_cells({}), _odd_cells({"a": 1})
    ([], [], [])
    """
    if not isinstance(values, dict) or not values:
        return []
    if kinds is None:
        kinds = tuple(map(type, values.values()))
    try:
        plan = _ODD_PLANS[kinds]
    except KeyError:
        text = tuple(issubclass(t, str) for t in kinds)
        nested = any(issubclass(t, (list, tuple, dict)) for t in kinds)
        if len(_ODD_PLANS) >= 4096:
            _ODD_PLANS.clear()
        plan = _ODD_PLANS[kinds] = (text, nested) if nested or any(text) else None
    if plan is None:
        return []
    text, nested = plan
    if not nested:
        words = list(itertools.compress(values.values(), text))
        if max(map(len, words)) <= IGNORE_ABOVE and _BOOL_WORDS.isdisjoint(words):
            return []
    return [str(k) for k, v in values.items()
            if isinstance(v, (list, tuple, dict)) or (isinstance(v, str) and (len(v) > IGNORE_ABOVE or v in _BOOL_WORDS))]


def _has_number(feature: str) -> dict[str, Any]:
    """The query for rows whose ``feature`` cell is a number (in ``input_num``)."""
    return {"exists": {"field": f"input_num.{feature}"}}


def _finite(v: float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer beyond a double
        return False


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=_OPTS)


@functools.lru_cache(maxsize=1024)
def _head_start(op: str, index: str) -> bytes:
    return b'{"' + op.encode() + b'":{"_index":' + orjson.dumps(index) + b',"_id":'


def _head(op: str, index: str, doc_id: str) -> bytes:
    r"""``{"<op>":{"_index":...,"_id":...}}\n`` (the bulk action line; its start is the same for
    every document of an index).

    >>> _head("create", "ix", 'a"1')
    b'{"create":{"_index":"ix","_id":"a\\"1"}}\n'
    """
    return _head_start(op, index) + orjson.dumps(doc_id) + b"}}\n"


#: how much of a dead letter's bytes is kept when the cluster refuses the whole letter
CUT_BYTES = 1024


def _cut(dl: DeadLetter, reason: str) -> DeadLetter:
    return DeadLetter(raw=dl.raw[:CUT_BYTES], source=dl.source, stage=dl.stage, id=dl.id, timestamp=dl.timestamp,
                      meta=dl.meta, reason=f"{dl.reason} [only the first {CUT_BYTES} of {len(dl.raw)} bytes kept "
                                           f"here, the store refused the whole letter: {reason[:300]}]")


def _error_text(exc: Exception) -> str:
    """``<type>: <reason>`` of an error answer (as item errors read), else the error's text."""
    body = getattr(exc, "body", None)
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return f"{err.get('type')}: {err.get('reason', '')}"
    return str(exc)


def _line(a: WriteAction) -> bytes:
    """One action's NDJSON: the action line and, but for a delete, its document."""
    head = _head(a.op, a.target, a.id)
    return head if a.doc is None else head + orjson.dumps(a.doc, option=_OPTS_LINE)


class _Bulk:
    """One write's ``_bulk`` requests: the engine's :class:`~inferwatch.batching.Transport` over
    these actions' NDJSON lines (the actions stay here; the engine names them by position)."""

    def __init__(self, store: ElasticsearchAuditStore, actions: list[WriteAction]):
        self.store = store
        self.actions = actions
        self.lines = [_line(a) for a in actions]

    def send(self, positions: Sequence[int]) -> list[ItemStatus] | None:
        lines = self.lines
        try:
            # only what the item loop reads comes back: not the ids, versions and shard counts
            resp = self.store.es.bulk(operations=b"".join([lines[p] for p in positions]),  # type: ignore[arg-type]
                                      refresh=False, filter_path="errors,items.*.status,items.*.error")
        except Exception as exc:
            status = getattr(getattr(exc, "meta", None), "status", None)
            if status in (400, 413):  # the request itself refused for what it carries: the engine splits it
                raise RequestRefused(status, _error_text(exc)) from exc
            raise self.store._wrap(exc, f"bulk of {len(positions)} actions") from exc
        if not resp.get("errors"):
            return None
        out: list[ItemStatus] = []
        for item in resp["items"]:
            res = next(iter(item.values()))
            err = res.get("error") or {}
            status = int(res.get("status", 500))
            out.append((status, f"{err.get('type', status)}: {err.get('reason', '')}" if status >= 300 else ""))
        return out

    def settle(self, position: int, status: int) -> Settled:
        a = self.actions[position]
        if status == 404 and a.op == "delete":
            return "written"  # gone already: a replay
        if status != 409 or a.op != "create":
            return "refused"
        if not a.merge:
            return "written"  # there already: a replay
        merge = WriteAction("update", a.target, a.id, {"doc": a.doc, "doc_as_upsert": True}, a.origin)
        self.actions[position], self.lines[position] = merge, _line(merge)
        return "again"


class ElasticsearchAuditStore(AuditStore):
    """Audit documents in Elasticsearch. See the module docstring for layout and guarantees."""

    def __init__(self, cfg: ElasticsearchConfig, *, client: Any = None,
                 on_deadletter: Callable[[list[DeadLetter]], None] | None = None, setup: bool = True):
        from elasticsearch import Elasticsearch

        self.cfg = cfg
        self.prefix = cfg.index_prefix
        self.on_deadletter = on_deadletter
        auth: dict[str, Any] = {}
        if cfg.api_key:
            auth["api_key"] = cfg.api_key
        elif cfg.username:
            auth["basic_auth"] = (cfg.username, cfg.password or "")
        if cfg.ca_certs:
            auth["ca_certs"] = cfg.ca_certs
        try:  # orjson parses the bulk responses several times faster than the json module
            from elasticsearch.serializer import OrjsonSerializer

            auth["serializer"] = OrjsonSerializer()
        except ImportError:  # pragma: no cover - orjson is a core dependency
            pass
        self.es = client or Elasticsearch(cfg.hosts, verify_certs=cfg.verify_certs,
                                          request_timeout=cfg.request_timeout, retry_on_timeout=True,
                                          max_retries=2, **auth)
        self._engine = BatchingSink(name="elasticsearch", chunk_actions=cfg.chunk_actions, chunk_bytes=cfg.chunk_bytes,
                                    max_retries=cfg.max_retries, max_backoff_s=cfg.max_backoff_s)
        self._waiting_models: dict[str, bool] = {}
        if setup:
            self.setup()

    # -- setup --------------------------------------------------------------------------------
    def setup(self) -> None:
        """Install (or update) the index templates. Idempotent."""
        try:
            for name, body in index_templates(self.prefix, shards=self.cfg.shards, replicas=self.cfg.replicas,
                                              ilm_policy=self.cfg.ilm_policy,
                                              data_stream=self.cfg.data_stream).items():
                self.es.indices.put_index_template(name=name, **body)
            # records indices made by an older template (today's, before an upgrade) learn the
            # fields added since; adding fields to a mapping is allowed, changing one is not
            records = index_templates(self.prefix)[f"{self.prefix}-records"]["template"]["mappings"]
            self.es.indices.put_mapping(index=f"{self.prefix}-records-*", allow_no_indices=True,
                                        dynamic_templates=records["dynamic_templates"],
                                        properties={"fulltext": {"properties": _FULLTEXT_MAPPING},
                                                    "input_num": records["properties"]["input_num"],
                                                    "input_odd": _KW})
        except Exception as exc:
            raise self._wrap(exc, "installing index templates") from exc

    def _wrap(self, exc: Exception, what: str) -> AuditStoreError:
        from elastic_transport import ConnectionError as TransportConnectionError
        from elastic_transport import ConnectionTimeout
        from elasticsearch import ApiError

        status = getattr(exc, "status_code", None) or getattr(getattr(exc, "meta", None), "status", None)
        if isinstance(exc, TransportConnectionError | ConnectionTimeout) or status in RETRYABLE:
            return BackpressureError(f"Elasticsearch unavailable while {what}: {exc}")
        if isinstance(exc, ApiError):
            return AuditStoreError(f"Elasticsearch error while {what}: {exc}")
        return AuditStoreError(f"{what} failed: {exc}")

    def _read(self, what: str, index: str, call: Callable[[], Any]) -> Any:
        """Run one read. A shard that is not started yet (a daily index created a moment ago, a node
        still recovering) answers 503 for a while: wait for the indices to be searchable (yellow),
        boundedly, and ask again; anything else, or the same answer again, is raised as ours."""
        for attempt in range(3):
            try:
                return call()
            except Exception as exc:
                status = getattr(getattr(exc, "meta", None), "status", None)
                if status != 503 or attempt == 2:
                    raise self._wrap(exc, what) from exc
                log.info("%s: shards of %s not ready (%s); waiting for them", what, index, exc)
                try:
                    self.es.cluster.health(index=index, wait_for_status="yellow", timeout="30s")
                except Exception:  # the retry below reports the real failure
                    time.sleep(1.0)
        raise AssertionError("unreachable")

    #: the client timeout of reads over a whole time range (aggregations over millions of rows
    #: take minutes on a small node); they are not re-sent on a timeout, since the cluster keeps
    #: working on an abandoned one and a retry only doubles its load
    HEAVY_TIMEOUT_S = 900.0

    def _heavy(self) -> Any:
        return self.es.options(request_timeout=max(self.cfg.request_timeout, self.HEAVY_TIMEOUT_S),
                               retry_on_timeout=False)

    def _whole(self, what: str, index: str, call: Callable[[], Any]) -> Any:
        """:meth:`_read` of a search whose answer must cover every shard: a shard that failed (a
        circuit breaker, a timeout) leaves its rows out of an answer that is still a 200 — counted
        as none, silently — so it is raised instead."""
        resp = self._read(what, index, call)
        shards = resp.get("_shards") or {}
        if shards.get("failed") or resp.get("timed_out"):
            reasons = "; ".join(sorted({str((f.get("reason") or {}).get("type", "")) + ": " +
                                        str((f.get("reason") or {}).get("reason", ""))[:200]
                                        for f in shards.get("failures") or []}))
            raise AuditStoreError(f"Elasticsearch answered {what} for only {shards.get('successful')} of "
                                  f"{shards.get('total')} shards{' (timed out)' if resp.get('timed_out') else ''}"
                                  f"{': ' + reasons if reasons else ''}; nothing was counted from a partial answer")
        return resp

    # -- index names --------------------------------------------------------------------------
    def records_index(self, model: str, ts: Any) -> str:
        return f"{self.prefix}-records-{_safe(model)}-{_day(ts)}"

    def _stream_or_daily(self, name: str, ts: Any) -> str:
        return f"{self.prefix}-{name}-default" if self.cfg.data_stream else f"{self.prefix}-{name}-{_day(ts)}"

    # -- writes -------------------------------------------------------------------------------
    def _write(self, actions: Iterable[WriteAction]) -> int:
        """Send the actions through the engine, ``chunk_actions`` at a time, each slice built and
        encoded while the one before it is being sent (only those two and their lines are held);
        what the cluster refuses becomes dead letters."""
        it = iter(actions)

        def parts() -> Iterator[tuple[list[int], _Bulk]]:
            while part := list(itertools.islice(it, self.cfg.chunk_actions)):
                bulk = _Bulk(self, part)
                yield [len(line) for line in bulk.lines], bulk

        written = 0
        for bulk, out in self._engine.write_ahead(parts()):
            if out.refused:
                letters = refused_letters(bulk.actions, out, source="elasticsearch", prefix="es")
                self.write_deadletters(letters)
                if self.on_deadletter is not None:
                    self.on_deadletter(letters)
            written += out.written
        return written

    def waiting_index(self, model: str) -> str:
        """Where labels that came before their prediction wait (one index per model, not per day:
        the prediction's day is not known yet)."""
        return f"{self.prefix}-records-{_safe(model)}-waiting"

    def write_records(self, records: Sequence[InferenceRecord]) -> int:
        joined: list[WriteAction] = []
        unreadable: list[DeadLetter] = []
        written = self._write(self._record_actions(records, joined, unreadable))
        if joined:  # the labels now sit on their predictions' documents (durable): the waiting copies go
            self._write(joined)
        if unreadable:
            self.write_deadletters(unreadable)
            if self.on_deadletter is not None:
                self.on_deadletter(unreadable)
        return written

    def _rows_indices(self, records: Sequence[InferenceRecord | PreparedRecord]) -> dict[str, str]:
        """For the rows that feedback records label: the records index (any day) each existing row
        document is in (a prediction's daily index before the waiting one). One refresh and one
        search per model and 1,000 rows."""
        ids: dict[str, list[str]] = {}
        for m in records:
            if m.part == "feedback":
                ids.setdefault(m.model, []).extend(row_id(m.id, i) for i in range(m.n_rows))
        where: dict[str, str] = {}
        for model, rows in ids.items():
            pattern = f"{self.prefix}-records-{_safe(model)}-*"
            waiting = self.waiting_index(model)
            self._read("refresh", pattern, functools.partial(
                self.es.indices.refresh, index=pattern, ignore_unavailable=True, allow_no_indices=True))
            for k in range(0, len(rows), 1000):
                chunk = rows[k:k + 1000]
                resp = self._read("looking up labelled rows", pattern, functools.partial(
                    self.es.search, index=pattern, size=2 * len(chunk), query={"ids": {"values": chunk}},
                    source=False, ignore_unavailable=True, allow_no_indices=True))
                for h in resp["hits"]["hits"]:
                    if h["_index"] != waiting or h["_id"] not in where:
                        where[h["_id"]] = h["_index"]
        return where

    def _has_waiting(self, model: str) -> bool:
        """Whether labels of ``model`` may be waiting (asked once per model, then known: labels
        and predictions of one model are on one partition, so this worker writes them itself)."""
        known = self._waiting_models.get(model)
        if known is None:
            index = self.waiting_index(model)
            known = bool(self._read("checking for waiting labels", index,
                                    lambda: self.es.indices.exists(index=index)))
            self._waiting_models[model] = known
        return known

    def _waiting_labels(self, records: Sequence[InferenceRecord | PreparedRecord]) -> dict[str, dict[str, Any]]:
        """Labels waiting for the rows these prediction records write: row id -> the waiting
        document's label fields (a realtime multi-get: no refresh needed)."""
        rows: dict[str, list[str]] = {}
        for m in records:
            if m.part != "feedback" and self._has_waiting(m.model):
                rows.setdefault(m.model, []).extend(row_id(m.id, i) for i in range(max(m.n_rows, 1)))
        found: dict[str, dict[str, Any]] = {}
        for model, ids in rows.items():
            index = self.waiting_index(model)
            for k in range(0, len(ids), 5000):
                chunk = ids[k:k + 5000]
                resp = self._read("looking up waiting labels", index, functools.partial(
                    self.es.mget, index=index, ids=chunk, source_includes=["truth", "feedback_timestamp"]))
                for d in resp["docs"]:
                    if d.get("found"):
                        found[d["_id"]] = dict(d.get("_source") or {})
        return found

    def prepared(self, raw: bytes, audit: bytes) -> PreparedRecord | None:
        """A record read from the log with the audit documents the collector built
        (:func:`audit_documents`): written as they are, not built again."""
        return PreparedRecord.read(raw, audit)

    def _record_actions(self, given: Sequence[InferenceRecord | PreparedRecord],
                        joined: list[WriteAction] | None = None,
                        unreadable: list[DeadLetter] | None = None) -> Iterator[WriteAction]:
        # A label lands on its prediction's document, in whatever day's index that is. A label that
        # comes before its prediction waits in the model's waiting index; its prediction takes it
        # over when it is written (the waiting copy is deleted after, into ``joined``). Prepared
        # documents are sent as they are, but for a record one of whose rows has a label waiting:
        # that record is read and its documents built here, with the label.
        where = self._rows_indices(given)
        waiting = self._waiting_labels(given)
        in_batch = {row_id(m.id, i): self.records_index(m.model, m.timestamp)
                    for m in given if m.part != "feedback" for i in range(max(m.n_rows, 1))
                    } if any(m.part == "feedback" for m in given) else {}  # what labels look up
        days: dict[tuple[str, Any], str] = {}  # (model, UTC date) -> index: ~1 µs a record less
        for m in given:
            if isinstance(m, PreparedRecord):
                if not waiting or all(row_id(m.id, i) not in waiting for i in range(m.n_rows)):
                    yield from self._prepared_actions(m, days)
                    continue
                came = m
                try:
                    m = came.record()
                except ValueError as exc:  # its documents came, the record itself cannot be read
                    if unreadable is None:
                        raise
                    unreadable.append(DeadLetter(raw=came.raw, source=f"log:{came.model}", stage="audit",
                                                 id=f"es-{came.id}", reason=f"unreadable log message: {exc}"))
                    continue
            index = self._index_of(m.model, m.timestamp, days)
            complete = m.part == "both"
            feedback = m.part == "feedback"
            docs = record_documents(m)
            for doc in docs:
                if feedback:
                    wait = self.waiting_index(m.model)
                    at = where.get(doc["doc_id"])
                    index = at if at is not None and at != wait else in_batch.get(doc["doc_id"], wait)
                    if index == wait:
                        self._waiting_models[m.model] = True
                elif waiting:
                    label = waiting.get(doc["doc_id"])
                    if label is not None:
                        for key, value in label.items():
                            doc.setdefault(key, value)
                        if joined is not None:
                            joined.append(WriteAction("delete", self.waiting_index(m.model), doc["doc_id"]))
                _indexed(doc)
                if complete:
                    # a complete exchange: a plain create is the fast path; if the document exists
                    # (a replay, or outlier scores already attached) it falls back to the merge.
                    # The record itself is the dead letter if Elasticsearch refuses it.
                    yield WriteAction("create", index, doc["doc_id"], doc, m, merge=True)
                else:
                    yield WriteAction("update", index, doc["doc_id"], {"doc": doc, "doc_as_upsert": True}, m)

    def _index_of(self, model: str, ts: Any, days: dict[tuple[str, Any], str]) -> str:
        """:meth:`records_index`, kept per (model, UTC date) in ``days`` when the time is in UTC (a
        datetime, or text ending in Z whose date is its start): ~1 µs a record less."""
        day: tuple[str, Any]
        if type(ts) is datetime and ts.tzinfo is UTC:
            day = (model, ts.date())
        elif type(ts) is str and ts.endswith("Z"):
            day = (model, ts[:10])
        else:
            return self.records_index(model, ts)
        return days.get(day) or days.setdefault(day, self.records_index(model, ts))

    def _prepared_actions(self, m: PreparedRecord, days: dict[tuple[str, Any], str]) -> Iterator[WriteAction]:
        """The writes of a record whose documents came built (see :meth:`_record_actions`)."""
        index = self._index_of(m.model, m.timestamp, days)
        rid = m.id
        if m.part == "both":
            for i, doc in enumerate(m.docs):
                yield WriteAction("create", index, row_id(rid, i), orjson.Fragment(doc), m, merge=True)
        else:
            for i, doc in enumerate(m.docs):
                yield WriteAction("update", index, row_id(rid, i), {"doc": orjson.Fragment(doc), "doc_as_upsert": True}, m)

    def write_detections(self, detections: Sequence[Detection]) -> int:
        op: Op = "create" if self.cfg.data_stream else "index"
        actions = []
        for d in detections:
            doc = d.to_dict()
            doc["@timestamp"] = d.window_end or d.timestamp
            doc["drifted_features"] = d.drifted_features
            actions.append(WriteAction(op, self._stream_or_daily("detections", doc["@timestamp"]), d.id, doc, d))
        n = self._write(actions)
        outliers = [d for d in detections if d.kind == "outlier" and d.row_ids]
        if outliers:
            self._attach_scores(outliers)
        return n

    def _attach_scores(self, detections: Sequence[Detection]) -> None:
        """Write outlier scores onto the scored rows' documents.

        A window's rows come from records whose timestamps lie between ``window_start`` and
        ``window_end``; when both fall on one day (nearly always) that day's records index is
        where every scored row lives. The update is an upsert, so a score that arrives before
        its row is stored first and the row merges into it later: nothing waits, nothing is
        lost. Windows across midnight (or without times) look their rows up first.
        """
        actions: list[WriteAction] = []
        for d in detections:
            start, end = d.window_start, d.window_end or d.window_start
            where: dict[str, str] = {}
            if start is None or end is None or _day(start) != _day(end):
                pattern = f"{self.prefix}-records-{_safe(d.model)}-*"
                self._read("refresh", pattern, functools.partial(
                    self.es.indices.refresh, index=pattern, ignore_unavailable=True, allow_no_indices=True))
                resp = self._read("looking up scored rows", pattern, functools.partial(
                    self.es.search, index=pattern, size=len(d.row_ids), query={"ids": {"values": d.row_ids}},
                    source=False, ignore_unavailable=True, allow_no_indices=True))
                where = {h["_id"]: h["_index"] for h in resp["hits"]["hits"]}
            for stub in outlier_documents(d):
                rid = stub["doc_id"]
                index = where.get(rid) or self.records_index(d.model, end or d.timestamp)
                # the stub is what a refused score's dead letter keeps (an action that may not be
                # refused would hold the detections sink on that batch for good)
                actions.append(WriteAction("update", index, rid, {"doc": {"outlier": stub["outlier"]}, "upsert": stub},
                                           stub))
        self._write(actions)

    def write_deadletters(self, letters: Sequence[DeadLetter]) -> int:
        """Index the dead letters. One the cluster refuses whole (over its request size limit) is
        kept cut to the first :data:`CUT_BYTES` of its bytes, the reason saying so; the whole
        letter stays on the log's dead-letter topic."""
        out = self._write_letters(letters)
        if not out.refused:
            return out.written
        cut = [_cut(letters[p], reason) for p, reason in out.refused]
        again = self._write_letters(cut)
        if again.refused:
            raise AuditStoreError(f"Elasticsearch refused dead letters even cut to {CUT_BYTES} bytes: "
                                  f"{again.refused[0][1]}")
        return out.written + again.written

    def _write_letters(self, letters: Sequence[DeadLetter]) -> Outcome:
        op: Op = "create" if self.cfg.data_stream else "index"
        actions = []
        for dl in letters:
            doc = dl.to_dict()
            doc["@timestamp"] = dl.timestamp
            actions.append(WriteAction(op, self._stream_or_daily("deadletters", dl.timestamp), dl.id, doc))
        bulk = _Bulk(self, actions)
        return self._engine.write([len(line) for line in bulk.lines], bulk)

    def refresh(self) -> None:
        """Make everything written so far searchable (tests and batch jobs; never per write)."""
        index = f"{self.prefix}-*"
        self._read("refresh", index, lambda: self.es.indices.refresh(index=index))

    # -- reads --------------------------------------------------------------------------------
    def _query(self, q: SearchQuery) -> tuple[str, dict[str, Any]]:
        index = f"{self.prefix}-{q.kind}-*"
        filters: list[dict[str, Any]] = []
        musts: list[dict[str, Any]] = []
        if q.model and q.kind != "deadletters":
            filters.append({"term": {"model": q.model}})
        if q.version and q.kind != "deadletters":
            filters.append({"term": {"version": q.version}})
        time_field = "timestamp" if q.kind != "detections" else "@timestamp"
        if q.since or q.until:
            rng: dict[str, Any] = {}
            if q.since:
                rng["gte"] = q.since.isoformat()
            if q.until:
                rng["lte"] = q.until.isoformat()
            filters.append({"range": {time_field: rng}})
        if q.id:
            if q.kind == "records":
                # a request id also finds every graph node's record (<request id>/<node>)
                filters.append({"bool": {"should": [{"term": {"record_id": q.id}}, {"term": {"doc_id": q.id}},
                                                    {"prefix": {"record_id": f"{q.id}/"}}],
                                         "minimum_should_match": 1}})
            else:
                filters.append({"term": {"id": q.id}})
        if q.drift_only and q.kind == "detections":
            filters.append({"bool": {"should": [{"term": {"is_drift": True}}, {"term": {"is_outlier": True}}],
                                     "minimum_should_match": 1}})
        if q.text:
            field = {"records": "payload_text", "detections": "drifted_features", "deadletters": "reason"}[q.kind]
            musts.append({"match": {field: q.text}} if q.kind != "detections" else {"term": {field: q.text}})
        return index, {"bool": {"filter": filters, "must": musts}}

    def search(self, query: SearchQuery) -> list[dict[str, Any]]:
        index, body = self._query(query)
        time_field = "@timestamp" if query.kind == "detections" else "timestamp"
        sort: list[Any] = [{time_field: {"order": "desc", "unmapped_type": "date", "missing": "_last"}}]
        if query.kind == "records":
            sort.append({"doc_id": {"order": "asc", "unmapped_type": "keyword"}})
        resp = self._read("search", index, lambda: self.es.search(
            index=index, query=body, size=query.limit, sort=sort, ignore_unavailable=True, allow_no_indices=True))
        docs = []
        for h in resp["hits"]["hits"]:
            src = h["_source"]
            src.pop("fulltext", None)
            src.pop("payload_text", None)  # documents written before fulltext
            src.pop("input_num", None)
            src.pop("@timestamp", None)
            src.pop("drifted_features", None) if query.kind == "detections" else None
            docs.append(src)
        return docs

    def count(self, query: SearchQuery) -> int:
        index, body = self._query(query)
        resp = self._read("count", index, lambda: self.es.count(
            index=index, query=body, ignore_unavailable=True, allow_no_indices=True))
        return int(resp["count"])

    def get(self, doc_id: str) -> dict[str, Any] | None:
        index = f"{self.prefix}-records-*"
        resp = self._read("get", index, lambda: self.es.search(
            index=index, query={"ids": {"values": [doc_id]}}, size=1, ignore_unavailable=True, allow_no_indices=True))
        hits = resp["hits"]["hits"]
        if not hits:
            return None
        src = hits[0]["_source"]
        src.pop("fulltext", None)
        src.pop("payload_text", None)  # documents written before fulltext
        src.pop("input_num", None)
        return dict(src)

    # -- whole time ranges: streamed rows, and distributions counted in the cluster ------------
    def _rows_of(self, model: str) -> str:
        """The model's records indices, without the labels waiting for their predictions."""
        return f"{self.prefix}-records-{_safe(model)}-*,-{self.waiting_index(model)}"

    def row_pages(self, model: str, *, version: str | None = None, since: datetime | None = None,
                  until: datetime | None = None, page: int = 10_000) -> Iterator[list[dict[str, Any]]]:
        """Every audited row of ``model`` in the time range, oldest first (``timestamp``, then
        ``doc_id``), page by page: ``{"timestamp", "input"}`` per row. Read through a point in
        time with ``search_after``: one consistent view, memory bounded by a page, no
        ``max_result_window`` limit."""
        _, query = self._query(SearchQuery(kind="records", model=model, version=version, since=since, until=until))
        yield from self._pages(self._rows_of(model), query, ["timestamp", "input"], page)

    def _pages(self, index: str, query: dict[str, Any], source: list[str], page: int = 10_000
               ) -> Iterator[list[dict[str, Any]]]:
        """The ``_source`` (``source`` fields) of every document ``query`` finds, oldest first,
        page by page through a point in time (:meth:`row_pages`)."""
        if not self._read("finding the indices", index, lambda: self.es.indices.exists(
                index=index, allow_no_indices=False, ignore_unavailable=True)):
            return
        pit = self._read("opening a point in time", index, lambda: self.es.open_point_in_time(
            index=index, keep_alive="5m", ignore_unavailable=True))["id"]
        sort = [{"timestamp": {"order": "asc", "missing": "_last"}}, {"doc_id": {"order": "asc"}}]
        after: list[Any] | None = None
        try:
            while True:
                extra: dict[str, Any] = {"search_after": after} if after is not None else {}
                resp = self._whole("reading rows", index, functools.partial(
                    self._heavy().search, pit={"id": pit, "keep_alive": "5m"}, query=query, size=page, sort=sort,
                    source_includes=source, track_total_hits=False, **extra))
                hits = resp["hits"]["hits"]
                if not hits:
                    return
                pit = resp.get("pit_id", pit)
                after = hits[-1]["sort"]
                yield [h["_source"] for h in hits]
                if len(hits) < page:
                    return
        finally:
            try:
                self.es.close_point_in_time(id=pit)
            except Exception:  # expired or already gone: nothing to release
                log.debug("closing point in time failed", exc_info=True)

    def aggregate(self, model: str, *, numeric: dict[str, Sequence[float]], categorical: dict[str, bool],
                  version: str | None = None, since: datetime | None = None, until: datetime | None = None,
                  every: str | None = None, max_categories: int = 10_000) -> list[dict[str, Any]]:
        """Distributions of ``model``'s inputs counted inside the cluster, per time bucket.

        ``numeric``: feature -> sorted edges; each feature's counts in ``[edges[k-1], edges[k])``
        (a ``range`` aggregation on ``input_num.<feature>``). ``categorical``: feature -> whether
        its categories are numbers (terms on ``input_num``) or text (terms on the flattened
        ``input``; its cells that are numbers are counted as numbers, from ``input_num``:
        the number ``1`` is not the category ``"1"``, as on the values). ``every``: a fixed ``date_histogram`` interval (``1h``, ``1d``), else one
        bucket for the whole range. One bucket per time slot with rows::

            {"start", "end", "rows", "cells": {f: [counts]}, "numbers": {f: values counted},
             "present": {f: cells present}, "categories": {f: {category: count}},
             "odd": {f: {text: count}}, "other": {f: 0}, "values": {f: [cell, ...]}}

        ``present`` counts the cells of the feature in ``input`` (any type), so
        ``rows - present`` is missing and, for a feature counted on ``input_num``,
        ``present - numbers`` is cells that are not numbers there: text (``"1.5"``, ``"?"``),
        booleans. Those come back as ``odd``: their text as the flattened field holds it
        (``"true"`` for a boolean) and how often, for the caller to read as a test on the
        values would. Categories are complete: a feature with more than ``max_categories``
        of them (or odd cells) is counted again page by page (a ``composite`` aggregation),
        so nothing is left out. Requests are split so that no response holds more than
        ~20,000 buckets (the cluster's ``search.max_buckets`` is 65,536 by default).

        Cells the index does not give back as they are (the documents' ``input_odd``: lists,
        objects, text over 1,024 characters, the text ``"true"``/``"false"``) are left out of
        the counts and come back as ``values``: ``{f: [cell, ...]}``, read from the documents,
        for the caller to count as a test on the values would (they are in ``present``). Rows
        written before ``input_odd`` existed are counted from the index as they are.
        """
        _, query = self._query(SearchQuery(kind="records", model=model, version=version, since=since, until=until))
        index = self._rows_of(model)
        wanted = [*numeric, *categorical]
        marked: set[str] = set()
        if wanted:  # which features have such cells here (usually none: then nothing else changes)
            resp = self._whole("finding odd cells", index, functools.partial(
                self._heavy().search, index=index, query=query, size=0, ignore_unavailable=True,
                allow_no_indices=True, aggs={"odd": {"terms": {"field": "input_odd", "include": wanted,
                                                               "size": len(wanted)}}}))
            marked = {b["key"] for b in ((resp.get("aggregations") or {}).get("odd") or {}).get("buckets", [])}

        def plain(f: str, q: dict[str, Any]) -> dict[str, Any]:
            """``q`` without the documents whose cell of ``f`` is read from the documents."""
            return {"bool": {"filter": [q], "must_not": [{"term": {"input_odd": f}}]}} if f in marked else q

        def not_numbers(f: str) -> dict[str, Any]:
            """The query's documents whose cell of ``f`` is in the index and not a number."""
            return {"bool": {"filter": [plain(f, query)], "must_not": [_has_number(f)]}}

        def wrap(f: str, aggs: dict[str, Any]) -> dict[str, Any]:
            if f not in marked:
                return aggs
            return {f"x|{f}": {"filter": {"bool": {"must_not": [{"term": {"input_odd": f}}]}}, "aggs": aggs}}

        def per_feature() -> Iterator[tuple[str, dict[str, Any], int]]:
            for f, edges in numeric.items():
                e = [float(x) for x in edges]
                ranges = [{"to": e[0]}] + [{"from": a, "to": b} for a, b in itertools.pairwise(e)] \
                    + [{"from": e[-1]}] if e else [{}]
                yield f, wrap(f, {f"n|{f}": {"range": {"field": f"input_num.{f}", "ranges": ranges}},
                                  f"c|{f}": {"value_count": {"field": f"input.{f}"}}}), len(ranges) + 1
            for f, numbers in categorical.items():
                count = {f"c|{f}": {"value_count": {"field": f"input.{f}"}}}
                if numbers:
                    yield f, wrap(f, {f"t|{f}": {"terms": {"field": f"input_num.{f}", "size": max_categories}},
                                      **count}), 100
                else:  # text, and the cells that are numbers as numbers (their text is not their category)
                    yield f, wrap(f, {f"y|{f}": {"filter": {"bool": {"must_not": [_has_number(f)]}}, "aggs": {
                        f"t|{f}": {"terms": {"field": f"input.{f}", "size": max_categories}}}},
                        f"u|{f}": {"terms": {"field": f"input_num.{f}", "size": max_categories}}, **count}), 200

        slots = 1
        if every:
            span = self._whole("finding the time range", index, functools.partial(
                self._heavy().search, index=index, query=query, size=0, ignore_unavailable=True, allow_no_indices=True,
                aggs={"lo": {"min": {"field": "timestamp"}}, "hi": {"max": {"field": "timestamp"}}}))["aggregations"]
            if span["lo"]["value"] is None:
                return []
            step = _interval_ms(every)
            slots = int((span["hi"]["value"] // step) - (span["lo"]["value"] // step)) + 1
        groups: list[dict[str, Any]] = [{}]
        size = 0
        for _, aggs, n in per_feature():
            if groups[-1] and (size + n) * slots > 20_000:
                groups.append({})
                size = 0
            groups[-1].update(aggs)
            size += n
        out: dict[Any, dict[str, Any]] = {}
        for aggs in groups:
            body = {"slots": {"date_histogram": {"field": "timestamp", "fixed_interval": every, "min_doc_count": 1},
                              "aggs": aggs}} if every else aggs
            resp = self._whole("aggregating inputs", index, functools.partial(
                self._heavy().search, index=index, query=query, size=0, aggs=body, track_total_hits=True,
                ignore_unavailable=True, allow_no_indices=True))
            if every:
                slots_out = [(b["key"], b["doc_count"], b) for b in resp["aggregations"]["slots"]["buckets"]]
            else:
                total = resp["hits"]["total"]["value"]
                slots_out = [(None, total, resp.get("aggregations") or {})] if total else []
            for key, rows, b in slots_out:
                slot = out.setdefault(key, {
                    "start": datetime.fromtimestamp(key / 1000, UTC) if key is not None else since,
                    "end": datetime.fromtimestamp((key + _interval_ms(every)) / 1000, UTC) if key is not None
                    else until, "rows": int(rows), "cells": {}, "numbers": {}, "present": {}, "categories": {},
                    "odd": {}, "other": {}, "values": {}})
                named = [(n, a) for n, a in b.items() if isinstance(a, dict) and "|" in n]
                for name, agg in named:  # (the list grows as wrappers are opened)
                    if name[:2] in ("x|", "y|"):  # a feature's counts without its odd cells, its text cells
                        named += [(n, a) for n, a in agg.items() if isinstance(a, dict) and "|" in n]
                for name, agg in named:
                    kind, f = name.split("|", 1)
                    if kind == "n":
                        cells = [int(x["doc_count"]) for x in agg["buckets"]]
                        slot["cells"][f] = cells
                        slot["numbers"][f] = sum(cells)
                    elif kind in ("t", "u"):  # a text feature's text cells (t) and number cells (u)
                        cats = slot["categories"].setdefault(f, {})
                        cats.update({x["key"]: int(x["doc_count"]) for x in agg["buckets"]})
                        slot["other"][f] = slot["other"].get(f, 0) + int(agg.get("sum_other_doc_count", 0))
                        slot["numbers"][f] = sum(cats.values()) + slot["other"][f]
                    elif kind == "c":
                        slot["present"][f] = int(agg["value"])
        # what the first pass left out: categories beyond max_categories, and cells of a feature
        # counted on input_num that are not numbers there; counted again, completely, page by page
        for f, numbers in categorical.items():
            if any(s["other"].get(f) for s in out.values()):
                if numbers:
                    full = self._all_terms(index, plain(f, query), f"input_num.{f}", every)
                else:
                    full = self._all_terms(index, not_numbers(f), f"input.{f}", every)
                    for k, cats in self._all_terms(index, plain(f, query), f"input_num.{f}", every).items():
                        full.setdefault(k, {}).update(cats)
                for k, s in out.items():
                    s["categories"][f] = full.get(k, {})
                    s["other"][f] = 0
                    s["numbers"][f] = sum(s["categories"][f].values())
        on_numbers = [*numeric, *(f for f, numbers in categorical.items() if numbers)]
        for f in on_numbers:
            if any(s["present"].get(f, 0) > s["numbers"].get(f, 0) for s in out.values()):
                odd = self._all_terms(index, not_numbers(f), f"input.{f}", every)
                for k, s in out.items():
                    if odd.get(k):
                        s["odd"][f] = odd[k]
        if marked:
            every_ms = _interval_ms(every) if every else None
            for page in self._pages(index, {"bool": {"filter": [query, {"terms": {"input_odd": sorted(marked)}}]}},
                                    ["timestamp", "input", "input_odd"]):
                for doc in page:
                    if every_ms is None:
                        key = None
                    else:
                        ms = int(parse_timestamp(str(doc["timestamp"])).timestamp() * 1000)
                        key = ms - ms % every_ms  # the date_histogram's bucket (fixed intervals from the epoch)
                    into = out.get(key)
                    row = doc.get("input") or {}
                    odd_here = doc.get("input_odd") or []
                    for f in [odd_here] if isinstance(odd_here, str) else odd_here:
                        if f in marked and f in row and into is not None:
                            into["values"].setdefault(f, []).append(row[f])
                            into["present"][f] = into["present"].get(f, 0) + 1
        return [out[k] for k in sorted(out, key=lambda k: -1 if k is None else k)]

    def _all_terms(self, index: str, query: dict[str, Any], field: str, every: str | None,
                   page: int = 10_000) -> dict[Any, dict[Any, int]]:
        """Every term of ``field`` and its count, per ``every`` time slot (key: the slot's start
        in epoch ms, as ``date_histogram`` gives it) or for the whole range (key ``None``):
        a ``composite`` aggregation read page by page, complete whatever the number of terms."""
        sources: list[dict[str, Any]] = []
        if every:
            sources.append({"s": {"date_histogram": {"field": "timestamp", "fixed_interval": every}}})
        sources.append({"k": {"terms": {"field": field}}})
        out: dict[Any, dict[Any, int]] = {}
        after: dict[str, Any] | None = None
        while True:
            comp: dict[str, Any] = {"size": page, "sources": sources}
            if after is not None:
                comp["after"] = after
            resp = self._whole("counting terms", index, functools.partial(
                self._heavy().search, index=index, query=query, size=0, aggs={"all": {"composite": comp}},
                ignore_unavailable=True, allow_no_indices=True))
            agg = (resp.get("aggregations") or {}).get("all") or {}
            for b in agg.get("buckets", []):
                slot = out.setdefault(b["key"].get("s"), {})
                slot[b["key"]["k"]] = slot.get(b["key"]["k"], 0) + int(b["doc_count"])
            after = agg.get("after_key")
            if after is None or len(agg.get("buckets", [])) < page:
                return out

    def close(self) -> None:
        self._engine.close()
        self.es.close()

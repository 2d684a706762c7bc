"""The one way in: every collector hands :class:`Envelope` s to :meth:`Ingestor.ingest`.

A collector (HTTP CloudEvents or plain JSON, and the next ones: a logging proxy, an SDK, Seldon
Core v2 topics) only says what it received. It fills an :class:`Envelope` — the
:class:`~inferwatch.record.InferenceRecord` fields its transport already knows, named as the
record names them, with the payloads not decoded yet — and hands it to the ingestor, which:

1. decodes each envelope into a record (:func:`to_record`), or a
   :class:`~inferwatch.record.DeadLetter` carrying the raw bytes and the reason;
2. removes personal data (:class:`~inferwatch.redact.Redactor`, the ``redact`` section) from
   records and dead letters, so nothing after this point ever holds it;
3. appends both to the log durably (group commit: concurrent requests share one write, and
   each caller is answered only after its own messages are durable) within a deadline
   (``collector.append_deadline_s``): a log that is down or slow makes the append fail fast
   with :class:`~inferwatch.errors.LogError` (a breaker remembers the outage and probes), and a
   full queue with :class:`~inferwatch.admission.Overloaded`; the collector answers both 503
   with ``Retry-After``;
4. skips records acknowledged a moment ago (a client's resend after a timeout): answered as
   accepted, not appended twice;
5. counts them on the pipeline's :class:`~inferwatch.metrics.Metrics`.

A new way in is one module with a class satisfying :class:`Collector`, registered in
:mod:`inferwatch.wiring`.

>>> env = Envelope(source="json", raw=b"", fields={"model": "m", "id": "r1", "request": {"instances": [[1, 2]]}})
>>> rec = to_record(env)
>>> rec.id, rec.part, rec.protocol, rec.inputs
('r1', 'request', 'kserve-v1', {'f0': [1], 'f1': [2]})
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

import orjson

from inferwatch.admission import Breaker, Overloaded
from inferwatch.codecs import Budget, BudgetExceeded, decode
from inferwatch.codecs.base import describe
from inferwatch.codecs.limits import check_depth
from inferwatch.config import Config
from inferwatch.dedup import SeenKeys
from inferwatch.errors import DecodeError, LogError
from inferwatch.log import KeyValue, Log
from inferwatch.metrics import Metrics
from inferwatch.record import (
    RECORD_FIELDS,
    DeadLetter,
    InferenceRecord,
    Part,
    encode_body,
    new_id,
    parse_timestamp,
)
from inferwatch.redact import Redactor
from inferwatch.table import Table, from_rows

__all__ = ["BatchAppender", "Collector", "Envelope", "Ingestor", "Outcome", "derived_id", "gc_paused",
           "to_record"]

log = logging.getLogger("inferwatch.collector")
T = TypeVar("T")


@dataclass(slots=True)
class Envelope:
    """One record as a collector received it, not decoded yet.

    ``fields`` are :class:`~inferwatch.record.InferenceRecord` fields by the record's own names
    (one form: nothing here repeats a record field). ``request``/``response`` hold the payloads
    as received (bytes, text or parsed JSON): they are decoded into ``inputs``/``outputs`` unless
    those tables are given, and kept verbatim. With ``part="feedback"`` and no tables, ``request``
    is a feedback object ``{request?, response?, truth?}``. ``truth_payload`` is a response-shaped
    payload decoded into ``truth``. ``raw`` is what a dead letter keeps when decoding fails;
    ``content_type`` is the payload's media type as the transport said.
    """

    source: str
    raw: bytes
    fields: dict[str, Any] = field(default_factory=dict)
    content_type: str | None = None
    truth_payload: Any = None
    #: the id of a record that brings none (from the request's ``Idempotency-Key`` or content,
    #: see :func:`derived_id`); ``None``: a new UUIDv7
    default_id: str | None = None

    def __post_init__(self) -> None:
        unknown = self.fields.keys() - RECORD_FIELDS
        if unknown:
            raise ValueError(f"not InferenceRecord fields: {sorted(unknown)}")


_HALVES = (("request", "inputs", "request"), ("response", "outputs", "response"))


def _table(value: Any, key: str) -> Table:
    if isinstance(value, list):
        if not all(isinstance(r, dict) for r in value):
            raise DecodeError(f"'{key}' rows must be objects", protocol="json-record")
        value = from_rows(value)
    if not isinstance(value, dict) or any(not isinstance(v, list) for v in value.values()) \
            or len({len(v) for v in value.values()}) > 1:
        raise DecodeError(f"'{key}' must be a table (column -> list) or a list of rows", protocol="json-record")
    check_depth(value, "json-record", f"'{key}'")  # cells are kept as given: bound their nesting
    return {str(k): v for k, v in value.items()}


#: longest record id (UTF-8 bytes): a document id adds ``-<row>`` and Elasticsearch takes 512
MAX_ID_BYTES = 400
_TEXT_FIELDS = ("id", "model", "version", "namespace", "endpoint", "trace", "protocol")


def _text_fields(f: dict[str, Any]) -> None:
    """Record fields that are text: strings (numbers are written as text), nothing else."""
    for key in _TEXT_FIELDS:
        value = f.get(key)
        if value is None or isinstance(value, str):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            f[key] = str(value)
        else:
            raise DecodeError(f"'{key}' is {describe(value)}, not a string", protocol="json-record")
    latency = f.get("latency_ms")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, (int, float))):
        raise DecodeError(f"'latency_ms' is {describe(latency)}, not a number", protocol="json-record")


def _meta(value: Any) -> dict[str, str]:
    """``meta``: an object; values that are not text are kept as their JSON."""
    if not isinstance(value, Mapping):
        raise DecodeError("'meta' must be an object of strings", protocol="json-record")
    out = {}
    for k, v in value.items():
        if isinstance(v, str):
            out[str(k)] = v
        else:
            check_depth(v, "json-record", f"meta {str(k)[:40]!r}")
            out[str(k)] = orjson.dumps(v).decode()
    return out


def _schema(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a payload says about its tensors (name, datatype, shape) and binary columns."""
    out = {k: meta[k] for k in ("tensors", "encodings") if meta.get(k)}
    return out or None


def _payload_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return orjson.dumps(value)


def _feedback(body: Any, protocol: str | None, budget: Budget | None = None) -> dict[str, Any]:
    try:
        obj = orjson.loads(body) if isinstance(body, bytes | str) else body
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"feedback body is not JSON: {exc}", protocol="feedback") from None
    if not isinstance(obj, dict) or not ({"truth", "request", "response", "reward"} & obj.keys()):
        raise DecodeError("feedback must be an object", protocol="feedback",
                          expected="{request?, response?, truth?, reward?}")
    out = {}
    for key, table, part in (("request", "inputs", "request"), ("response", "outputs", "response"),
                             ("truth", "truth", "response")):
        if obj.get(key) is not None:
            out[table] = decode(obj[key], part=part, protocol=protocol, budget=budget).table  # type: ignore[arg-type]
    return out


def to_record(env: Envelope, default_protocol: str | None = None, budget: Budget | None = None) -> InferenceRecord:
    """Decode an envelope into a record; raises :class:`DecodeError` with the reason
    (:class:`~inferwatch.codecs.BudgetExceeded` naming the limit when over ``budget``)."""
    f = {k: v for k, v in env.fields.items() if v is not None and not (k == "timestamp" and v == "")}
    forced = f.pop("protocol", None) or default_protocol
    part: Part | None = f.get("part")
    detected: str | None = None
    payload: dict[str, Any] = {}  # what the payload says about itself (model_name, id, model_version)
    if part == "feedback" and not {"inputs", "outputs", "truth"} & f.keys():
        f.update(_feedback(f.get("request", b""), forced, budget))
    else:
        for body_key, table_key, codec_part in _HALVES:
            if table_key in f:
                f[table_key] = _table(f[table_key], table_key)
            elif body_key in f:
                d = decode(f[body_key], part=codec_part, protocol=forced,  # type: ignore[arg-type]
                           content_type=env.content_type, budget=budget)
                f[table_key] = d.table
                f[f"{table_key[:-1]}_schema"] = _schema(d.meta)
                detected = detected or d.protocol
                payload = payload or d.meta
    if "truth" in f and part != "feedback":
        f["truth"] = _table(f["truth"], "truth")
    elif env.truth_payload is not None:
        f["truth"] = decode(env.truth_payload, part="response", protocol=forced, budget=budget).table
    if part is None:
        if "inputs" not in f and "outputs" not in f:
            raise DecodeError("the record has neither request/inputs nor response/outputs", protocol="json-record")
        f["part"] = "both" if "inputs" in f and "outputs" in f else ("request" if "inputs" in f else "response")
    _text_fields(f)
    model = f.get("model") or payload.get("model_name")
    if not model:
        raise DecodeError("no model name: set the Ce-Inferenceservicename/Ce-Modelid header, "
                          "the 'model' query parameter or the payload's model_name")
    f["model"] = str(model)
    f["id"] = str(f.get("id") or payload.get("id") or env.default_id or new_id())
    if len(f["id"].encode()) > MAX_ID_BYTES:  # stores key documents by it (Elasticsearch: 512 bytes)
        raise DecodeError(f"the record id is longer than {MAX_ID_BYTES} bytes", protocol="json-record")
    version = f.get("version")
    if version is None or version == "":
        version = payload.get("model_version") or None
    f["version"] = None if version is None or isinstance(version, (dict, list)) else str(version)
    if "timestamp" in f:
        try:
            f["timestamp"] = parse_timestamp(f["timestamp"])
        except ValueError:
            raise DecodeError(f"bad timestamp {f['timestamp']!r}", protocol="json-record") from None
    if "meta" in f:
        f["meta"] = _meta(f["meta"])
    f["protocol"] = detected or forced or ("json" if env.source == "json" else None)
    f.setdefault("source", env.source)
    for body_key, _, _ in _HALVES:
        if body_key in f:
            f[body_key], f[f"{body_key}_encoding"] = encode_body(_payload_bytes(f[body_key]))
    try:
        return InferenceRecord(**f)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"invalid record: {exc}", protocol="json-record") from None


def derived_id(key: bytes, route: str, idempotency_key: str | None, index: int, env: Envelope) -> str:
    """The id of the ``index``-th record of a request that brings no id of its own: a keyed hash
    (HMAC-SHA256) of the route, the request's ``Idempotency-Key``, the item's place, its header
    fields (but their time, which a client may stamp per attempt) and its bytes. A resend of the
    same request gets the same ids; another key or another body, other ids. Keyed, so an id
    reveals nothing of a body (it is computed before personal data is redacted).

    >>> e = Envelope(source="json", raw=b'{"model": "m", "inputs": {"x": [1]}}', fields={"model": "m"})
    >>> a = derived_id(b"k", "/v1/records", "key-1", 0, e)
    >>> a == derived_id(b"k", "/v1/records", "key-1", 0, e), a == derived_id(b"k", "/v1/records", "key-2", 0, e)
    (True, False)
    """
    mac = hmac.new(key, digestmod=hashlib.sha256)
    fields = {k: v for k, v in env.fields.items() if k not in ("timestamp", "id")}
    for part in (route.encode(), (idempotency_key or "").encode(), str(index).encode(),
                 orjson.dumps(fields, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=repr),
                 env.raw):
        mac.update(len(part).to_bytes(8, "little"))
        mac.update(part)
    return "h-" + mac.hexdigest()[:40]


class BatchAppender:
    """Group commit: concurrent ``append`` calls share one durable write per topic.

    With a ``deadline`` each caller waits at most that long for its write to be durable, then
    gets :class:`LogError` (the write may still complete later: the answer is "not known to be
    durable", and a resend of the same record is recognised by its id downstream). A failing
    log opens the ``breaker``: appends are refused at once, one probe at a time gets through.
    At most ``max_pending_bytes`` wait for the log; past that appends get :class:`Overloaded`.
    """

    def __init__(self, log: Log, max_batch: int = 5000, *, deadline: float | None = None,
                 breaker: Breaker | None = None, max_pending_bytes: int = 256 * 1024 * 1024,
                 retry_after: float = 1.0):
        self.log = log
        self.max_batch = max_batch
        self.deadline = deadline
        self.breaker = breaker or Breaker()
        self.max_pending_bytes = max_pending_bytes
        self.retry_after = retry_after
        self.pending_bytes = 0
        self._pending: list[tuple[str, Sequence[KeyValue], asyncio.Future[None], int]] = []
        self._task: asyncio.Task[None] | None = None

    async def append(self, topic: str, items: Sequence[KeyValue]) -> None:
        if not self.breaker.allow():
            raise LogError(f"the log is unavailable (failing for {self.breaker.down_for_s:.0f}s: "
                           f"{self.breaker.last_error})")
        nbytes = sum(map(message_bytes, items))
        if self.pending_bytes and self.pending_bytes + nbytes > self.max_pending_bytes:
            raise Overloaded(f"{self.pending_bytes} bytes already wait for the log", self.retry_after)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((topic, items, fut, nbytes))
        self.pending_bytes += nbytes
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        if self.deadline is None:
            await fut
            return
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.deadline)
        except TimeoutError:
            fut.add_done_callback(_consume)  # the write goes on; its outcome is nobody's error
            self.breaker.failure(f"no durable append within {self.deadline:g}s")
            raise LogError(f"the log did not confirm the write within {self.deadline:g}s") from None

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            by_topic: dict[str, list[KeyValue]] = {}
            for topic, items, _, _ in batch:
                by_topic.setdefault(topic, []).extend(items)
            try:
                for topic, items in by_topic.items():
                    await asyncio.to_thread(self.log.append, topic, items)
            except Exception as exc:  # answer every waiter with the failure
                self.breaker.failure(exc)
                for _, _, fut, _ in batch:
                    if not fut.done():
                        fut.set_exception(exc if isinstance(exc, LogError) else LogError(str(exc)))
            else:
                self.breaker.success()
                for _, _, fut, _ in batch:
                    if not fut.done():
                        fut.set_result(None)
            finally:
                self.pending_bytes -= sum(n for *_, n in batch)


def _consume(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()


_gc_lock = threading.Lock()
_gc_users = 0


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while deliveries decode. Decoding allocates millions of
    short-lived, acyclic containers that reference counting frees; a collection in the middle
    would walk all of them while holding the GIL, and the event loop (``/healthz`` included)
    would wait for it. Collections resume when no decode is running."""
    global _gc_users
    with _gc_lock:
        _gc_users += 1
        if _gc_users == 1:
            gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.enable()


def _without_gc(fn: Callable[..., T], *args: Any) -> T:
    with gc_paused():
        return fn(*args)


def plain_message(r: InferenceRecord) -> KeyValue:
    """A record as a log message: keyed by its model, its JSON as the value."""
    return r.model.encode(), r.to_json()


def message_bytes(item: KeyValue) -> int:
    """The bytes a log message holds (key, value and audit documents)."""
    return sum(len(part) for part in item if part is not None)


@dataclass(slots=True)
class Outcome:
    """What became of one envelope: its record, or its dead letter and the HTTP status that
    refusal deserves (400, or 413 for a payload over its size or time budget)."""

    record: InferenceRecord | None = None
    letter: DeadLetter | None = None
    status: int = 202


_UNEXPECTED = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError,
               orjson.JSONEncodeError)


class Ingestor:
    """Decode envelopes and append records (or dead letters) to the log durably.

    Decoding a large delivery runs off the event loop, on ``collector.decode_workers`` threads
    (so at most that many decode at once), under a per-delivery :class:`~inferwatch.codecs.Budget`
    (``collector.max_depth``, ``max_columns``, ``max_cells``, ``decode_seconds``); deliveries up
    to ``collector.inline_decode_bytes`` are decoded in place, which is cheaper than a hand-off.
    """

    def __init__(self, log: Log, cfg: Config, metrics: Metrics,
                 message: Callable[[InferenceRecord], KeyValue] = plain_message):
        self.log = log
        self.cfg = cfg
        self.metrics = metrics
        c = cfg.collector
        self.breaker = Breaker(probe_interval_s=min(1.0, c.retry_after_s or 1.0))
        self.appender = BatchAppender(log, deadline=c.append_deadline_s, breaker=self.breaker,
                                      max_pending_bytes=c.max_inflight_bytes, retry_after=c.retry_after_s)
        self.redactor = Redactor.from_config(cfg.redact)
        self.recent = SeenKeys(max_keys=c.recent_keys, max_age_s=600.0)
        self._pool = ThreadPoolExecutor(max_workers=c.decode_workers, thread_name_prefix="decode")
        self._limits = (c.max_depth, c.max_columns, c.max_cells)
        #: how a record becomes its log message (the wiring's ``log_message``: with the audit
        #: documents when the log carries them and the store takes them)
        self.message = message

    @property
    def decode_pool(self) -> ThreadPoolExecutor:
        """The ``collector.decode_workers`` threads large deliveries decode on (a collector reads
        a large body into envelopes there too)."""
        return self._pool

    @property
    def log_ok(self) -> bool:
        """False while the log is failing (the collector is then not ready)."""
        return not self.breaker.open

    async def offload(self, fn: Callable[..., T], size: int, *args: Any) -> T:
        """``fn(*args)`` on a decode thread when ``size`` bytes are worth it, else in place; with
        the cyclic garbage collector paused while it runs (:func:`gc_paused`)."""
        if size <= self.cfg.collector.inline_decode_bytes:
            # paused here too: a full collection inside a small delivery's decode was charged to
            # its CPU budget (collector.decode_seconds), up to 0.4 s measured in a large process
            return _without_gc(fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, _without_gc, fn, *args)

    def deadline(self) -> float:
        """A wall-clock backstop for a delivery received now (``time.monotonic()``): ten times
        ``collector.decode_seconds``. The budget itself is CPU time (see :meth:`_convert`), so a
        busy machine does not turn valid deliveries into dead letters; this only bounds how long a
        starved process keeps decoding one."""
        return time.monotonic() + 10 * self.cfg.collector.decode_seconds

    def _convert(self, envelopes: Sequence[Envelope], deadline: float
                 ) -> tuple[list[Outcome], list[KeyValue], list[KeyValue]]:
        """Envelopes -> outcomes and the log messages of records and dead letters (serialised here,
        off the loop). One delivery shares one budget of ``collector.decode_seconds`` of this
        thread's CPU time (and the wall-clock backstop ``deadline``)."""
        seconds = self.cfg.collector.decode_seconds
        default = self.cfg.collector.default_protocol
        cpu_end = time.thread_time() + seconds
        outcomes: list[Outcome] = []
        rec_items: list[KeyValue] = []
        dl_items: list[KeyValue] = []
        for env in envelopes:
            left = min(cpu_end - time.thread_time(), deadline - time.monotonic())
            try:
                if left <= 0:
                    raise BudgetExceeded("max_seconds", f"the delivery took longer than {seconds} s to decode")
                depth, columns, cells = self._limits
                budget = Budget(max_depth=depth, max_columns=columns, max_cells=cells, max_seconds=left)
                rec = to_record(env, default, budget)
                if self.redactor is not None:
                    self.redactor.record(rec)
                rec_items.append(self.message(rec))
                outcomes.append(Outcome(record=rec))
            except DecodeError as exc:
                status = exc.status if isinstance(exc, BudgetExceeded) else 400
                reason = str(exc)
                if isinstance(exc, BudgetExceeded) and exc.limit == "max_seconds":
                    reason = f"decoding took longer than collector.decode_seconds={seconds} s (limit max_seconds)"
                outcomes.append(Outcome(letter=_letter(env, reason), status=status))
            except _UNEXPECTED as exc:  # a bug, but never a 500 for the sender: kept, said, logged
                log.error("unexpected %s decoding a %s envelope", type(exc).__name__, env.source, exc_info=True)
                outcomes.append(Outcome(letter=_letter(env, f"cannot decode: {type(exc).__name__}: {exc}"[:500]),
                                        status=400))
            letter = outcomes[-1].letter
            if letter is not None:
                if self.redactor is not None:
                    self.redactor.deadletter(letter)
                dl_items.append((letter.source.encode(), letter.to_json()))
        return outcomes, rec_items, dl_items

    async def ingest_each(self, envelopes: Sequence[Envelope], rejected: Sequence[DeadLetter] = (), *,
                          deadline: float | None = None) -> list[Outcome]:
        """Decode and durably append; one :class:`Outcome` per envelope, in order. Raises on log failure.

        ``rejected`` are items of the same delivery the collector could not even read as envelopes;
        they are kept with the others. ``deadline`` (``time.monotonic()``) ends the delivery's
        decoding time; by default ``collector.decode_seconds`` from now."""
        _count(self.metrics.received, [dl.source for dl in rejected] + [e.source for e in envelopes])
        size = sum(len(e.raw) for e in envelopes)
        outcomes, rec_items, dl_items = await self.offload(
            self._convert, size, envelopes, self.deadline() if deadline is None else deadline)
        if self.redactor is not None:
            for dl in rejected:
                self.redactor.deadletter(dl)
        dl_items = [(dl.source.encode(), dl.to_json()) for dl in rejected] + dl_items
        records = [o.record for o in outcomes if o.record is not None]
        letters = list(rejected) + [o.letter for o in outcomes if o.letter is not None]
        await self._append(records, letters, rec_items, dl_items)
        return outcomes

    async def ingest(self, envelopes: Sequence[Envelope], rejected: Sequence[DeadLetter] = ()
                     ) -> tuple[list[InferenceRecord], list[DeadLetter]]:
        """:meth:`ingest_each`, answered as (records, dead letters)."""
        outcomes = await self.ingest_each(envelopes, rejected)
        letters = list(rejected) + [o.letter for o in outcomes if o.letter is not None]
        return [o.record for o in outcomes if o.record is not None], letters

    async def reject(self, raw: bytes, source: str, reason: str) -> DeadLetter:
        """Keep a payload the collector could not even read as envelopes (stage ``receive``)."""
        dl = DeadLetter(raw=raw, source=source, reason=reason, stage="receive")
        if self.redactor is not None:
            self.redactor.deadletter(dl)
        await self.append([], [dl])
        return dl

    async def append(self, records: Sequence[InferenceRecord], letters: Sequence[DeadLetter]) -> None:
        await self._append(records, letters, [self.message(r) for r in records],
                           [(dl.source.encode(), dl.to_json()) for dl in letters])

    async def _append(self, records: Sequence[InferenceRecord], letters: Sequence[DeadLetter],
                      rec_items: list[KeyValue], dl_items: list[KeyValue]) -> None:
        topics = self.cfg.log
        now = time.monotonic()
        keys = [r.identity() for r in records]
        fresh = [i for i, k in enumerate(keys) if not self.recent.seen(k, now)]
        if len(fresh) < len(records):  # a resend of records acknowledged a moment ago
            self.metrics.duplicates.labels(stage="collector").inc(len(records) - len(fresh))
            records = [records[i] for i in fresh]
            rec_items = [rec_items[i] for i in fresh]
            keys = [keys[i] for i in fresh]
        waits = []
        if rec_items:
            waits.append(self.appender.append(topics.records_topic, rec_items))
        if dl_items:
            waits.append(self.appender.append(topics.deadletter_topic, dl_items))
        results = await asyncio.gather(*waits, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        for k in keys:
            self.recent.add(k, now)
        per_model: dict[tuple[str, str], list[int]] = {}
        for r in records:
            n = per_model.setdefault((r.model, r.version or ""), [0, 0])
            n[0] += 1
            n[1] += r.n_rows
            self.metrics.observe_outputs(r.model, r.version, r.outputs)
            if r.part == "feedback" and r.truth:
                labels = sum(1 for col in r.truth.values() for v in col if v is not None)
                self.metrics.feedback_labels.labels(model=r.model, version=r.version or "").inc(labels)
        for (model, version), (count, rows) in per_model.items():
            self.metrics.decoded.labels(model=model, version=version).inc(count)
            self.metrics.rows.labels(model=model, version=version).inc(rows)
        per_source: dict[tuple[str, str], int] = {}
        for dl in letters:
            per_source[(dl.source, dl.stage)] = per_source.get((dl.source, dl.stage), 0) + 1
        for (source, stage), count in per_source.items():
            self.metrics.deadlettered.labels(source=source, stage=stage).inc(count)
        for dl in letters[:10]:
            log.warning("dead letter from %s: %s", dl.source, dl.reason[:300])
        if len(letters) > 10:
            log.warning("... and %d more dead letters in the same delivery", len(letters) - 10)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _count(counter: Any, sources: list[str]) -> None:
    per: dict[str, int] = {}
    for source in sources:
        per[source] = per.get(source, 0) + 1
    for source, n in per.items():
        counter.labels(source=source).inc(n)


def _letter(env: Envelope, reason: str) -> DeadLetter:
    f = env.fields
    meta = {"id": f.get("id"), "model": f.get("model"), "part": f.get("part"), "content_type": env.content_type}
    return DeadLetter(raw=env.raw, source=env.source, reason=reason, stage="decode",
                      meta={k: str(v)[:200] for k, v in meta.items() if v and isinstance(v, (str, int, float))})


@runtime_checkable
class Collector(Protocol):
    """A way in. ``start`` begins receiving in the background and returns once the collector
    takes traffic; everything received goes to ``ingestor.ingest`` as :class:`Envelope` s.
    ``stop`` stops receiving (what was acknowledged is already on the log)."""

    name: str

    def start(self, ingestor: Ingestor) -> None: ...

    def stop(self) -> None: ...

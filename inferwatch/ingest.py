"""The one way in: every collector hands :class:`Envelope` s to :meth:`Ingestor.ingest`.

A collector (HTTP CloudEvents or plain JSON, and the next ones: a logging proxy, an SDK, Seldon
Core v2 topics) only says what it received. It fills an :class:`Envelope` — the
:class:`~inferwatch.record.InferenceRecord` fields its transport already knows, named as the
record names them, with the payloads not decoded yet — and hands it to the ingestor, which:

1. decodes each envelope into a record (:func:`to_record`), or a
   :class:`~inferwatch.record.DeadLetter` carrying the raw bytes and the reason;
2. appends both to the log durably (group commit: concurrent requests share one write, and
   each caller is answered only after its own messages are durable);
3. counts them on the pipeline's :class:`~inferwatch.metrics.Metrics`.

A new way in is one module with a class satisfying :class:`Collector`, registered in
:mod:`inferwatch.wiring`.

>>> env = Envelope(source="json", raw=b"", fields={"model": "m", "id": "r1", "request": {"instances": [[1, 2]]}})
>>> rec = to_record(env)
>>> rec.id, rec.part, rec.protocol, rec.inputs
('r1', 'request', 'kserve-v1', {'f0': [1], 'f1': [2]})
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import orjson

from inferwatch.codecs import decode
from inferwatch.config import Config
from inferwatch.errors import DecodeError
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
from inferwatch.table import Table, from_rows

__all__ = ["BatchAppender", "Collector", "Envelope", "Ingestor", "to_record"]

log = logging.getLogger("inferwatch.collector")


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

    def __post_init__(self) -> None:
        unknown = self.fields.keys() - RECORD_FIELDS
        if unknown:
            raise ValueError(f"not InferenceRecord fields: {sorted(unknown)}")


_HALVES = (("request", "inputs", "request"), ("response", "outputs", "response"))


def _table(value: Any, key: str) -> Table:
    if isinstance(value, list):
        value = from_rows(value)
    if not isinstance(value, dict) or any(not isinstance(v, list) for v in value.values()) \
            or len({len(v) for v in value.values()}) > 1:
        raise DecodeError(f"'{key}' must be a table (column -> list) or a list of rows", protocol="json-record")
    return value


def _payload_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return orjson.dumps(value)


def _feedback(body: Any, protocol: str | None) -> dict[str, Any]:
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
            out[table] = decode(obj[key], part=part, protocol=protocol).table  # type: ignore[arg-type]
    return out


def to_record(env: Envelope, default_protocol: str | None = None) -> InferenceRecord:
    """Decode an envelope into a record; raises :class:`DecodeError` with the reason."""
    f = {k: v for k, v in env.fields.items() if v is not None and not (k == "timestamp" and v == "")}
    forced = f.pop("protocol", None) or default_protocol
    part: Part | None = f.get("part")
    detected: str | None = None
    payload: dict[str, Any] = {}  # what the payload says about itself (model_name, id, model_version)
    if part == "feedback" and not {"inputs", "outputs", "truth"} & f.keys():
        f.update(_feedback(f.get("request", b""), forced))
    else:
        for body_key, table_key, codec_part in _HALVES:
            if table_key in f:
                f[table_key] = _table(f[table_key], table_key)
            elif body_key in f:
                d = decode(f[body_key], part=codec_part, protocol=forced,  # type: ignore[arg-type]
                           content_type=env.content_type)
                f[table_key] = d.table
                detected = detected or d.protocol
                payload = payload or d.meta
    if "truth" in f and part != "feedback":
        f["truth"] = _table(f["truth"], "truth")
    elif env.truth_payload is not None:
        f["truth"] = decode(env.truth_payload, part="response", protocol=forced).table
    if part is None:
        if "inputs" not in f and "outputs" not in f:
            raise DecodeError("the record has neither request/inputs nor response/outputs", protocol="json-record")
        f["part"] = "both" if "inputs" in f and "outputs" in f else ("request" if "inputs" in f else "response")
    model = f.get("model") or payload.get("model_name")
    if not model:
        raise DecodeError("no model name: set the Ce-Inferenceservicename/Ce-Modelid header, "
                          "the 'model' query parameter or the payload's model_name")
    f["model"] = str(model)
    f["id"] = str(f.get("id") or payload.get("id") or new_id())
    version = f.get("version")
    if version is None or version == "":
        version = payload.get("model_version") or None
    f["version"] = None if version is None else str(version)
    if "timestamp" in f:
        try:
            f["timestamp"] = parse_timestamp(f["timestamp"])
        except ValueError:
            raise DecodeError(f"bad timestamp {f['timestamp']!r}", protocol="json-record") from None
    if "meta" in f:
        if not isinstance(f["meta"], Mapping):
            raise DecodeError("'meta' must be an object of strings", protocol="json-record")
        f["meta"] = {str(k): str(v) for k, v in f["meta"].items()}
    f["protocol"] = detected or forced or ("json" if env.source == "json" else None)
    f.setdefault("source", env.source)
    for body_key, _, _ in _HALVES:
        if body_key in f:
            f[body_key], f[f"{body_key}_encoding"] = encode_body(_payload_bytes(f[body_key]))
    try:
        return InferenceRecord(**f)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"invalid record: {exc}", protocol="json-record") from None


class BatchAppender:
    """Group commit: concurrent ``append`` calls share one durable write per topic."""

    def __init__(self, log: Log, max_batch: int = 5000):
        self.log = log
        self.max_batch = max_batch
        self._pending: list[tuple[str, Sequence[KeyValue], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def append(self, topic: str, items: Sequence[KeyValue]) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((topic, items, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        await fut

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            by_topic: dict[str, list[KeyValue]] = {}
            for topic, items, _ in batch:
                by_topic.setdefault(topic, []).extend(items)
            try:
                for topic, items in by_topic.items():
                    await asyncio.to_thread(self.log.append, topic, items)
            except Exception as exc:  # answer every waiter with the failure
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
            else:
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_result(None)


class Ingestor:
    """Decode envelopes and append records (or dead letters) to the log durably."""

    def __init__(self, log: Log, cfg: Config, metrics: Metrics):
        self.log = log
        self.cfg = cfg
        self.metrics = metrics
        self.appender = BatchAppender(log)

    async def ingest(self, envelopes: Sequence[Envelope], rejected: Sequence[DeadLetter] = ()
                     ) -> tuple[list[InferenceRecord], list[DeadLetter]]:
        """Decode and durably append; returns (records, dead letters). Raises on log failure.

        ``rejected`` are items of the same delivery the collector could not even read as envelopes;
        they are kept (and answered) with the others."""
        records: list[InferenceRecord] = []
        letters: list[DeadLetter] = list(rejected)
        for dl in rejected:
            self.metrics.received.labels(source=dl.source).inc()
        default = self.cfg.collector.default_protocol
        for env in envelopes:
            self.metrics.received.labels(source=env.source).inc()
            try:
                records.append(to_record(env, default))
            except DecodeError as exc:
                f = env.fields
                meta = {"id": f.get("id"), "model": f.get("model"), "part": f.get("part"),
                        "content_type": env.content_type}
                letters.append(DeadLetter(raw=env.raw, source=env.source, reason=str(exc), stage="decode",
                                          meta={k: str(v) for k, v in meta.items() if v}))
        await self.append(records, letters)
        return records, letters

    async def reject(self, raw: bytes, source: str, reason: str) -> DeadLetter:
        """Keep a payload the collector could not even read as envelopes (stage ``receive``)."""
        dl = DeadLetter(raw=raw, source=source, reason=reason, stage="receive")
        await self.append([], [dl])
        return dl

    async def append(self, records: Sequence[InferenceRecord], letters: Sequence[DeadLetter]) -> None:
        topics = self.cfg.log
        waits = []
        if records:
            waits.append(self.appender.append(
                topics.records_topic, [(r.model.encode(), r.to_json()) for r in records]))
        if letters:
            waits.append(self.appender.append(
                topics.deadletter_topic, [(dl.source.encode(), dl.to_json()) for dl in letters]))
        await asyncio.gather(*waits)
        for r in records:
            self.metrics.decoded.labels(model=r.model, version=r.version or "").inc()
            self.metrics.rows.labels(model=r.model, version=r.version or "").inc(r.n_rows)
        for dl in letters:
            self.metrics.deadlettered.labels(source=dl.source, stage=dl.stage).inc()
            log.warning("dead letter from %s: %s", dl.source, dl.reason)


@runtime_checkable
class Collector(Protocol):
    """A way in. ``start`` begins receiving in the background and returns once the collector
    takes traffic; everything received goes to ``ingestor.ingest`` as :class:`Envelope` s.
    ``stop`` stops receiving (what was acknowledged is already on the log)."""

    name: str

    def start(self, ingestor: Ingestor) -> None: ...

    def stop(self) -> None: ...

"""Turning what collectors receive into records on the log, or dead letters.

Every collector (HTTP CloudEvents, plain JSON, file replay, ...) fills an :class:`Envelope`
and hands it to :class:`Ingestor`, which decodes it into an :class:`InferenceRecord` or, when
that fails, a :class:`DeadLetter` carrying the raw bytes and the reason. Appends are grouped:
concurrent requests share one durable log write (group commit), and each caller is answered
only after its own messages are durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from inferwatch.codecs import decode
from inferwatch.config import Config
from inferwatch.errors import DecodeError
from inferwatch.log import KeyValue, Log
from inferwatch.record import DeadLetter, InferenceRecord, Part, encode_body, new_id
from sinks.prometheus import Metrics

__all__ = ["BatchAppender", "Envelope", "Ingestor", "envelope_to_record"]

log = logging.getLogger("inferwatch.collector")


@dataclass(slots=True)
class Envelope:
    """One payload as a collector received it, with what the transport said about it."""

    body: bytes
    source: str
    part: Part
    id: str | None = None
    model: str | None = None
    version: str | None = None
    namespace: str | None = None
    endpoint: str | None = None
    timestamp: datetime | None = None
    latency_ms: float | None = None
    content_type: str | None = None
    protocol: str | None = None
    trace: str | None = None
    meta: dict[str, str] = field(default_factory=dict)


def _feedback(body: bytes, protocol: str | None) -> tuple[Any, Any, Any]:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"feedback body is not JSON: {exc}", protocol="feedback") from None
    if not isinstance(obj, dict) or not ({"truth", "request", "response", "reward"} & obj.keys()):
        raise DecodeError("feedback must be an object", protocol="feedback",
                          expected="{request?, response?, truth?, reward?}")

    def table(key: str, part: str) -> Any:
        return decode(obj[key], part=part, protocol=protocol).table if obj.get(key) is not None else None  # type: ignore[arg-type]

    return table("request", "request"), table("response", "response"), table("truth", "response")


def envelope_to_record(env: Envelope, default_protocol: str | None = None) -> InferenceRecord:
    """Decode an envelope; raises :class:`DecodeError` with the reason."""
    protocol = env.protocol or default_protocol
    inputs = outputs = truth = None
    if env.part == "feedback":
        inputs, outputs, truth = _feedback(env.body, protocol)
        proto = protocol
        meta_p: dict[str, Any] = {}
    else:
        decoded = decode(env.body, part="response" if env.part == "response" else "request",
                         protocol=protocol, content_type=env.content_type)
        proto, meta_p = decoded.protocol, decoded.meta
        if env.part == "response":
            outputs = decoded.table
        else:
            inputs = decoded.table
    model = env.model or meta_p.get("model_name")
    if not model:
        raise DecodeError("no model name: set the Ce-Inferenceservicename/Ce-Modelid header, "
                          "the 'model' query parameter or the payload's model_name")
    text, enc = encode_body(env.body)
    rec = InferenceRecord(
        id=env.id or meta_p.get("id") or new_id(),
        model=str(model),
        version=env.version or (str(meta_p["model_version"]) if meta_p.get("model_version") else None),
        namespace=env.namespace,
        endpoint=env.endpoint,
        latency_ms=env.latency_ms,
        protocol=proto,
        inputs=inputs,
        outputs=outputs,
        truth=truth,
        trace=env.trace,
        source=env.source,
        meta=env.meta,
        part=env.part,
    )
    if env.timestamp is not None:
        rec.timestamp = env.timestamp
    if env.part == "response":
        rec.response, rec.response_encoding = text, enc
    else:
        rec.request, rec.request_encoding = text, enc
    return rec


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

    async def ingest(self, envelopes: Sequence[Envelope]) -> tuple[list[InferenceRecord], list[DeadLetter]]:
        """Decode and durably append; returns (records, dead letters). Raises on log failure."""
        records: list[InferenceRecord] = []
        letters: list[DeadLetter] = []
        for env in envelopes:
            self.metrics.received.labels(source=env.source).inc()
            try:
                records.append(envelope_to_record(env, self.cfg.collector.default_protocol))
            except DecodeError as exc:
                letters.append(DeadLetter(raw=env.body, source=env.source, reason=str(exc), stage="decode",
                                          meta={k: v for k, v in {
                                              "id": env.id, "model": env.model, "part": env.part,
                                              "content_type": env.content_type}.items() if v}))
        await self.append(records, letters)
        return records, letters

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

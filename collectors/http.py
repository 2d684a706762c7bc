"""The HTTP collector: CloudEvents (Seldon Core and KServe payload loggers) and plain JSON.

Routes:

* ``POST /`` (also ``/cloudevents``) — a CloudEvent in binary mode (``Ce-*`` headers, body is
  the payload), structured mode (``application/cloudevents+json``) or batched mode
  (``application/cloudevents-batch+json``). Event types ending in ``.request``, ``.response``
  and ``.feedback`` are understood (``io.seldon.serving.inference.*``,
  ``org.kubeflow.serving.inference.*``).
* ``POST /v1/records`` — one record object or a list of them:
  ``{"model", "id"?, "version"?, "request"?, "response"?, "inputs"?, "outputs"?, ...}``.
* ``GET /healthz``, ``GET /readyz``, ``GET /metrics``.

Both routes turn what they read into :class:`~inferwatch.ingest.Envelope` s and hand them to
the one ingest path (:class:`~inferwatch.ingest.Ingestor`). ``202`` means the records are
durably on the log. ``400``/``413``/``415`` carry a reason, and the
rejected body is kept as a dead letter (its id is in the answer). ``503`` means the log could not
take the write: nothing was accepted, retry.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inferwatch.config import CollectorConfig
from inferwatch.errors import DecodeError, InferwatchError
from inferwatch.ingest import Envelope, Ingestor
from inferwatch.metrics import CONTENT_TYPE
from inferwatch.record import DeadLetter, InferenceRecord, Part, parse_timestamp

__all__ = ["HTTPCollector", "create_app", "envelope_from_cloudevent", "envelope_from_json"]

log = logging.getLogger("inferwatch.collector")

_PARTS: dict[str, Part] = {"request": "request", "response": "response", "feedback": "feedback"}
_CE_META = ("modelid", "component", "source", "type", "inferenceservicename", "metadata", "specversion", "id")
#: the record fields a ``/v1/records`` item may set (other keys are ignored)
_JSON_FIELDS = ("id", "model", "version", "namespace", "endpoint", "timestamp", "latency_ms", "protocol",
                "inputs", "outputs", "truth", "request", "response", "trace", "meta")


def _event_time(value: str | None) -> datetime | None:
    """A CloudEvent's ``time``; one that does not parse is left out (the receive time is used)."""
    if not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("0", "false", "no", "")


def envelope_from_cloudevent(attrs: Mapping[str, str], body: bytes, *, query: Mapping[str, str] | None = None,
                             headers: Mapping[str, str] | None = None,
                             allowed_headers: tuple[str, ...] = ()) -> Envelope:
    """An :class:`Envelope` from CloudEvent attributes (lower-case, without ``ce-``).

    >>> env = envelope_from_cloudevent(
    ...     {"type": "org.kubeflow.serving.inference.request", "id": "42",
    ...      "inferenceservicename": "sklearn-iris", "namespace": "prod", "endpoint": "canary"},
    ...     b'{"instances": [[1, 2]]}')
    >>> [env.fields[k] for k in ("part", "id", "model", "version", "namespace")]
    ['request', '42', 'sklearn-iris', 'canary', 'prod']
    """
    query = query or {}
    headers = headers or {}
    ce_type = attrs.get("type", "")
    part = _PARTS.get(ce_type.rsplit(".", 1)[-1])
    if part is None:
        raise ValueError(
            f"unsupported CloudEvent type {ce_type!r}: expected a type ending in .request, .response or .feedback"
        )
    meta = {f"ce-{k}": v for k, v in attrs.items() if k in _CE_META and v}
    meta.update({k: v for k, v in headers.items() if k in allowed_headers})
    return Envelope(
        source="cloudevents",
        raw=body,
        content_type=attrs.get("datacontenttype") or headers.get("content-type"),
        fields={
            "part": part,
            "response" if part == "response" else "request": body,
            "id": attrs.get("requestid") or attrs.get("id") or headers.get("x-request-id"),
            "model": query.get("model") or attrs.get("inferenceservicename") or attrs.get("modelid"),
            "version": query.get("version") or attrs.get("modelversion") or attrs.get("endpoint"),
            "namespace": attrs.get("namespace"),
            "endpoint": attrs.get("endpoint"),
            "timestamp": _event_time(attrs.get("time")),
            "protocol": query.get("protocol"),
            "trace": attrs.get("traceparent") or headers.get("traceparent"),
            "meta": meta,
        },
    )


def _structured(event: Any, query: Mapping[str, str], allowed: tuple[str, ...], headers: Mapping[str, str]) -> Envelope:
    if not isinstance(event, dict):
        raise ValueError("a structured CloudEvent must be a JSON object")
    attrs = {str(k).lower(): str(v) for k, v in event.items() if k not in ("data", "data_base64") and v is not None}
    if "data_base64" in event:
        data = base64.b64decode(event["data_base64"], validate=True)
    elif "data" in event:
        raw = event["data"]
        data = raw.encode() if isinstance(raw, str) else orjson.dumps(raw)
    else:
        raise ValueError("the CloudEvent has no data")
    return envelope_from_cloudevent(attrs, data, query=query, headers=headers, allowed_headers=allowed)


def envelope_from_json(item: Any) -> Envelope:
    """An :class:`Envelope` from one ``/v1/records`` item; :class:`DecodeError` when it is no record.

    The item's keys are record fields (``request``/``response`` payloads are decoded unless
    ``inputs``/``outputs`` tables are given), plus ``truth_payload``; other keys are ignored.

    >>> envelope_from_json({"model": "m", "inputs": {"x": [1]}}).fields
    {'model': 'm', 'inputs': {'x': [1]}}
    """
    if not isinstance(item, dict):
        raise DecodeError("a record must be a JSON object", protocol="json-record")
    if not item.get("model"):
        raise DecodeError("the record has no 'model'", protocol="json-record")
    fields = {k: item[k] for k in _JSON_FIELDS if k in item}
    return Envelope(source="json", raw=orjson.dumps(item), fields=fields, truth_payload=item.get("truth_payload"))


class _Routes:
    """The handlers of :func:`create_app`: read a body, turn it into envelopes, answer."""

    def __init__(self, ingestor: Ingestor, ready: Callable[[], bool] | None):
        self.ingestor = ingestor
        self.cfg = ingestor.cfg.collector
        self.metrics = ingestor.metrics
        self.allowed = tuple(h.lower() for h in self.cfg.allowed_headers)
        self.ready_check = ready

    async def read_body(self, request: Request) -> bytes | Response:
        """The body, or the 413 answer when it exceeds ``max_body_bytes`` (counted while reading)."""
        limit = self.cfg.max_body_bytes
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            return await self.reject(413, f"body of {length} bytes exceeds max_body_bytes={limit}", b"", "http")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return await self.reject(413, f"body exceeds max_body_bytes={limit}", bytes(body[:65536]), "http")
        return bytes(body)

    async def reject(self, status: int, reason: str, raw: bytes, source: str, *, count: bool = False) -> Response:
        """Answer ``status`` with the reason, keeping the payload as a dead letter (503 if it cannot be kept)."""
        if count:
            self.metrics.received.labels(source=source).inc()
        try:
            dl = await self.ingestor.reject(raw, source, reason)
        except Exception as exc:  # the log is down: say so, the client must retry
            return JSONResponse({"error": reason, "deadletter_error": str(exc)}, status_code=503)
        log.warning("rejected %s payload (%d): %s", source, status, reason)
        return JSONResponse({"error": reason, "deadletter": dl.id}, status_code=status)

    async def accept(self, envelopes: list[Envelope], rejected: list[DeadLetter] | None = None) -> Response:
        """Ingest; 202 with the ids when every item was appended, 400 naming the first reason (and
        the dead letter that keeps its bytes) when some were not, 503 when the log failed."""
        try:
            records, letters = await self.ingestor.ingest(envelopes, rejected or [])
        except InferwatchError as exc:
            log.error("log append failed: %s", exc)
            return JSONResponse({"error": f"the log is unavailable: {exc}"}, status_code=503)
        return _answer(records, letters)

    async def cloudevents(self, request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            body = await self.read_body(request)
            if isinstance(body, Response):
                return body
            headers = {k.lower(): v for k, v in request.headers.items()}
            if _truthy(headers.get("seldon-skip-logging")):
                return Response(status_code=204)
            try:
                envs = self._cloudevent_envelopes(body, headers, dict(request.query_params))
            except (ValueError, orjson.JSONDecodeError) as exc:
                return await self.reject(400, f"invalid CloudEvent: {exc}", body, "cloudevents", count=True)
            if envs is None:
                return await self.reject(
                    400, "not a CloudEvent: binary mode needs Ce-Type (and Ce-Id) headers, or send "
                    "Content-Type: application/cloudevents+json", body, "cloudevents", count=True)
            return await self.accept(envs)
        finally:
            self.metrics.collector_latency.observe(time.perf_counter() - t0)

    def _cloudevent_envelopes(self, body: bytes, headers: dict[str, str], query: dict[str, str]
                              ) -> list[Envelope] | None:
        """Structured, batched or binary mode; ``None`` when the request is no CloudEvent at all."""
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/cloudevents+json":
            return [_structured(orjson.loads(body), query, self.allowed, headers)]
        if ctype == "application/cloudevents-batch+json":
            events = orjson.loads(body)
            if not isinstance(events, list):
                raise ValueError("a CloudEvents batch must be a JSON array")
            return [_structured(e, query, self.allowed, headers) for e in events]
        attrs = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
        if "type" not in attrs:
            return None
        return [envelope_from_cloudevent(attrs, body, query=query, headers=headers, allowed_headers=self.allowed)]

    async def records(self, request: Request) -> Response:
        body = await self.read_body(request)
        if isinstance(body, Response):
            return body
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return await self.reject(400, f"body is not JSON: {exc}", body, "json", count=True)
        envs: list[Envelope] = []
        rejected: list[DeadLetter] = []
        for item in items if isinstance(items, list) else [items]:
            try:
                envs.append(envelope_from_json(item))
            except DecodeError as exc:
                rejected.append(DeadLetter(raw=orjson.dumps(item), source="json", reason=str(exc)))
        return await self.accept(envs, rejected)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        ok = self.ready_check() if self.ready_check is not None else True
        return JSONResponse({"ready": bool(ok)}, status_code=200 if ok else 503)

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE)


def _answer(records: list[InferenceRecord], letters: list[DeadLetter]) -> Response:
    body: dict[str, Any] = {"accepted": len(records), "ids": [r.id for r in records],
                            "rows": sum(r.n_rows for r in records)}
    if letters:
        body["rejected"] = [{"error": dl.reason, "deadletter": dl.id} for dl in letters]
        body["error"], body["deadletter"] = letters[0].reason, letters[0].id
        return JSONResponse(body, status_code=400)
    return JSONResponse(body, status_code=202)


def create_app(ingestor: Ingestor, *, ready: Callable[[], bool] | None = None) -> Starlette:
    """The collector's ASGI app over an :class:`~inferwatch.ingest.Ingestor`."""
    r = _Routes(ingestor, ready)
    return Starlette(routes=[
        Route("/", r.cloudevents, methods=["POST"]),
        Route("/cloudevents", r.cloudevents, methods=["POST"]),
        Route("/v1/records", r.records, methods=["POST"]),
        Route("/healthz", r.healthz, methods=["GET"]),
        Route("/readyz", r.readyz, methods=["GET"]),
        Route("/metrics", r.metrics_endpoint, methods=["GET"]),
    ])


class HTTPCollector:
    """The HTTP way in as a :class:`~inferwatch.ingest.Collector`: :func:`create_app` served by
    uvicorn in a background thread on ``cfg.host:cfg.port`` (port 0 picks a free one)."""

    name = "http"

    def __init__(self, cfg: CollectorConfig, *, ready: Callable[[], bool] | None = None, start_timeout: float = 15.0):
        self.cfg = cfg
        self.ready = ready
        self.start_timeout = start_timeout
        self.server: Any = None
        self.thread: threading.Thread | None = None

    def start(self, ingestor: Ingestor) -> None:
        import uvicorn

        config = uvicorn.Config(create_app(ingestor, ready=self.ready), host=self.cfg.host, port=self.cfg.port,
                                log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="collector", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started and time.monotonic() < deadline:
            if not self.thread.is_alive():
                break
            time.sleep(0.02)
        if not self.server.started:
            raise InferwatchError(f"the collector could not start on {self.cfg.host}:{self.cfg.port}")
        log.info("collector listening on http://%s:%d", self.cfg.host, self.port)

    @property
    def port(self) -> int:
        """The port actually bound (the configured one before ``start``)."""
        if self.server is None or not self.server.servers:
            return self.cfg.port
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def alive(self) -> bool:
        return self.thread is None or self.thread.is_alive()

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(15)

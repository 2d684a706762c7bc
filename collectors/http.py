"""The HTTP collector: CloudEvents (Seldon Core and KServe payload loggers) and plain JSON.

Routes:

* ``POST /`` (also ``/cloudevents``) — a CloudEvent in binary mode (``Ce-*`` headers, body is
  the payload), structured mode (``application/cloudevents+json``) or batched mode
  (``application/cloudevents-batch+json``). Event types ending in ``.request``, ``.response``
  and ``.feedback`` are understood (``io.seldon.serving.inference.*``,
  ``org.kubeflow.serving.inference.*``).
* ``POST /v1/records`` — one record object or a list of them:
  ``{"model", "id"?, "version"?, "request"?, "response"?, "inputs"?, "outputs"?, ...}``.
* ``POST /v1/feedback`` — ground truth, late: one feedback item or a list of them (plain
  ``{"id", "row"?, "truth", "model"?}``, Open Inference Protocol ``outputs`` or Seldon Core
  feedback bodies; :mod:`collectors.feedback`), ``?model=`` for items without one.
* ``GET /healthz``, ``GET /readyz``, ``GET /metrics``.

Both routes turn what they read into :class:`~inferwatch.ingest.Envelope` s and hand them to
the one ingest path (:class:`~inferwatch.ingest.Ingestor`).

Answers:

* ``202`` — every event is durably on the log: ``{"accepted", "ids", "rows"}``.
* A batch (a CloudEvents batch, a ``/v1/records`` list) also lists ``results``, one per event in
  order: ``{"status": "accepted", "id"}`` or ``{"status": "deadlettered", "error", "deadletter"}``.
  When some events were accepted and others dead-lettered the answer is ``207`` (Multi-Status):
  a success, so a client does not resend the accepted events; the others are kept as dead
  letters (resending them would fail the same way).
* ``400`` — nothing was accepted; ``error`` names the reason, ``deadletter`` the dead letter that
  keeps the bytes. ``413`` — over a limit, named in the reason: ``max_body_bytes`` (the dead
  letter keeps the first 64 KiB), ``max_events``, ``max_columns``, ``max_cells``, ``max_seconds``
  (the delivery's decoding budget, ``collector.decode_seconds``); nesting deeper than
  ``collector.max_depth`` is a ``400`` naming ``max_depth``.
* ``503`` with ``Retry-After`` — the write is not known to be durable: the log is down or did
  not confirm it within ``collector.append_deadline_s``, or the collector is at its bounds of
  requests and bytes in flight (``collector.max_inflight_requests``, ``max_inflight_bytes``).
  Retry with the same record ids: a record is counted once (a resend of one acknowledged a
  moment ago is answered 202 without a second append, and the consumers skip copies).
* ``204`` — a true skip header (``Seldon-Skip-Logging``, ``collector.skip_headers``): not logged.
* A request whose client has gone before its body was decoded is dropped (not decoded, not logged).

With ``collector.auth_tokens`` every route but ``/healthz`` needs ``Authorization: Bearer <token>``
or ``X-API-Key: <token>`` (401 otherwise); with ``collector.tls_certfile``/``tls_keyfile`` the
collector serves HTTPS.

CloudEvents must carry ``id``, ``source``, ``specversion`` and ``type``; binary-mode header values
are percent-decoded (HTTP binding, section 3.1.3.2).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
import math
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collectors.feedback import feedback_envelopes
from inferwatch.admission import Admission, Overloaded
from inferwatch.codecs._parse import loads
from inferwatch.codecs.base import describe
from inferwatch.codecs.limits import BudgetExceeded, check_depth
from inferwatch.config import CollectorConfig
from inferwatch.errors import DecodeError, InferwatchError
from inferwatch.httpauth import TokenAuth, uvicorn_tls
from inferwatch.ingest import Envelope, Ingestor, Outcome, derived_id, gc_paused
from inferwatch.metrics import CONTENT_TYPE
from inferwatch.record import DeadLetter, Part, parse_timestamp

__all__ = ["HTTPCollector", "create_app", "envelope_from_cloudevent", "envelope_from_json"]

log = logging.getLogger("inferwatch.collector")
T = TypeVar("T")

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


_REQUIRED = ("id", "source", "specversion", "type")
_SPECVERSIONS = ("1.0", "0.3")
#: a dead letter keeps at most this much of a body that was refused for its size
PREFIX_KEEP = 65536


def header_value(raw: str) -> str:
    """A ``Ce-*`` header value as the attribute it carries (HTTP binding, section 3.1.3.2).

    Senders percent-encode (the CloudEvents SDK 2.x does); some send UTF-8 unencoded (KServe's
    Go SDK), which arrives here as latin-1 text. Both come back as the original string; a value
    whose percent-escapes are not UTF-8 is refused.

    >>> header_value("a%20b%2Fc%C3%A9"), header_value("plain"), header_value("caf\u00c3\u00a9")
    ('a b/cé', 'plain', 'café')
    """
    try:
        text = raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        text = raw
    if "%" not in text:
        return text
    try:
        return urllib.parse.unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise ValueError(f"header value {raw[:60]!r} is not percent-encoded UTF-8") from None


def _check_required(attrs: Mapping[str, str]) -> None:
    missing = [a for a in _REQUIRED if not attrs.get(a)]
    if missing:
        raise ValueError(f"the CloudEvent lacks the required attribute(s) {', '.join(missing)}")
    if attrs["specversion"] not in _SPECVERSIONS:
        raise ValueError(f"unsupported specversion {attrs['specversion'][:20]!r}: expected 1.0 (or 0.3)")


def envelope_from_cloudevent(attrs: Mapping[str, str], body: bytes, *, query: Mapping[str, str] | None = None,
                             headers: Mapping[str, str] | None = None,
                             allowed_headers: tuple[str, ...] = ()) -> Envelope:
    """An :class:`Envelope` from CloudEvent attributes (lower-case, without ``ce-``, decoded).

    The required attributes (``id``, ``source``, ``specversion``, ``type``) must be present. The
    record id is the exchange's pairing key: Seldon's ``requestid`` (shared by a request and its
    response) or KServe's ``id``. A Seldon graph logs every node (``modelid``: transformer, model,
    combiner) under one request id, so the node is part of the key: ``<requestid>/<modelid>``.
    ``version`` is the model version (a ``modelversion`` attribute, the ``version`` query
    parameter, else the payload's ``model_version``); ``endpoint`` (default / canary / shadow) is
    its own field.

    >>> env = envelope_from_cloudevent(
    ...     {"type": "org.kubeflow.serving.inference.request", "id": "42", "source": "kserve",
    ...      "specversion": "1.0", "inferenceservicename": "sklearn-iris", "namespace": "prod",
    ...      "endpoint": "canary"}, b'{"instances": [[1, 2]]}')
    >>> [env.fields.get(k) for k in ("part", "id", "model", "version", "endpoint", "namespace")]
    ['request', '42', 'sklearn-iris', None, 'canary', 'prod']
    >>> envelope_from_cloudevent({"type": "io.seldon.serving.inference.response", "id": "e1", "source": "s",
    ...     "specversion": "1.0", "requestid": "r1", "modelid": "transformer"}, b"{}").fields["id"]
    'r1/transformer'
    """
    query = query or {}
    headers = headers or {}
    _check_required(attrs)
    ce_type = attrs["type"]
    part = _PARTS.get(ce_type.rsplit(".", 1)[-1])
    if part is None:
        raise ValueError(
            f"unsupported CloudEvent type {ce_type!r}: expected a type ending in .request, .response or .feedback"
        )
    meta = {f"ce-{k}": v for k, v in attrs.items() if k in _CE_META and v}
    meta.update({k: v for k, v in headers.items() if k in allowed_headers})
    pair = attrs.get("requestid") or attrs["id"]
    node = attrs.get("modelid")
    return Envelope(
        source="cloudevents",
        raw=body,
        content_type=attrs.get("datacontenttype") or headers.get("content-type"),
        fields={
            "part": part,
            "response" if part == "response" else "request": body,
            "id": f"{pair}/{node}" if node and attrs.get("requestid") else pair,
            "model": query.get("model") or attrs.get("inferenceservicename") or node,
            "version": query.get("version") or attrs.get("modelversion"),
            "namespace": attrs.get("namespace"),
            "endpoint": attrs.get("endpoint"),
            "timestamp": _event_time(attrs.get("time")),
            "protocol": query.get("protocol"),
            "trace": attrs.get("traceparent") or headers.get("traceparent"),
            "meta": meta,
        },
    )


def _attribute(name: str, value: Any) -> str:
    """A structured-mode attribute as text; CloudEvents attributes are strings, integers or booleans."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    raise ValueError(f"attribute {name[:40]!r} is {describe(value)}: CloudEvents attributes are strings, "
                     "integers or booleans")


def _structured(event: Any, query: Mapping[str, str], allowed: tuple[str, ...], headers: Mapping[str, str],
                raw: bytes) -> Envelope:
    """One structured-mode event; ``raw`` (the event as received) is what its dead letter keeps."""
    if not isinstance(event, dict):
        raise ValueError("a structured CloudEvent must be a JSON object")
    attrs = {str(k).lower(): _attribute(str(k), v) for k, v in event.items()
             if k not in ("data", "data_base64") and v is not None}
    if "data_base64" in event:
        b64 = event["data_base64"]
        if not isinstance(b64, str):
            raise ValueError(f"data_base64 is {describe(b64)}, not a base64 string")
        try:
            data = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("data_base64 is not valid base64") from None
    elif "data" in event:
        value = event["data"]
        if isinstance(value, str):
            data = value.encode()
        else:
            check_depth(value, "cloudevents", "data")  # bounded below orjson's 255 levels
            data = orjson.dumps(value)
    else:
        raise ValueError("the CloudEvent has no data")
    env = envelope_from_cloudevent(attrs, data, query=query, headers=headers, allowed_headers=allowed)
    env.raw = raw
    return env


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
    # nesting bounded below orjson's 255 levels: the item's containers (its text fields are checked
    # as text by the ingest path; the depth check never needs the record id)
    check_depth({k: v for k, v in item.items() if isinstance(v, dict | list)}, "json-record", "the record")
    fields = {k: item[k] for k in _JSON_FIELDS if k in item}
    return Envelope(source="json", raw=orjson.dumps(item), fields=fields, truth_payload=item.get("truth_payload"))


def _item_bytes(item: Any, body: bytes) -> bytes:
    """One batch item's bytes for its dead letter; an item orjson cannot write (deeper than 255
    levels) keeps the first 64 KiB of the whole body instead."""
    try:
        return orjson.dumps(item)
    except (orjson.JSONEncodeError, TypeError):
        return body[:PREFIX_KEEP]


def _gc_free(fn: Callable[..., T], *args: Any) -> T:
    with gc_paused():
        return fn(*args)


#: ``(index into the envelopes, None)`` for an item read as an envelope, ``(None, letter)`` for
#: one refused while reading (its dead letter, answered with a 400)
Slot = tuple[int | None, DeadLetter | None]


class _Routes:
    """The handlers of :func:`create_app`: read a body, turn it into envelopes, answer."""

    def __init__(self, ingestor: Ingestor, ready: Callable[[], bool] | None):
        self.ingestor = ingestor
        self.cfg = ingestor.cfg.collector
        self.metrics = ingestor.metrics
        self.allowed = tuple(h.lower() for h in self.cfg.allowed_headers)
        self.skip = tuple(h.lower() for h in self.cfg.skip_headers)
        self.ready_check = ready
        self.admission = Admission(self.cfg.max_inflight_requests, self.cfg.max_inflight_bytes,
                                   self.cfg.retry_after_s)
        self.id_key = (self.cfg.id_key or "inferwatch-idempotency-key").encode()

    def default_ids(self, request: Request, envelopes: list[Envelope]) -> None:
        """Ids for the records of a request that bring none: derived from its ``Idempotency-Key``
        header (and body), or from the body alone with ``collector.id_from_content``; otherwise
        each attempt gets new ids (see :func:`~inferwatch.ingest.derived_id`)."""
        key = request.headers.get("idempotency-key")
        if not key and not self.cfg.id_from_content:
            return
        route = request.url.path
        for i, env in enumerate(envelopes):
            env.default_id = derived_id(self.id_key, route, key, i, env)

    async def parse(self, fn: Callable[..., T], size: int, *args: Any) -> T:
        """``fn(*args)`` — reading a body into envelopes — in place for a body of at most
        ``collector.inline_decode_bytes``, else on the ingest path's decode threads (which bound how
        many decode at once) with the cyclic garbage collector paused. The collector hands its own
        function to the threads: the ingest path never calls back into the collector."""
        if size <= self.cfg.inline_decode_bytes:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self.ingestor.decode_pool,
                                                                functools.partial(_gc_free, fn, *args))

    def busy(self, reason: str, why: str, retry_after: float | None = None) -> Response:
        """503 with Retry-After (whole seconds, at least 1)."""
        self.metrics.shed.labels(reason=why).inc()
        wait = self.cfg.retry_after_s if retry_after is None else retry_after
        return JSONResponse({"error": reason, "retry_after_s": wait}, status_code=503,
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})

    async def serve(self, request: Request, handle: Callable[[Request, bytes, float], Any]) -> Response:
        """Admission, skip headers, the body, the client-gone check, then ``handle(request, body,
        deadline)``; the delivery's decoding time runs from its arrival."""
        t0 = time.perf_counter()
        deadline = self.ingestor.deadline()
        length = request.headers.get("content-length", "")
        try:
            ticket = self.admission.admit(int(length) if length.isdigit() else 0)
        except Overloaded as exc:
            return self.busy(f"overloaded: {exc.reason}", "overload", exc.retry_after)
        try:
            if any(_truthy(request.headers.get(h)) for h in self.skip):
                self.metrics.shed.labels(reason="skip_header").inc()
                return Response(status_code=204)
            body = await self.read_body(request, ticket.grow)
            if isinstance(body, Response):
                return body
            if await request.is_disconnected():  # nobody waits for the answer: do no work
                self.metrics.shed.labels(reason="client_gone").inc()
                return Response(status_code=499)
            result: Response = await handle(request, body, deadline)
            return result
        except Overloaded as exc:
            return self.busy(f"overloaded: {exc.reason}", "overload", exc.retry_after)
        finally:
            ticket.release()
            self.metrics.collector_latency.observe(time.perf_counter() - t0)

    async def read_body(self, request: Request, charge: Callable[[int], None] | None = None) -> bytes | Response:
        """The body, or the 413 answer when it exceeds ``max_body_bytes``; the dead letter keeps
        the first 64 KiB either way (announced by Content-Length or found while reading). Bytes
        of a body without Content-Length are ``charge``d as they arrive."""
        limit = self.cfg.max_body_bytes
        length = request.headers.get("content-length")
        announced = bool(length and length.isdigit() and int(length) > limit)
        unannounced = not (length and length.isdigit())
        body = bytearray()
        async for chunk in request.stream():
            if charge is not None and unannounced:
                charge(len(chunk))
            body += chunk
            if announced and len(body) >= PREFIX_KEEP:
                break
            if len(body) > limit:
                return await self.reject(413, f"body exceeds max_body_bytes={limit} (limit max_body_bytes)",
                                         bytes(body[:PREFIX_KEEP]), "http", count=True)
        if announced:
            return await self.reject(413, f"body of {length} bytes exceeds max_body_bytes={limit} "
                                     "(limit max_body_bytes)", bytes(body[:PREFIX_KEEP]), "http", count=True)
        return bytes(body)

    async def reject(self, status: int, reason: str, raw: bytes, source: str, *, count: bool = False) -> Response:
        """Answer ``status`` with the reason, keeping the payload as a dead letter (503 if it cannot be kept)."""
        if count:
            self.metrics.received.labels(source=source).inc()
        try:
            dl = await self.ingestor.reject(raw, source, reason)
        except Overloaded as exc:
            return self.busy(f"{reason} (and it cannot be kept now: {exc.reason})", "overload", exc.retry_after)
        except Exception as exc:  # the log is down: say so, the client must retry
            return self.busy(f"{reason} (and it cannot be kept now: {exc})", "log_unavailable")
        log.warning("rejected %s payload (%d): %s", source, status, reason)
        return JSONResponse({"error": reason, "deadletter": dl.id}, status_code=status)

    async def accept(self, envelopes: list[Envelope], slots: list[Slot] | None = None, *, batch: bool,
                     deadline: float, request: Request | None = None) -> Response:
        """Ingest and answer each item (see :func:`_answer`); 503 when the log failed."""
        if request is not None:
            self.default_ids(request, envelopes)
        refused = [dl for _, dl in slots or [] if dl is not None]
        try:
            outcomes = await self.ingestor.ingest_each(envelopes, refused, deadline=deadline)
        except Overloaded as exc:
            return self.busy(f"overloaded: {exc.reason}", "overload", exc.retry_after)
        except InferwatchError as exc:
            log.warning("log append failed: %s", exc)
            return self.busy(f"the log is unavailable: {exc}", "log_unavailable")
        ordered: list[Outcome] = []
        for index, dl in slots if slots is not None else [(i, None) for i in range(len(envelopes))]:
            ordered.append(outcomes[index] if index is not None else Outcome(letter=dl, status=400))
        return _answer(ordered, batch=batch)

    async def cloudevents(self, request: Request) -> Response:
        return await self.serve(request, self._cloudevents)

    async def _cloudevents(self, request: Request, body: bytes, deadline: float) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = dict(request.query_params)
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/cloudevents-batch+json":
            try:
                envs, slots = await self.parse(self._batch, len(body), body, headers, query)
            except (ValueError, orjson.JSONDecodeError) as exc:
                status = exc.status if isinstance(exc, BudgetExceeded) else 400
                return await self.reject(status, f"invalid CloudEvents batch: {exc}", body, "cloudevents",
                                         count=True)
            return await self.accept(envs, slots, batch=True, deadline=deadline, request=request)
        try:
            env = await self.parse(self._single, len(body), body, headers, query, ctype)
        except (ValueError, orjson.JSONDecodeError) as exc:
            status = exc.status if isinstance(exc, BudgetExceeded) else 400
            return await self.reject(status, f"invalid CloudEvent: {exc}", body, "cloudevents", count=True)
        if env is None:
            return await self.reject(
                400, "not a CloudEvent: binary mode needs the Ce-Type, Ce-Id, Ce-Source and Ce-Specversion "
                "headers, or send Content-Type: application/cloudevents+json", body, "cloudevents", count=True)
        return await self.accept([env], batch=False, deadline=deadline, request=request)

    def _single(self, body: bytes, headers: dict[str, str], query: dict[str, str], ctype: str) -> Envelope | None:
        """A structured or binary event; ``None`` when the request is no CloudEvent at all."""
        if ctype == "application/cloudevents+json":
            return _structured(loads(body), query, self.allowed, headers, body)
        if not any(k.startswith("ce-") for k in headers):
            return None
        attrs = {k[3:]: header_value(v) for k, v in headers.items() if k.startswith("ce-")}
        return envelope_from_cloudevent(attrs, body, query=query, headers=headers, allowed_headers=self.allowed)

    def _batch(self, body: bytes, headers: dict[str, str], query: dict[str, str]) -> tuple[list[Envelope], list[Slot]]:
        """A batch: each event is read on its own, a bad one is refused alone."""
        events = loads(body)
        if not isinstance(events, list):
            raise ValueError("a CloudEvents batch must be a JSON array")
        self._check_count(len(events), "events in the batch")
        envs: list[Envelope] = []
        slots: list[Slot] = []
        for event in events:
            try:
                envs.append(_structured(event, query, self.allowed, headers, _item_bytes(event, body)))
                slots.append((len(envs) - 1, None))
            except ValueError as exc:  # DecodeError and BudgetExceeded are ValueErrors too
                slots.append((None, DeadLetter(raw=_item_bytes(event, body), source="cloudevents",
                                               reason=f"invalid CloudEvent: {exc}", stage="receive")))
        return envs, slots

    async def records(self, request: Request) -> Response:
        return await self.serve(request, self._records)

    async def _records(self, request: Request, body: bytes, deadline: float) -> Response:
        try:
            items = await self.parse(loads, len(body), body, "body is not JSON")
            batch = isinstance(items, list)
            envs, slots = await self.parse(self._record_items, len(body), items if batch else [items],
                                                      body)
        except DecodeError as exc:
            status = exc.status if isinstance(exc, BudgetExceeded) else 400
            return await self.reject(status, str(exc), body, "json", count=True)
        return await self.accept(envs, slots, batch=batch, deadline=deadline, request=request)

    def _check_count(self, n: int, what: str) -> None:
        limit = self.cfg.max_events
        if n > limit:
            raise BudgetExceeded("max_events", f"{n} {what}, more than {limit}")

    def _record_items(self, items: list[Any], body: bytes) -> tuple[list[Envelope], list[Slot]]:
        self._check_count(len(items), "records in the list")
        envs: list[Envelope] = []
        slots: list[Slot] = []
        for item in items:
            try:
                envs.append(envelope_from_json(item))
                slots.append((len(envs) - 1, None))
            except DecodeError as exc:
                slots.append((None, DeadLetter(raw=_item_bytes(item, body), source="json", reason=str(exc),
                                               stage="receive")))
        return envs, slots

    async def feedback(self, request: Request) -> Response:
        deadline = self.ingestor.deadline()
        body = await self.read_body(request)
        if isinstance(body, Response):
            return body
        try:
            items = await self.parse(loads, len(body), body, "body is not JSON")
            batch = isinstance(items, list)
            items = items if batch else [items]
            self._check_count(len(items), "feedback items in the list")
            envs, refused = await self.parse(
                lambda: feedback_envelopes(items, model=request.query_params.get("model")), len(body))
        except DecodeError as exc:
            status = exc.status if isinstance(exc, BudgetExceeded) else 400
            return await self.reject(status, str(exc), body, "feedback", count=True)
        # one result per request labelled (its items merged), then one per refused item
        slots: list[Slot] = [(i, None) for i in range(len(envs))] + [(None, dl) for dl in refused]
        return await self.accept(envs, slots, batch=batch, deadline=deadline)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        ok = bool(self.ready_check() if self.ready_check is not None else True)
        log_ok = self.ingestor.log_ok
        self.metrics.ready.labels(role="collector").set(1.0 if ok and log_ok else 0.0)
        body: dict[str, Any] = {"ready": ok and log_ok}
        if not log_ok:
            body["log"] = f"unavailable: {self.ingestor.breaker.last_error}"
        return JSONResponse(body, status_code=200 if ok and log_ok else 503)

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE)


def _result(o: Outcome) -> dict[str, Any]:
    if o.record is not None:
        return {"status": "accepted", "id": o.record.id}
    assert o.letter is not None
    return {"status": "deadlettered", "error": o.letter.reason, "deadletter": o.letter.id}


def _answer(outcomes: list[Outcome], *, batch: bool) -> Response:
    """One event: 202 with its id, or its 4xx (the status its refusal names) with the reason and
    dead letter. A batch (a CloudEvents batch or a ``/v1/records`` list) answers every event in
    ``results``, in order: 202 when all were accepted, 207 when some were and the others were
    dead-lettered (nothing to retry: the accepted ones are durable, the others would fail
    again), 400 (or the one 4xx they share) when none was."""
    records = [o.record for o in outcomes if o.record is not None]
    letters = [o for o in outcomes if o.letter is not None]
    body: dict[str, Any] = {"accepted": len(records), "ids": [r.id for r in records],
                            "rows": sum(r.n_rows for r in records)}
    if batch:
        body["results"] = [_result(o) for o in outcomes]
    if not letters:
        return JSONResponse(body, status_code=202)
    first = letters[0]
    assert first.letter is not None
    body["rejected"] = len(letters)
    body["error"], body["deadletter"] = first.letter.reason, first.letter.id
    if records:
        return JSONResponse(body, status_code=207)
    statuses = {o.status for o in letters}
    return JSONResponse(body, status_code=statuses.pop() if len(statuses) == 1 else 400)


def create_app(ingestor: Ingestor, *, ready: Callable[[], bool] | None = None) -> Any:
    """The collector's ASGI app over an :class:`~inferwatch.ingest.Ingestor` (behind token
    authentication when ``collector.auth_tokens`` is set)."""
    r = _Routes(ingestor, ready)
    app = Starlette(routes=[
        Route("/", r.cloudevents, methods=["POST"]),
        Route("/cloudevents", r.cloudevents, methods=["POST"]),
        Route("/v1/records", r.records, methods=["POST"]),
        Route("/v1/feedback", r.feedback, methods=["POST"]),
        Route("/healthz", r.healthz, methods=["GET"]),
        Route("/readyz", r.readyz, methods=["GET"]),
        Route("/metrics", r.metrics_endpoint, methods=["GET"]),
    ])
    tokens = ingestor.cfg.collector.auth_tokens
    return TokenAuth(app, tokens) if tokens else app


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
                                log_level="warning", access_log=False, lifespan="off",
                                **uvicorn_tls(self.cfg.tls_certfile, self.cfg.tls_keyfile))
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
        log.info("collector listening on %s://%s:%d", "https" if self.cfg.tls_certfile else "http",
                 self.cfg.host, self.port)

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

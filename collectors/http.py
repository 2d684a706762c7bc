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

``202`` means the records are durably on the log. ``400``/``413``/``415`` carry a reason, and the
rejected body is kept as a dead letter (its id is in the answer). ``503`` means the log could not
take the write: nothing was accepted, retry.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collectors.ingest import Envelope, Ingestor
from inferwatch.errors import InferwatchError
from inferwatch.record import DeadLetter, InferenceRecord, Part, encode_body, new_id
from inferwatch.table import from_rows
from sinks.prometheus import CONTENT_TYPE_LATEST

__all__ = ["create_app", "envelope_from_cloudevent"]

log = logging.getLogger("inferwatch.collector")

_PARTS: dict[str, Part] = {"request": "request", "response": "response", "feedback": "feedback"}
_CE_META = ("modelid", "component", "source", "type", "inferenceservicename", "metadata", "specversion", "id")


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


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
    >>> env.part, env.id, env.model, env.version, env.namespace
    ('request', '42', 'sklearn-iris', 'canary', 'prod')
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
    trace = attrs.get("traceparent") or headers.get("traceparent")
    return Envelope(
        body=body,
        source="cloudevents",
        part=part,
        id=attrs.get("requestid") or attrs.get("id") or headers.get("x-request-id"),
        model=query.get("model") or attrs.get("inferenceservicename") or attrs.get("modelid"),
        version=query.get("version") or attrs.get("modelversion") or attrs.get("endpoint"),
        namespace=attrs.get("namespace"),
        endpoint=attrs.get("endpoint"),
        timestamp=_parse_time(attrs.get("time")),
        content_type=attrs.get("datacontenttype") or headers.get("content-type"),
        protocol=query.get("protocol"),
        trace=trace,
        meta=meta,
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


def _json_record(item: Any) -> InferenceRecord:
    """A plain-JSON record item -> record (decoding request/response payloads)."""
    from inferwatch.codecs import decode
    from inferwatch.errors import DecodeError

    if not isinstance(item, dict):
        raise DecodeError("a record must be a JSON object", protocol="json-record")
    if not item.get("model"):
        raise DecodeError("the record has no 'model'", protocol="json-record")
    protocol = item.get("protocol")

    def table(payload_key: str, table_key: str, part: str) -> tuple[Any, Any]:
        if item.get(table_key) is not None:
            t = item[table_key]
            if isinstance(t, list):
                t = from_rows(t)
            if not isinstance(t, dict) or len({len(v) if isinstance(v, list) else -1 for v in t.values()}) > 1 \
                    or any(not isinstance(v, list) for v in t.values()):
                raise DecodeError(f"'{table_key}' must be a table (column -> list) or a list of rows",
                                  protocol="json-record")
            return t, None
        if item.get(payload_key) is not None:
            d = decode(item[payload_key], part=part, protocol=protocol)  # type: ignore[arg-type]
            return d.table, d.protocol
        return None, None

    inputs, p_in = table("request", "inputs", "request")
    outputs, p_out = table("response", "outputs", "response")
    truth, _ = table("truth_payload", "truth", "response")
    if inputs is None and outputs is None:
        raise DecodeError("the record has neither request/inputs nor response/outputs", protocol="json-record")
    part: Part = "both" if inputs is not None and outputs is not None else ("request" if inputs is not None else "response")
    rec = InferenceRecord(
        id=str(item.get("id") or new_id()),
        model=str(item["model"]),
        version=None if item.get("version") is None else str(item["version"]),
        namespace=item.get("namespace"),
        endpoint=item.get("endpoint"),
        latency_ms=item.get("latency_ms"),
        protocol=p_in or p_out or protocol or "json",
        inputs=inputs,
        outputs=outputs,
        truth=truth,
        trace=item.get("trace"),
        source="json",
        meta={str(k): str(v) for k, v in (item.get("meta") or {}).items()},
        part=part,
    )
    if item.get("timestamp"):
        ts = _parse_time(str(item["timestamp"]))
        if ts is None:
            raise DecodeError(f"bad timestamp {item['timestamp']!r}", protocol="json-record")
        rec.timestamp = ts
    for key in ("request", "response"):
        if item.get(key) is not None:
            text, enc = encode_body(orjson.dumps(item[key]) if not isinstance(item[key], str) else item[key].encode())
            setattr(rec, key, text)
            setattr(rec, f"{key}_encoding", enc)
    return rec


def create_app(ingestor: Ingestor, *, ready: Any = None) -> Starlette:
    """The collector's ASGI app over an :class:`Ingestor`."""
    cfg = ingestor.cfg.collector
    metrics = ingestor.metrics
    allowed = tuple(h.lower() for h in cfg.allowed_headers)

    async def _body(request: Request) -> bytes | Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > cfg.max_body_bytes:
            return await _reject(413, f"body of {length} bytes exceeds max_body_bytes={cfg.max_body_bytes}",
                                 b"", "http")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > cfg.max_body_bytes:
                return await _reject(413, f"body exceeds max_body_bytes={cfg.max_body_bytes}",
                                     bytes(body[:65536]), "http")
        return bytes(body)

    async def _reject(status: int, reason: str, raw: bytes, source: str) -> Response:
        dl = DeadLetter(raw=raw, source=source, reason=reason, stage="receive")
        try:
            await ingestor.append([], [dl])
        except Exception as exc:  # the log is down: say so, the client must retry
            return JSONResponse({"error": reason, "deadletter_error": str(exc)}, status_code=503)
        log.warning("rejected %s payload (%d): %s", source, status, reason)
        return JSONResponse({"error": reason, "deadletter": dl.id}, status_code=status)

    async def _accept(envelopes: list[Envelope]) -> Response:
        try:
            records, letters = await ingestor.ingest(envelopes)
        except InferwatchError as exc:
            return _unavailable(exc)
        return _answer(records, letters)

    def _unavailable(exc: Exception) -> Response:
        log.error("log append failed: %s", exc)
        return JSONResponse({"error": f"the log is unavailable: {exc}"}, status_code=503)

    def _answer(records: list[InferenceRecord], letters: list[DeadLetter]) -> Response:
        """202 with the ids when every item was appended; 400 naming the first reason (and the
        dead letter that keeps its bytes) when some were not."""
        body: dict[str, Any] = {"accepted": len(records), "ids": [r.id for r in records],
                                "rows": sum(r.n_rows for r in records)}
        if letters:
            body["rejected"] = [{"error": dl.reason, "deadletter": dl.id} for dl in letters]
            body["error"], body["deadletter"] = letters[0].reason, letters[0].id
            return JSONResponse(body, status_code=400)
        return JSONResponse(body, status_code=202)

    async def cloudevents(request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            body = await _body(request)
            if isinstance(body, Response):
                return body
            headers = {k.lower(): v for k, v in request.headers.items()}
            if _truthy(headers.get("seldon-skip-logging")):
                return Response(status_code=204)
            query = dict(request.query_params)
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            try:
                if ctype == "application/cloudevents+json":
                    envs = [_structured(orjson.loads(body), query, allowed, headers)]
                elif ctype == "application/cloudevents-batch+json":
                    events = orjson.loads(body)
                    if not isinstance(events, list):
                        raise ValueError("a CloudEvents batch must be a JSON array")
                    envs = [_structured(e, query, allowed, headers) for e in events]
                else:
                    attrs = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
                    if "type" not in attrs:
                        metrics.received.labels(source="cloudevents").inc()
                        return await _reject(
                            400, "not a CloudEvent: binary mode needs Ce-Type (and Ce-Id) headers, or send "
                            "Content-Type: application/cloudevents+json", body, "cloudevents")
                    envs = [envelope_from_cloudevent(attrs, body, query=query, headers=headers,
                                                     allowed_headers=allowed)]
            except (ValueError, orjson.JSONDecodeError) as exc:
                metrics.received.labels(source="cloudevents").inc()
                return await _reject(400, f"invalid CloudEvent: {exc}", body, "cloudevents")
            return await _accept(envs)
        finally:
            metrics.collector_latency.observe(time.perf_counter() - t0)

    async def records(request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            metrics.received.labels(source="json").inc()
            return await _reject(400, f"body is not JSON: {exc}", body, "json")
        items = items if isinstance(items, list) else [items]
        recs: list[InferenceRecord] = []
        letters: list[DeadLetter] = []
        from inferwatch.errors import DecodeError

        for item in items:
            metrics.received.labels(source="json").inc()
            try:
                recs.append(_json_record(item))
            except DecodeError as exc:
                letters.append(DeadLetter(raw=orjson.dumps(item), source="json", reason=str(exc)))
        try:
            await ingestor.append(recs, letters)
        except InferwatchError as exc:
            return _unavailable(exc)
        return _answer(recs, letters)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ok = ready() if callable(ready) else True
        return JSONResponse({"ready": bool(ok)}, status_code=200 if ok else 503)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[
        Route("/", cloudevents, methods=["POST"]),
        Route("/cloudevents", cloudevents, methods=["POST"]),
        Route("/v1/records", records, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ])

"""The Python SDK: log exchanges from inside a model server, without slowing or failing it.

Three ways to use it, all one line:

* ``inferwatch.log(request, response, model="iris")`` for one request/response pair (any payload a
  codec reads: a dict, a list, a numpy array, a pandas DataFrame, JSON bytes);
* ``@inferwatch.sdk.monitor(model="iris")`` on a predict function: its first argument is logged as
  the request, its return value as the response, with the latency (an exception is logged as an
  error, then re-raised);
* ``app.add_middleware(InferwatchMiddleware, model="iris")`` in a FastAPI or Starlette app: every
  inference call (recognised by path, see :mod:`inferwatch.exchange`) is logged with its exact
  bodies, status, ``X-Request-Id`` and ``traceparent``, streamed responses included.

Where records go is set once (:func:`configure`, or the environment): ``url=`` sends them to a
collector's ``/v1/records`` over HTTP (``INFERWATCH_SDK_URL``); ``kafka=True`` decodes them here
and appends them straight to the configured log (``INFERWATCH_KAFKA_BOOTSTRAP_SERVERS`` and the
rest of :mod:`inferwatch.config`). Either way a background thread batches them through a bounded
queue and a bounded disk spool (:class:`~inferwatch.shipper.Shipper`): the caller never waits;
what cannot be kept is counted (``inferwatch_ship_dropped_total``) and logged as an error, never
dropped silently; while the destination is down the spool holds the records and sends them when
it is back. Everything is flushed when the process exits.

>>> import tempfile
>>> from inferwatch.sqlite_log import SQLiteLog
>>> from inferwatch.config import load_config
>>> cfg = load_config(None, env={}, overrides={"data_dir": tempfile.mkdtemp()})
>>> client = Client.to_log(SQLiteLog(cfg.log_path), cfg, spool_path=cfg.path_in_data(None, "spool.db"))
>>> rid = client.log({"instances": [[1, 2]]}, {"predictions": [0]}, model="iris", id="r-1")
>>> client.flush(10), rid
(True, 'r-1')
>>> from inferwatch.record import InferenceRecord
>>> rec = InferenceRecord.from_json(SQLiteLog(cfg.log_path).consumer(cfg.log.records_topic, "t").poll(1)[0].value)
>>> rec.id, rec.model, rec.inputs, rec.outputs, rec.source
('r-1', 'iris', {'f0': [1], 'f1': [2]}, {'f0': [0]}, 'sdk')
>>> client.close()
True
"""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import os
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from inferwatch.config import Config, load_config
from inferwatch.errors import DecodeError
from inferwatch.exchange import Endpoint, exchange_fields, match_endpoint, opted_out, request_id
from inferwatch.ingest import Envelope, to_record
from inferwatch.log import Log
from inferwatch.record import DeadLetter, new_id
from inferwatch.shipper import ShipMetrics, Shipper, group_by_topic
from inferwatch.spool import Item

__all__ = ["Client", "InferwatchMiddleware", "close", "configure", "flush", "log", "monitor"]

logger = logging.getLogger("inferwatch.sdk")
SOURCE = "sdk"
F = TypeVar("F", bound=Callable[..., Any])

_metrics: ShipMetrics | None = None
_metrics_lock = threading.Lock()


def _shared_metrics() -> ShipMetrics:
    """The SDK's counters on prometheus_client's default registry (what an app's /metrics shows)."""
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            from prometheus_client import REGISTRY

            _metrics = ShipMetrics(REGISTRY)
        return _metrics


def _jsonable(value: Any) -> Any:
    """A payload as JSON values (DataFrames as records, arrays as lists); bytes stay bytes."""
    if value is None or isinstance(value, (bytes, str, int, float, bool, dict, list)):
        return value
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # pandas DataFrame
        return value.to_dict(orient="records")
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas Series
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, datetime):
        return obj.isoformat()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def open_log(cfg: Config) -> Log:
    """The configured built-in log (``kafka`` or ``sqlite``) with the records and dead-letter topics
    created. A log plug-in is passed in instead (``Client.to_log(log, cfg)``): the core does not
    know the wiring's registry."""
    from inferwatch.errors import ConfigError

    lg: Log
    if cfg.log.backend == "kafka":
        from inferwatch.kafka_log import KafkaLog

        lg = KafkaLog(cfg.kafka)
    elif cfg.log.backend == "sqlite":
        from inferwatch.sqlite_log import SQLiteLog

        lg = SQLiteLog(cfg.log_path)
    else:
        raise ConfigError(f"log backend {cfg.log.backend!r} is a plug-in: build it and use Client.to_log(log, cfg)")
    lg.create_topics([cfg.log.records_topic, cfg.log.deadletter_topic])
    return lg


Transport = tuple[Callable[[list[Any]], list[Item]], Callable[[list[Item]], None]]


def log_transport(lg: Log, cfg: Config, source: str = SOURCE) -> Transport:
    """(encode, send) for a :class:`~inferwatch.shipper.Shipper` of ``(fields, raw)`` pairs: decode
    them here with the ingest path's :func:`~inferwatch.ingest.to_record` (a dead letter with the
    reason when that fails) and append to ``lg``."""
    topics = cfg.log
    default = cfg.collector.default_protocol

    def encode(batch: list[Any]) -> list[Item]:
        items: list[Item] = []
        for fields, raw in batch:
            env = Envelope(source=source, raw=raw, fields=fields)
            try:
                rec = to_record(env, default)
            except DecodeError as exc:
                meta = {k: str(fields[k]) for k in ("id", "model") if fields.get(k)}
                dl = DeadLetter(raw=raw, source=source, reason=str(exc), stage="decode", meta=meta)
                items.append((topics.deadletter_topic, source.encode(), dl.to_json()))
                logger.warning("%s: dead letter: %s", source, exc)
            else:
                items.append((topics.records_topic, rec.model.encode(), rec.to_json()))
        return items

    def send(items: list[Item]) -> None:
        for topic, kvs in group_by_topic(items):
            lg.append(topic, kvs)

    return encode, send


def collector_transport(url: str, *, timeout_s: float = 10.0, headers: Mapping[str, str] | None = None
                        ) -> Transport:
    """(encode, send) posting ``(fields, raw)`` pairs as record objects to ``url``'s ``/v1/records``."""
    import httpx

    endpoint = url.rstrip("/") + "/v1/records"
    http = httpx.Client(timeout=timeout_s, headers=dict(headers or {}))

    def encode(batch: list[Any]) -> list[Item]:
        return [("records", b"", _dumps(fields)) for fields, _ in batch]

    def send(items: list[Item]) -> None:
        body = b"[" + b",".join(v for _, _, v in items) + b"]"
        r = http.post(endpoint, content=body, headers={"content-type": "application/json"})
        if r.status_code in (408, 429) or r.status_code >= 500:
            raise ConnectionError(f"collector answered {r.status_code}: {r.text[:200]}")
        if r.status_code >= 400:  # the collector kept the body as a dead letter; retrying cannot help
            logger.error("inferwatch sdk: collector refused %d record(s): %d %s", len(items), r.status_code,
                         r.text[:500])

    return encode, send


class Client:
    """Logs exchanges in the background to a collector (HTTP) or straight to the log."""

    def __init__(self, encode: Callable[[list[Any]], list[Item]], send: Callable[[list[Item]], None], *,
                 spool_path: str | Path | None = None, model: str | None = None, max_queue: int = 10_000,
                 spool_max_bytes: int = 64 * 1024 * 1024, batch: int = 500, metrics: ShipMetrics | None = None,
                 source: str = SOURCE) -> None:
        path = spool_path or Path(tempfile.gettempdir()) / f"inferwatch-sdk-{os.getpid()}-{id(self):x}.db"
        self.model = model
        self.source = source
        self.shipper = Shipper(encode, send, path, source=source, max_queue=max_queue,
                               spool_max_bytes=spool_max_bytes, batch=batch,
                               metrics=metrics or _shared_metrics()).start()
        atexit.register(self.close)

    # -- constructors ----------------------------------------------------------------------------
    @classmethod
    def to_log(cls, lg: Log, cfg: Config, **kwargs: Any) -> Client:
        """Decode here and append records (and dead letters) to ``lg`` (Kafka in production)."""
        encode, send = log_transport(lg, cfg, kwargs.get("source", SOURCE))
        return cls(encode, send, **kwargs)

    @classmethod
    def to_collector(cls, url: str, *, timeout_s: float = 10.0, headers: Mapping[str, str] | None = None,
                     **kwargs: Any) -> Client:
        """Send record objects to a collector's ``POST /v1/records`` (it decodes them)."""
        encode, send = collector_transport(url, timeout_s=timeout_s, headers=headers)
        return cls(encode, send, **kwargs)

    @classmethod
    def from_config(cls, cfg: Config | None = None, *, url: str | None = None, kafka: bool | None = None,
                    **kwargs: Any) -> Client:
        """``url`` (or ``INFERWATCH_SDK_URL``): a collector; else the configured log (``kafka=True``
        forces ``log.backend=kafka``)."""
        url = url or os.environ.get("INFERWATCH_SDK_URL")
        if url and not kafka:
            return cls.to_collector(url, **kwargs)
        cfg = cfg or load_config(None, overrides={"log.backend": "kafka"} if kafka else None)
        kwargs.setdefault("spool_path", cfg.path_in_data(None, f"sdk-spool-{os.getpid()}.db"))
        return cls.to_log(open_log(cfg), cfg, **kwargs)

    # -- logging -----------------------------------------------------------------------------------
    def log(self, request: Any = None, response: Any = None, *, model: str | None = None, id: str | None = None,
            version: str | None = None, inputs: Any = None, outputs: Any = None, latency_ms: float | None = None,
            protocol: str | None = None, timestamp: datetime | None = None, trace: str | None = None,
            meta: Mapping[str, Any] | None = None) -> str:
        """Queue one exchange (or half: give only ``request`` or ``response``); returns its id.

        Never blocks and never raises for the payload: what cannot be decoded becomes a dead
        letter with the reason; when the queue is full the exchange is counted as dropped."""
        rid = id or new_id()
        fields: dict[str, Any] = {"id": rid, "model": model or self.model}
        for key, value in (("request", request), ("response", response), ("inputs", inputs), ("outputs", outputs)):
            if value is not None:
                fields[key] = _jsonable(value)
        for key, value in (("version", version), ("latency_ms", latency_ms), ("protocol", protocol),
                           ("timestamp", timestamp), ("trace", trace)):
            if value is not None:
                fields[key] = value
        if meta:
            fields["meta"] = {str(k): str(v) for k, v in meta.items()}
        self.submit(fields)
        return rid

    def submit(self, fields: dict[str, Any], raw: bytes | None = None) -> bool:
        """Queue record fields as they are (what :meth:`log` and the middleware build)."""
        if raw is None:
            try:
                raw = _dumps({k: v for k, v in fields.items() if k in ("request", "response")})
            except (TypeError, orjson.JSONEncodeError):
                raw = repr(fields.get("request"))[:10_000].encode()
        return self.shipper.submit((fields, raw))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything logged so far is sent; ``False`` on timeout."""
        return self.shipper.flush(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Flush (at most ``timeout`` s) and stop the background thread."""
        try:
            atexit.unregister(self.close)
        except Exception:  # interpreter shutting down
            pass
        return self.shipper.close(timeout)

    @property
    def dropped(self) -> int:
        return self.shipper.dropped


# -- the process-wide client ------------------------------------------------------------------------
_client: Client | None = None
_default_lock = threading.Lock()


def configure(client: Client | None = None, **kwargs: Any) -> Client:
    """Set the client :func:`log`, :func:`monitor` and the middleware use (by default built from
    the environment on first use): a :class:`Client`, or :meth:`Client.from_config` arguments."""
    global _client
    with _default_lock:
        if _client is not None and _client is not client:
            _client.close()
        _client = client or Client.from_config(**kwargs)
        return _client


def default_client() -> Client:
    global _client
    with _default_lock:
        if _client is None:
            _client = Client.from_config()
        return _client


def log(request: Any = None, response: Any = None, **kwargs: Any) -> str:
    """Log one request/response pair with the process-wide client (see :meth:`Client.log`)."""
    return default_client().log(request, response, **kwargs)


def flush(timeout: float = 30.0) -> bool:
    return default_client().flush(timeout) if _client is not None else True


def close(timeout: float = 10.0) -> bool:
    global _client
    with _default_lock:
        c, _client = _client, None
    return c.close(timeout) if c is not None else True


def _payload_arg(fn: Callable[..., Any]) -> int:
    params = list(inspect.signature(fn).parameters)
    return 1 if params and params[0] in ("self", "cls") else 0


def monitor(model: str | None = None, *, client: Client | None = None, protocol: str | None = None) -> Callable[[F], F]:
    """Decorate a predict function (sync or async): its first argument (after ``self``) is
    logged as the request, its result as the response, with the latency."""

    def deco(fn: F) -> F:
        skip = _payload_arg(fn)
        name = model or fn.__qualname__

        def emit(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any, error: BaseException | None,
                 t0: float) -> None:
            c = client or default_client()
            payload = args[skip] if len(args) > skip else next(iter(kwargs.values()), None)
            latency = (time.perf_counter() - t0) * 1000
            if error is None:
                c.log(payload, result, model=name, latency_ms=latency, protocol=protocol)
            else:
                c.log(payload, model=name, outputs={}, latency_ms=latency, protocol=protocol,
                      meta={"error": f"{type(error).__name__}: {error}"[:2000], "status": "error"})

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    emit(args, kwargs, None, exc, t0)
                    raise
                emit(args, kwargs, result, None, t0)
                return result

            return awrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                emit(args, kwargs, None, exc, t0)
                raise
            emit(args, kwargs, result, None, t0)
            return result

        return wrapper  # type: ignore[return-value]

    return deco


# -- ASGI middleware ----------------------------------------------------------------------------------
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class InferwatchMiddleware:
    """Pure ASGI middleware (FastAPI, Starlette, any ASGI app) logging each inference call.

    ``paths`` restricts logging to those path prefixes (default: every path
    :func:`~inferwatch.exchange.match_endpoint` takes for an inference call); ``model`` names
    the model where the path does not. The request is passed on untouched (its ``X-Request-Id``
    generated when absent, so the app, its logs and the record share it); the response is sent
    on chunk by chunk as the app produces it, with ``X-Request-Id`` added when the app set none.
    Bodies over ``max_capture_bytes`` are logged truncated (``meta.truncated``).
    """

    def __init__(self, app: Callable[..., Awaitable[None]], *, model: str | None = None, client: Client | None = None,
                 paths: Iterable[str] | None = None, max_capture_bytes: int = 16 * 1024 * 1024) -> None:
        self.app = app
        self.model = model
        self.client = client
        self.paths = tuple(paths) if paths is not None else None
        self.max_capture = max_capture_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = match_endpoint(scope.get("method", "GET"), path)
        if self.paths is not None:
            endpoint = (endpoint or Endpoint(None)) if path.startswith(self.paths) else None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if endpoint is None or opted_out(headers):
            await self.app(scope, receive, send)
            return
        rid = request_id(headers)
        if "x-request-id" not in headers:
            scope = dict(scope)
            scope["headers"] = [*scope.get("headers", []), (b"x-request-id", rid.encode())]
        t0 = time.perf_counter()
        req_chunks: list[bytes] = []
        resp_chunks: list[bytes] = []
        sizes = [0, 0]
        state: dict[str, Any] = {"status": 500, "headers": {}, "ttft": None, "truncated": False}

        def keep(chunks: list[bytes], i: int, body: bytes) -> None:
            if sizes[i] + len(body) <= self.max_capture:
                chunks.append(body)
            else:
                state["truncated"] = True
            sizes[i] += len(body)

        async def receive_wrapper() -> Message:
            message = await receive()
            if message.get("type") == "http.request":
                keep(req_chunks, 0, message.get("body", b""))
            return message

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                hs = list(message.get("headers", []))
                state["headers"] = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in hs}
                if "x-request-id" not in state["headers"]:
                    message = dict(message)
                    message["headers"] = [*hs, (b"x-request-id", rid.encode())]
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body and state["ttft"] is None:
                    state["ttft"] = (time.perf_counter() - t0) * 1000
                keep(resp_chunks, 1, body)
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        finally:
            try:
                self._log(endpoint, rid, path, headers, state, b"".join(req_chunks), b"".join(resp_chunks), t0)
            except Exception:  # logging must never break the app's answer
                logger.exception("inferwatch middleware: cannot log %s", path)

    def _log(self, endpoint: Endpoint, rid: str, path: str, headers: dict[str, str], state: dict[str, Any],
             request: bytes, response: bytes, t0: float) -> None:
        fields = exchange_fields(endpoint, rid=rid, status=state["status"], request=request, response=response,
                                 request_headers=headers, response_headers=state["headers"],
                                 latency_ms=(time.perf_counter() - t0) * 1000, ttft_ms=state["ttft"],
                                 default_model=self.model, path=path)
        if state["truncated"]:
            fields["meta"]["truncated"] = "true"
        if not fields.get("model"):
            fields["model"] = self.model or "unknown"
        (self.client or default_client()).submit(fields, request + b"\n" + response)

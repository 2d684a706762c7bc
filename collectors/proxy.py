"""The logging reverse proxy: ``inferwatch proxy --upstream URL`` in front of any HTTP model server.

Every request is forwarded to the upstream unchanged (method, path, query, headers but the
hop-by-hop ones, body) and the answer comes back unchanged (status, headers, body; chunked and
streamed answers chunk by chunk, as the upstream sends them, compressed bodies as they are). Two
headers are added when the caller did not send them: ``X-Request-Id`` (a new UUIDv7, also
returned to the caller) and ``traceparent`` (a new W3C trace context), so the model, its logs and
the audit record share one id.

Inference calls (recognised by path, :mod:`inferwatch.exchange`: OIP v2, Seldon v1, KServe v1,
TF Serving, MLflow, OpenAI chat/completions; any other ``POST`` with the protocol detected from
its body) are logged after the answer is sent, off the request path: the exchange goes to a
:class:`~inferwatch.shipper.Shipper` (bounded queue, then a bounded disk spool, then the log) and
is decoded there by the ingest path's :func:`~inferwatch.ingest.to_record`. When the log is
unreachable the proxy keeps serving and the spool holds the records until it is back; when the
spool is full, what is dropped is counted (``inferwatch_ship_dropped_total``) and logged as an
error. A non-2xx answer is logged as an error with its status. ``X-Inferwatch-Skip: 1`` on a
request skips logging it.

The proxy's own endpoints live under ``/.inferwatch/``: ``metrics`` (Prometheus) and ``healthz``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest

from inferwatch.config import Config, ProxyConfig
from inferwatch.exchange import Endpoint, exchange_fields, match_endpoint, opted_out, request_id
from inferwatch.ingest import Ingestor
from inferwatch.shipper import ShipMetrics, Shipper
from inferwatch.spool import Item

__all__ = ["LoggerProcess", "LoggingProxy", "new_traceparent"]

log = logging.getLogger("inferwatch.proxy")

SOURCE = "proxy"
_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                  "trailers", "transfer-encoding", "upgrade", "host", "content-length"})
_OWN = "/.inferwatch/"


def _decoded(body: bytes, encoding: str | None) -> bytes:
    """A gzip/deflate body as the bytes it encodes (what is logged; the client gets it as sent)."""
    import zlib

    enc = (encoding or "").strip().lower()
    if not body or enc not in ("gzip", "x-gzip", "deflate"):
        return body
    try:
        if enc == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send
        return zlib.decompress(body, 16 + zlib.MAX_WBITS)
    except zlib.error:
        return body  # logged as it came; decoding it fails with the reason (a dead letter)


def new_traceparent() -> str:
    """A new W3C ``traceparent`` (version 00, sampled).

    >>> tp = new_traceparent(); len(tp), tp[:3], tp[-3:]
    (55, '00-', '-01')
    """
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


class LoggingProxy:
    """The proxy server (aiohttp), in a thread of its own; a way in (:class:`~inferwatch.ingest.Collector`)."""

    name = SOURCE

    def __init__(self, pcfg: ProxyConfig, cfg: Config | None = None, *, upstream: str | None = None,
                 log_factory: Callable[[Config], Any] | None = None) -> None:
        #: builds the log in the logger process (a picklable function, e.g. ``inferwatch.wiring.build_log``
        #: for plug-in logs; default: the built-in Kafka or SQLite log)
        self.log_factory = log_factory
        self.pcfg = pcfg
        self.cfg = cfg
        self.upstream = (upstream or pcfg.upstream or "").rstrip("/")
        if not self.upstream:
            raise ValueError("the proxy needs an upstream URL (proxy.upstream or --upstream)")
        self.registry = CollectorRegistry()
        self.ship_metrics = ShipMetrics(self.registry)
        self.requests = Counter("inferwatch_proxy_requests", "Requests through the proxy, by outcome "
                                "(logged, skipped, not_inference, upstream_unreachable)", ["outcome"],
                                registry=self.registry)
        self.shipper: LoggerProcess | None = None
        self.port = pcfg.port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @classmethod
    def from_config(cls, cfg: Config, log_factory: Callable[[Config], Any] | None = None) -> LoggingProxy:
        return cls(cfg.proxy, cfg, log_factory=log_factory)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, ingestor: Ingestor) -> None:
        """Serve in a background thread; logged exchanges go to ``ingestor``'s configured log (or,
        with ``proxy.send_to`` a URL, to that collector), decoded by the ingest path's
        ``to_record`` in a logger process of their own (see :class:`LoggerProcess`)."""
        cfg = (self.cfg or ingestor.cfg).model_copy(update={"proxy": self.pcfg})
        p = self.pcfg
        spool = p.spool_path or str(cfg.path_in_data(None, f"proxy-spool-{p.port}.db"))
        self.shipper = LoggerProcess(cfg, spool, ship_metrics=self.ship_metrics, log_factory=self.log_factory)
        self._thread = threading.Thread(target=self._serve, name="inferwatch-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(30) or self._error is not None:
            raise RuntimeError(f"the proxy did not start: {self._error!r}")

    def stop(self, flush_timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)
        if self.shipper is not None:
            self.shipper.close(flush_timeout)

    def serve_forever(self, ingestor: Ingestor) -> None:
        """Serve until SIGINT/SIGTERM, then flush what was logged (the spool keeps the rest)."""
        import signal

        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, interrupt)
        self.start(ingestor)
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(1.0)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def _serve(self) -> None:
        try:
            try:  # uvloop when installed (the `proxy` extra): less CPU per forwarded request
                import uvloop

                runner: Any = uvloop.run
            except ImportError:
                runner = asyncio.run
            runner(self._main())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._started.set()

    async def _main(self) -> None:
        import aiohttp
        from aiohttp import web

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        timeout = aiohttp.ClientTimeout(total=self.pcfg.timeout_s, connect=10)
        # a bounded pool of keep-alive connections: a burst queues here instead of flooding the upstream
        connector = aiohttp.TCPConnector(limit=256, ttl_dns_cache=300, enable_cleanup_closed=True)
        self.session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                             skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
                                             cookie_jar=aiohttp.DummyCookieJar())
        server = web.Server(self._handle, access_log=None)
        runner = web.ServerRunner(server, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.pcfg.host, self.pcfg.port, reuse_address=True)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._started.set()
        log.info("proxy on http://%s:%d -> %s", self.pcfg.host, self.port, self.upstream)
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await self.session.close()

    # -- one request -----------------------------------------------------------------------------
    async def _handle(self, request: Any) -> Any:
        from aiohttp import ClientError, web

        path = request.path
        if path.startswith(_OWN):
            return self._own(path)
        headers = request.headers
        endpoint = match_endpoint(request.method, path)
        skip = endpoint is None or opted_out(headers)
        fwd = [(k, v) for k, v in headers.items() if k.lower() not in _HOP]
        rid = headers.get("x-request-id") or ""
        added: list[tuple[str, str]] = []
        if not rid.strip():
            rid = request_id({})
            added.append(("X-Request-Id", rid))
        if "traceparent" not in headers:
            added.append(("traceparent", new_traceparent()))
        fwd += added
        body = await request.read()
        t0 = time.perf_counter()
        try:
            upstream = await self.session.request(request.method, self.upstream + request.raw_path, headers=fwd,
                                                  data=body if body else None, allow_redirects=False)
        except (TimeoutError, ClientError, OSError) as exc:
            self.requests.labels(outcome="upstream_unreachable").inc()
            answer = f"inferwatch proxy: upstream {self.upstream} unreachable: {exc}".encode()
            if not skip and endpoint is not None:
                self._submit(endpoint, rid, 502, body, answer, headers, {}, added, t0, None, path)
            return web.Response(status=502, body=answer, headers={"X-Request-Id": rid})
        try:
            out_headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP]
            if not any(k.lower() == "x-request-id" for k, _ in out_headers):
                out_headers.append(("X-Request-Id", rid))
            length = upstream.headers.get("Content-Length")
            resp = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=out_headers)
            if length is not None:
                resp.content_length = int(length)
            await resp.prepare(request)
            chunks: list[bytes] = []
            size = 0
            ttft = None
            limit = self.pcfg.max_capture_bytes
            truncated = False
            async for chunk in upstream.content.iter_any():
                if ttft is None:
                    ttft = (time.perf_counter() - t0) * 1000
                await resp.write(chunk)
                if not skip:
                    if size + len(chunk) <= limit:
                        chunks.append(chunk)
                    else:
                        truncated = True
                    size += len(chunk)
            await resp.write_eof()
        finally:
            upstream.release()
        if skip:
            self.requests.labels(outcome="not_inference" if endpoint is None else "skipped").inc()
        else:
            self.requests.labels(outcome="logged").inc()
            resp_headers = {k.lower(): v for k, v in upstream.headers.items()}
            if truncated:
                resp_headers["x-inferwatch-truncated"] = "1"
            self._submit(endpoint, rid, upstream.status, body, b"".join(chunks), headers, resp_headers, added, t0,
                         ttft, path)
        return resp

    def _submit(self, endpoint: Endpoint | None, rid: str, status: int, body: bytes, answer: bytes, headers: Any,
                resp_headers: dict[str, str], added: list[tuple[str, str]], t0: float, ttft: float | None,
                path: str) -> None:
        assert self.shipper is not None and endpoint is not None
        req_headers = {k.lower(): v for k, v in headers.items()}
        req_headers.update({k.lower(): v for k, v in added})
        latency = (time.perf_counter() - t0) * 1000
        self.shipper.submit((endpoint, rid, status, body, answer, req_headers, resp_headers, latency, ttft, path,
                             time.time()))

    def _own(self, path: str) -> Any:
        from aiohttp import web

        if path == _OWN + "metrics":
            if self.shipper is not None:
                self.shipper.export()
            return web.Response(body=generate_latest(self.registry),
                                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
        if path == _OWN + "healthz":
            return web.json_response({"status": "ok", "upstream": self.upstream,
                                      "pending": self.shipper.pending() if self.shipper else 0,
                                      "dropped": self.shipper.dropped if self.shipper else 0,
                                      "last_error": self.shipper.last_error if self.shipper else None})
        return web.Response(status=404, text="not found")


# -- the logger process --------------------------------------------------------------------------------
def exchange_record_fields(x: tuple[Any, ...], default_model: str | None) -> tuple[dict[str, Any], bytes]:
    """The record fields of one proxied exchange (run in the logger process)."""
    from datetime import UTC, datetime

    endpoint, rid, status, body, answer, req_headers, resp_headers, latency, ttft, path, at = x
    body = _decoded(body, req_headers.get("content-encoding"))
    answer = _decoded(answer, resp_headers.get("content-encoding"))
    fields = exchange_fields(endpoint, rid=rid, status=status, request=body, response=answer,
                             request_headers=req_headers, response_headers=resp_headers, latency_ms=latency,
                             ttft_ms=ttft, default_model=default_model, path=path)
    fields["timestamp"] = datetime.fromtimestamp(at - latency / 1000, UTC)
    fields["source"] = SOURCE
    if resp_headers.get("x-inferwatch-truncated"):
        fields["meta"]["truncated"] = "true"
        fields["inputs"], fields["outputs"] = {}, {}
    if not fields.get("model"):
        fields["model"] = "unknown"
    return fields, body + b"\n" + answer


# shared counters between the proxy and its logger process
_DROPPED, _SENT, _FAILURES, _SPOOL_ITEMS, _SPOOL_BYTES, _PENDING, _RECEIVED = range(7)


def _logger_main(cfg_json: bytes, spool_path: str, q: Any, stats: Any, error: Any,
                 log_factory: Callable[[Config], Any] | None = None) -> None:
    """The logger process: exchanges from ``q`` -> record fields -> Shipper (disk spool -> the log)."""
    import queue as queue_mod

    from inferwatch.config import Config
    from inferwatch.sdk import collector_transport, log_transport

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    try:  # logging may lag behind; forwarding may not: under CPU contention the proxy goes first
        os.nice(10)
    except OSError:
        pass
    cfg = Config.model_validate_json(cfg_json)
    p = cfg.proxy
    if p.send_to == "log":
        from inferwatch.sdk import open_log

        encode_fields, send = log_transport((log_factory or open_log)(cfg), cfg, SOURCE)
    else:
        encode_fields, send = collector_transport(p.send_to)

    def encode(batch: list[Any]) -> list[Item]:
        return encode_fields([exchange_record_fields(x, p.model) for x in batch])

    shipper = Shipper(encode, send, spool_path, source=SOURCE, max_queue=p.max_queue,
                      spool_max_bytes=p.spool_max_bytes).start()
    m = shipper.metrics

    def publish() -> None:
        def total(c: Any) -> float:
            return sum(s.value for metric in c.collect() for s in metric.samples if s.name.endswith("_total"))

        stats[_DROPPED] = shipper.dropped
        stats[_SENT] = total(m.sent)
        stats[_FAILURES] = total(m.send_failures)
        stats[_SPOOL_ITEMS] = len(shipper.spool)
        stats[_SPOOL_BYTES] = shipper.spool.bytes
        stats[_PENDING] = shipper.pending()
        stats[_RECEIVED] = received  # after _PENDING: a reader seeing this count sees a pending that covers it
        error.value = (shipper.last_error or "").encode("utf-8", "replace")[:500]

    received = 0
    last = 0.0
    while True:
        try:
            x = q.get(timeout=0.05)
        except queue_mod.Empty:
            x = ()
        if x is None:
            break
        if x:
            shipper.submit(x)
            received += 1
        now = time.monotonic()
        if now - last > 0.05:
            publish()
            last = now
    shipper.close(float((stats[_PENDING] and 30.0) or 5.0))
    publish()


class LoggerProcess:
    """The proxy's logging in a process of its own, so decoding and writing never compete with
    forwarding for the proxy's interpreter. The proxy hands exchanges over a bounded queue
    (:meth:`submit` never blocks: a full queue is a counted, logged drop); the logger process
    runs a :class:`~inferwatch.shipper.Shipper` (disk spool, then the log) and is restarted if it
    dies. Counters are shared, so the proxy's ``/.inferwatch/metrics`` shows them."""

    def __init__(self, cfg: Config, spool_path: str, *, ship_metrics: ShipMetrics | None = None,
                 log_factory: Callable[[Config], Any] | None = None) -> None:
        import multiprocessing as mp

        self.log_factory = log_factory
        self.cfg = cfg
        self.spool_path = spool_path
        self.metrics = ship_metrics or ShipMetrics()
        self._ctx = mp.get_context("spawn")
        self._queue: Any = self._ctx.Queue(cfg.proxy.max_queue)
        self._stats: Any = self._ctx.Array("d", 7, lock=False)
        self._error: Any = self._ctx.Array("c", 512, lock=False)
        self.dropped_here = 0
        self.accepted = 0
        self._last_log = 0.0
        self._exported = [0.0, 0.0, 0.0]
        self._proc: Any = None
        self._spawn()

    def _spawn(self) -> None:
        self._proc = self._ctx.Process(target=_logger_main, name="inferwatch-proxy-logger", daemon=True,
                                       args=(self.cfg.model_dump_json().encode(), self.spool_path, self._queue,
                                             self._stats, self._error, self.log_factory))
        self._proc.start()

    def submit(self, x: tuple[Any, ...]) -> bool:
        import queue as queue_mod

        self.metrics.submitted.labels(source=SOURCE).inc()
        if not self._proc.is_alive():
            log.error("proxy logger process exited (%s); restarting it", self._proc.exitcode)
            self._spawn()
        try:
            self._queue.put_nowait(x)
            self.accepted += 1
            return True
        except queue_mod.Full:
            self.dropped_here += 1
            self.metrics.dropped.labels(source=SOURCE, reason="queue_full").inc()
            now = time.monotonic()
            if now - self._last_log > 1.0:
                self._last_log = now
                log.error("proxy: logger queue full, exchange dropped (%d dropped so far)", self.dropped)
            return False

    @property
    def dropped(self) -> int:
        return self.dropped_here + int(self._stats[_DROPPED])

    @property
    def last_error(self) -> str | None:
        return bytes(self._error.value).decode("utf-8", "replace") or None

    @property
    def spool_items(self) -> int:
        return int(self._stats[_SPOOL_ITEMS])

    def pending(self) -> int:
        try:
            queued = self._queue.qsize()
        except NotImplementedError:  # macOS
            queued = 0
        return queued + int(self._stats[_PENDING])

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every exchange submitted so far is on the log (or the collector)."""
        deadline = time.monotonic() + timeout
        target = self.accepted
        while True:
            received = self._stats[_RECEIVED]  # read before _PENDING (written in the other order)
            if received >= target and self._stats[_PENDING] == 0:
                return True
            if time.monotonic() > deadline or not self._proc.is_alive():
                return False
            time.sleep(0.02)

    def export(self) -> None:
        """Copy the logger process's counters into this process's metrics."""
        s, m = self._stats, self.metrics
        m.spooled_items.labels(source=SOURCE).set(s[_SPOOL_ITEMS])
        m.spooled_bytes.labels(source=SOURCE).set(s[_SPOOL_BYTES])
        for i, (idx, counter) in enumerate(((_SENT, m.sent.labels(source=SOURCE)),
                                            (_FAILURES, m.send_failures.labels(source=SOURCE)),
                                            (_DROPPED, m.dropped.labels(source=SOURCE, reason="spool_full")))):
            delta = s[idx] - self._exported[i]
            if delta > 0:
                counter.inc(delta)
                self._exported[i] = s[idx]

    def close(self, timeout: float = 10.0) -> bool:
        flushed = self.flush(timeout)
        self._queue.put(None)
        self._proc.join(timeout + 10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        return flushed

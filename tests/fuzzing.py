"""Generated HTTP deliveries for the collector, and the oracle every answer must satisfy.

Used by the short run in ``make test`` (tests/unit/test_collector_fuzz.py) and the long
campaign (bench/fuzz_collector.py). Every protocol (valid bodies from each codec's own encoder,
then damaged), CloudEvents in binary mode (header values raw or percent-encoded), structured
mode and batches, and ``/v1/records``; plus the hostile shapes: nesting of 200 to 1,100 levels,
thousands of same-named tensors, wide records, bodies up to 1 MB, random bytes.

The oracle (:func:`check`): no 5xx; an answer within ``max_seconds``; every 4xx names its
reason and a dead letter, and the log holds that dead letter with the request's bytes (the
whole body, or its first 64 KiB when the body was too large); a batch answers each event.
"""

from __future__ import annotations

import base64
import string
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import strategies as st

from inferwatch.codecs import PROTOCOLS, encode

PREFIX_KEEP = 65536
CE_TYPES = [f"{ns}.{part}" for ns in ("io.seldon.serving.inference", "org.kubeflow.serving.inference")
            for part in ("request", "response", "feedback")] + [
    "io.seldon.serving.inference.outlier", "io.seldon.serving.inference.drift", "com.example.other", ""]


@dataclass
class Delivery:
    """One HTTP request to the collector."""

    path: str
    headers: dict[str, str]
    body: bytes
    kind: str  # binary | structured | batch | records | raw
    events: int = 1  # events (or record items) in the body when it is a batch/list
    batch: bool = False  # a CloudEvents batch or a /v1/records list: answered per event
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- payload bodies

cells = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
         | st.floats(allow_nan=False, allow_infinity=False, width=64) | st.text(max_size=8))
names = st.sampled_from(["a", "b", "x", "x.1", "f0", "", "é", "a.b"]) | st.text(max_size=6)


@st.composite
def tables(draw: Any) -> dict[str, list[Any]]:
    n = draw(st.integers(1, 6))
    k = draw(st.integers(1, 5))
    kinds = [st.integers(-1000, 1000), st.floats(-1e6, 1e6), st.text(string.ascii_letters, max_size=5),
             st.booleans()]
    out: dict[str, list[Any]] = {}
    for j in range(k):
        kind = draw(st.sampled_from(kinds))
        out[f"c{j}"] = draw(st.lists(kind, min_size=n, max_size=n))
    return out


json_values = st.recursive(cells, lambda c: st.lists(c, max_size=5) | st.dictionaries(names, c, max_size=5),
                           max_leaves=30)


def _deep(depth: int, leaf: bytes = b"1", obj: bool = False) -> bytes:
    return (b'{"k":' * depth + leaf + b"}" * depth) if obj else (b"[" * depth + leaf + b"]" * depth)


@st.composite
def hostile_bodies(draw: Any) -> bytes:
    """Bodies built to cost: deep nesting, same-named tensors, wide records, large arrays."""
    which = draw(st.sampled_from(["deep", "deep_in_protocol", "same_names", "seldon_names", "wide",
                                  "long", "many_records"]))
    depth = draw(st.sampled_from([200, 254, 255, 256, 300, 1000, 1023, 1024, 1100]))
    if which == "deep":
        return _deep(depth, obj=draw(st.booleans()))
    if which == "deep_in_protocol":
        inner = _deep(depth, obj=draw(st.booleans()))
        tpl = draw(st.sampled_from([b'{"instances": [%s]}', b'{"instances": [{"a": %s}]}', b'[{"a": %s}]',
                                    b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": %s}]}',
                                    b'{"data": {"ndarray": %s}}', b'{"jsonData": %s}',
                                    b'{"dataframe_records": [{"a": %s}]}', b'{"predictions": %s}']))
        return tpl % inner
    if which == "same_names":
        n = draw(st.integers(1000, 16000))
        t = b'{"name":"x","shape":[1],"datatype":"INT32","data":[1]}'
        return b'{"inputs":[' + b",".join([t] * n) + b"]}"
    if which == "seldon_names":
        n = draw(st.integers(1000, 10000))
        return orjson.dumps({"data": {"names": ["x"] * n, "ndarray": [list(range(n))]}})
    if which == "wide":
        n = draw(st.integers(1000, 60000))
        return orjson.dumps([{f"k{i}": i for i in range(n)}])
    if which == "long":
        n = draw(st.integers(10000, 200000))
        return orjson.dumps({"instances": list(range(n))})
    n = draw(st.integers(1000, 40000))
    return orjson.dumps({"instances": [{"a": i, "b": "x"} for i in range(n)]})


@st.composite
def payloads(draw: Any, part: str) -> bytes:
    """A body for ``part``: a protocol's valid encoding (maybe damaged), junk, or hostile."""
    kind = draw(st.sampled_from(["valid", "valid", "valid", "damaged", "junk", "bytes", "hostile"]))
    if kind in ("valid", "damaged"):
        proto = draw(st.sampled_from(PROTOCOLS))
        body = encode(draw(tables()), proto, part)  # type: ignore[arg-type]
        if kind == "damaged":
            obj = orjson.loads(body)
            obj = _damage(draw, obj)
            try:
                body = orjson.dumps(obj)
            except orjson.JSONEncodeError:
                pass
        return body
    if kind == "junk":
        return orjson.dumps(draw(json_values))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    return draw(hostile_bodies())


def _damage(draw: Any, obj: Any) -> Any:
    """Replace one random subtree with something else."""
    if isinstance(obj, dict) and obj:
        k = draw(st.sampled_from(sorted(obj)))
        if draw(st.booleans()):
            obj[k] = _damage(draw, obj[k])
        else:
            obj[k] = draw(json_values)
    elif isinstance(obj, list) and obj:
        i = draw(st.integers(0, len(obj) - 1))
        obj[i] = _damage(draw, obj[i]) if draw(st.booleans()) else draw(json_values)
    else:
        obj = draw(json_values)
    return obj


# --------------------------------------------------------------------------- CloudEvents

attr_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@st.composite
def ce_attributes(draw: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key, strat in (("specversion", st.sampled_from(["1.0", "1.0", "1.0", "0.3", "2.0", ""])),
                       ("id", attr_text | st.sampled_from(["req 1", "a/b%c", "x"])),
                       ("source", st.sampled_from(["seldon", "kserve", "/ns/model", ""]) | attr_text),
                       ("type", st.sampled_from(CE_TYPES)),
                       ("requestid", attr_text), ("modelid", st.sampled_from(["classifier", "transformer", "t:1"])),
                       ("inferenceservicename", st.sampled_from(["iris", "income", "m é"])),
                       ("namespace", st.sampled_from(["prod", "ns"])),
                       ("endpoint", st.sampled_from(["default", "canary", "shadow"])),
                       ("component", st.sampled_from(["predictor", "transformer"])),
                       ("time", st.sampled_from(["2026-01-02T03:04:05Z", "yesterday", "2026-01-02T03:04:05.123+02:00"])),
                       ("metadata", st.sampled_from(['{"Authorization": ["x"]}', '{"a": ["b c"]}', "{"]))):
        required = key in ("specversion", "id", "source", "type")
        if draw(st.integers(0, 9)) < (9 if required else 5):
            attrs[key] = draw(strat)
    return attrs


def _header_value(draw: Any, value: str) -> str:
    """Percent-encoded as the CloudEvents SDK 2.x does (HTTP binding 3.1.3.2), or raw when the
    raw text is a valid header value (KServe's Go SDK sends it unencoded)."""
    raw_ok = all(32 <= ord(c) < 127 for c in value)
    if raw_ok and draw(st.booleans()):
        return value
    return urllib.parse.quote(value, safe="!#$&'*+-.^_`|~:/?=@ ,;()[]{}<>").replace(" ", "%20")


@st.composite
def binary_events(draw: Any) -> Delivery:
    attrs = draw(ce_attributes())
    part = "response" if str(attrs.get("type", "")).endswith("response") else "request"
    body = draw(payloads(part))
    headers = {f"ce-{k}": _header_value(draw, str(v)) for k, v in attrs.items()}
    headers["content-type"] = draw(st.sampled_from(["application/json", "application/json; charset=utf-8",
                                                    "text/plain", "application/x-ndjson", "application/x-protobuf"]))
    if draw(st.integers(0, 19)) == 0:
        headers["seldon-skip-logging"] = "true"
    return Delivery("/", headers, body, "binary")


@st.composite
def structured_event(draw: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = draw(ce_attributes())
    part = "response" if str(attrs.get("type", "")).endswith("response") else "request"
    body = draw(payloads(part))
    form = draw(st.sampled_from(["data", "data", "data_base64", "bad_base64", "none", "ext"]))
    if form == "data":
        try:
            attrs["data"] = orjson.loads(body)
        except orjson.JSONDecodeError:
            attrs["data"] = body.decode("utf-8", "replace")
    elif form == "data_base64":
        attrs["data_base64"] = base64.b64encode(body).decode()
    elif form == "bad_base64":
        attrs["data_base64"] = draw(st.sampled_from(["!!!", 42, None, ["x"]]))
    elif form == "ext":
        attrs["data"] = {"instances": [[1, 2]]}
        attrs[draw(st.sampled_from(["ext", "metadata", "traceparent", "id"]))] = draw(json_values)
    return attrs


def _dump_event(ev: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(ev)
    except orjson.JSONEncodeError:  # deeper than orjson writes: the data is spliced in as text
        return b"{}"


@st.composite
def structured_events(draw: Any) -> Delivery:
    ev = draw(structured_event())
    body = _dump_event(ev)
    if draw(st.integers(0, 9)) == 0:  # deep data spliced in as text
        body = b'{"specversion":"1.0","id":"d","source":"s","type":"org.kubeflow.serving.inference.request",' \
               b'"data":%s}' % _deep(draw(st.sampled_from([254, 256, 1000, 1023])))
    return Delivery("/", {"content-type": "application/cloudevents+json"}, body, "structured")


@st.composite
def batches(draw: Any) -> Delivery:
    events = draw(st.lists(structured_event(), max_size=12))
    body = b"[" + b",".join(_dump_event(e) for e in events) + b"]"
    if draw(st.integers(0, 9)) == 0:
        body = draw(st.sampled_from([b"{}", b"[1, 2]", b"[", b'"x"', b"[]"]))
        events = []
    return Delivery("/", {"content-type": "application/cloudevents-batch+json"}, body, "batch", events=len(events),
                    batch=bool(events))


@st.composite
def record_items(draw: Any) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        item["model"] = draw(st.sampled_from(["iris", "m"]) | attr_text)
    for key in ("id", "version", "namespace", "endpoint", "timestamp", "latency_ms", "protocol", "trace", "meta"):
        if draw(st.integers(0, 3)) == 0:
            item[key] = draw(json_values | attr_text)
    which = draw(st.sampled_from(["request", "response", "both", "inputs", "none"]))
    if which in ("request", "both"):
        item["request"] = orjson.loads(encode(draw(tables()), draw(st.sampled_from(PROTOCOLS)), "request"))
    if which in ("response", "both"):
        item["response"] = orjson.loads(encode(draw(tables()), draw(st.sampled_from(PROTOCOLS)), "response"))
    if which == "inputs":
        item["inputs"] = draw(tables() | json_values)
    if draw(st.integers(0, 4)) == 0:
        item[draw(st.sampled_from(["request", "inputs", "trace", "meta", "response"]))] = draw(json_values)
    return item


@st.composite
def records(draw: Any) -> Delivery:
    items = draw(st.lists(record_items(), min_size=1, max_size=8))
    as_list = len(items) > 1 or draw(st.booleans())
    body = orjson.dumps(items if as_list else items[0])
    if draw(st.integers(0, 7)) == 0:  # deep values spliced in as text
        where = draw(st.sampled_from(["trace", "meta", "inputs", "request", "version"]))
        d = _deep(draw(st.sampled_from([254, 256, 600, 1000, 1023])), obj=draw(st.booleans()))
        body = b'{"model":"m","inputs":{"x":[1]},"%s":%s}' % (where.encode(), d)
        if where == "inputs":
            body = b'{"model":"m","inputs":{"x":[%s]}}' % d
        as_list = False
    return Delivery("/v1/records", {"content-type": "application/json"}, body, "records", events=len(items),
                    batch=as_list)


id_text = st.text(string.ascii_letters + string.digits + "-_.:", min_size=1, max_size=24)


@st.composite
def valid_record_items(draw: Any, own_id: bool | None = None) -> dict[str, Any]:
    """A ``/v1/records`` item the collector accepts: a model name, an ``inputs`` table or a
    protocol's request (the protocol named), maybe a response, text header fields. ``own_id``:
    an ``id`` of its own (True), none and no payload that could bring one (False), either (None)."""
    item: dict[str, Any] = {"model": draw(st.sampled_from(["iris", "m"]) | st.text(string.ascii_letters, min_size=1,
                                                                                 max_size=8))}
    if own_id is None:
        own_id = draw(st.booleans())
    if own_id:
        item["id"] = draw(id_text)
    for key in ("version", "namespace", "endpoint", "trace"):
        if draw(st.integers(0, 3)) == 0:
            item[key] = draw(id_text)
    if draw(st.integers(0, 3)) == 0:
        item["timestamp"] = draw(st.sampled_from(["2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123+02:00"]))
    if not own_id or draw(st.booleans()):  # tables: no payload id
        item["inputs"] = draw(tables())
        if draw(st.booleans()):
            item["outputs"] = draw(tables())
    else:
        proto = draw(st.sampled_from(PROTOCOLS))
        item["protocol"] = proto
        item["request"] = orjson.loads(encode(draw(tables()), proto, "request"))  # type: ignore[arg-type]
        if draw(st.booleans()):
            item["response"] = orjson.loads(encode(draw(tables()), proto, "response"))  # type: ignore[arg-type]
    return item


@st.composite
def valid_records(draw: Any) -> Delivery:
    """A ``/v1/records`` list of valid items, at least one without an id of its own and one with."""
    items = [draw(valid_record_items(own_id=False)), draw(valid_record_items(own_id=True)),
             *draw(st.lists(valid_record_items(), max_size=6))]
    items = draw(st.permutations(items))
    return Delivery("/v1/records", {"content-type": "application/json"}, orjson.dumps(items), "records",
                    events=len(items), batch=True)


@st.composite
def raw_bytes(draw: Any) -> Delivery:
    path = draw(st.sampled_from(["/", "/v1/records", "/cloudevents"]))
    ctype = draw(st.sampled_from(["application/json", "application/cloudevents+json",
                                  "application/cloudevents-batch+json", ""]))
    headers = {"content-type": ctype} if ctype else {}
    if draw(st.booleans()):
        headers.update({"ce-type": "org.kubeflow.serving.inference.request", "ce-id": "r",
                        "ce-source": "s", "ce-specversion": "1.0"})
    return Delivery(path, headers, draw(st.binary(max_size=200)), "raw")


deliveries = st.one_of(binary_events(), structured_events(), batches(), records(), raw_bytes())


# --------------------------------------------------------------------------- the oracle


@dataclass
class Tally:
    requests: int = 0
    payloads: int = 0  # events and record items generated (a batch of 5 counts 5)
    by_status: dict[int, int] = field(default_factory=dict)
    crashes: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    max_seconds: float = 0.0
    max_cpu_seconds: float = 0.0  # the process's CPU time per request (the machine is shared)
    cpu_hangs: list[str] = field(default_factory=list)
    max_body: int = 0

    def add_status(self, status: int) -> None:
        self.by_status[status] = self.by_status.get(status, 0) + 1

    def summary(self) -> dict[str, Any]:
        return {"requests": self.requests, "payloads": self.payloads, "by_status": dict(sorted(self.by_status.items())),
                "crashes": len(self.crashes), "hangs": len(self.hangs), "cpu_hangs": len(self.cpu_hangs),
                "violations": len(self.violations), "slowest_s": round(self.max_seconds, 4),
                "most_cpu_s": round(self.max_cpu_seconds, 4), "largest_body": self.max_body,
                "examples": (self.crashes + self.cpu_hangs + self.hangs + self.violations)[:8]}


# --------------------------------------------------------------------------- the harness


class MemoryLog:
    """A Log that keeps appended items in memory (the fuzz checks dead letters against it)."""

    def __init__(self) -> None:
        self.topics: dict[str, list[tuple[bytes | None, bytes]]] = {}

    def create_topics(self, topics: Any) -> None:
        pass

    def append(self, topic: str, items: Any) -> None:
        self.topics.setdefault(topic, []).extend(items)

    def size(self, topic: str) -> int:
        return len(self.topics.get(topic, []))

    def close(self) -> None:
        pass


def make_app(log: Any, cfg: Any) -> Any:
    """The collector's ASGI app over ``log`` (the real Ingestor, metrics and routes)."""
    from collectors.http import create_app

    try:
        from inferwatch.ingest import Ingestor
        from inferwatch.metrics import Metrics
    except ImportError:  # before the one-way-in restructure
        from collectors.ingest import Ingestor  # type: ignore[no-redef]
        from sinks.prometheus import Metrics  # type: ignore[no-redef]
    return create_app(Ingestor(log, cfg, Metrics()))


class Harness:
    """Sends deliveries to an in-process collector and checks every answer against the oracle."""

    def __init__(self, cfg: Any, *, max_seconds: float = 1.0) -> None:
        import httpx

        self.cfg = cfg
        self.log = MemoryLog()
        self.app = make_app(self.log, cfg)
        self.max_seconds = max_seconds
        self.tally = Tally()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://fuzz",
                                        timeout=30)

    def _letters(self, start: int) -> dict[str, dict[str, Any]]:
        items = self.log.topics.get(self.cfg.log.deadletter_topic, [])[start:]
        out = {}
        for _, value in items:
            d = orjson.loads(value)
            out[d["id"]] = d
        return out

    async def send(self, d: Delivery) -> None:
        import time

        t = self.tally
        t.requests += 1
        t.payloads += max(d.events, 1)
        t.max_body = max(t.max_body, len(d.body))
        start = self.log.size(self.cfg.log.deadletter_topic)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            r = await self.client.post(d.path, content=d.body, headers=d.headers)
        except Exception as exc:  # an uncaught exception in the app is a crash
            t.crashes.append(f"{d.kind} {d.path} {len(d.body)}B: {type(exc).__name__}: {str(exc)[:200]}")
            return
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        t.max_seconds = max(t.max_seconds, elapsed)
        t.max_cpu_seconds = max(t.max_cpu_seconds, cpu)
        t.add_status(r.status_code)
        what = f"{d.kind} {d.path} {len(d.body)}B -> {r.status_code}"
        if r.status_code >= 500:
            t.crashes.append(f"{what}: {r.text[:300]}")
            return
        if elapsed > self.max_seconds:
            t.hangs.append(f"{what} in {elapsed:.2f}s wall, {cpu:.2f}s CPU")
        if cpu > self.max_seconds:
            t.cpu_hangs.append(f"{what} used {cpu:.2f}s CPU")
        self._check(d, r, what, self._letters(start))

    def _check(self, d: Delivery, r: Any, what: str, letters: dict[str, dict[str, Any]]) -> None:
        v = self.tally.violations
        if r.status_code == 204:
            return
        try:
            answer = r.json()
        except ValueError:
            v.append(f"{what}: answer is not JSON")
            return
        if r.status_code >= 400 and (not answer.get("error") or not answer.get("deadletter")):
            v.append(f"{what}: a reject without a reason or a dead letter: {str(answer)[:200]}")
            return
        for res in answer.get("results") or ([answer] if r.status_code >= 400 else []):
            dl = res.get("deadletter")
            if res.get("status") == "accepted" or (dl is None and r.status_code < 400):
                continue
            if not res.get("error"):
                v.append(f"{what}: a dead-lettered event without a reason")
            letter = letters.get(dl)
            if letter is None:
                v.append(f"{what}: dead letter {dl} is not on the log")
                continue
            raw = base64.b64decode(letter["raw"]) if letter["raw_encoding"] == "base64" else letter["raw"].encode()
            if len(raw) > max(PREFIX_KEEP, self.cfg.collector.max_body_bytes):
                v.append(f"{what}: dead letter of {len(raw)} bytes is not bounded")
            per_event = "results" in answer  # a batch: each letter keeps its own event
            if not per_event and raw != d.body[: len(raw)]:
                v.append(f"{what}: dead letter bytes are not the request's")
            if not per_event and not raw and d.body:
                v.append(f"{what}: empty dead letter for a {len(d.body)}-byte body")
            if per_event and not raw:
                v.append(f"{what}: empty dead letter for an event")
        if d.batch and 200 <= r.status_code < 300:
            results = answer.get("results")
            if results is None or len(results) != d.events:
                v.append(f"{what}: {d.events} events but {len(results or [])} answers")

    async def aclose(self) -> None:
        await self.client.aclose()

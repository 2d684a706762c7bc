"""Seldon Core v2: the topics its dataflow writes, read as a way in.

Seldon Core v2 puts every model's and pipeline's traffic on Kafka:
``<prefix>.<namespace>.model.<model>.inputs|outputs`` and
``<prefix>.<namespace>.pipeline.<pipeline>.inputs|outputs`` (prefix ``seldon``). A value is a
protobuf ``ModelInferRequest`` / ``ModelInferResponse`` of the Open Inference Protocol (compiled
in :mod:`collectors.oip_proto`), or, from the REST path, the V2 JSON body; the
``seldon-infer-type`` header says which (``proto/InferModelRequest``, ``proto/InferModelResponse``,
``json/inferModelRequest``, ``json/inferModelResponse``); without it the topic's direction and
the bytes decide. The request id is the ``x-request-id`` header (else the message key, else the
payload's ``id``).

:class:`SeldonV2Collector` consumes those topics (a pattern subscription, so models deployed
later are picked up) in its own consumer group and hands each message to the ingest path as an
:class:`~inferwatch.ingest.Envelope` of the ``oip-v2`` protocol. Halves of one request that
arrive in the same poll are paired into one ``both`` record; a half whose twin comes later is
a record of its own, and the audit store merges the two by id as it does for every collector.
Offsets are committed only after the ingest path has the batch durably on the log; while the log
refuses, the batch is retried (Seldon's topics hold it): nothing is lost, and a redelivered
message has the same id, so it counts once. A value that is not a valid message is a dead letter
with its bytes and the reason.

>>> from collectors.oip_proto import grpc_predict_v2_pb2 as pb
>>> req = pb.ModelInferRequest(model_name="iris", id="r1")
>>> t = req.inputs.add(name="x", datatype="FP32", shape=[2, 2])
>>> t.contents.fp32_contents.extend([1.5, 2.0, 3.0, 4.5])
>>> env = envelope_from_message("seldon.prod.model.iris.inputs", b"r1", req.SerializeToString(),
...                             [("seldon-infer-type", b"proto/InferModelRequest")])
>>> env.fields["id"], env.fields["model"], env.fields["namespace"], env.fields["part"]
('r1', 'iris', 'prod', 'request')
>>> env.fields["request"]["inputs"][0]["data"]
[1.5, 2.0, 3.0, 4.5]
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from inferwatch.errors import DecodeError
from inferwatch.ingest import Envelope, Ingestor
from inferwatch.record import DeadLetter

__all__ = ["SeldonV2Collector", "envelope_from_message", "message_to_json", "topic_pattern"]

log = logging.getLogger("inferwatch.collector.seldon_v2")

SOURCE = "seldon-v2"
HEADER_TYPE = "seldon-infer-type"
_TYPES = {
    "proto/infermodelrequest": ("proto", "request"),
    "proto/infermodelresponse": ("proto", "response"),
    "json/infermodelrequest": ("json", "request"),
    "json/infermodelresponse": ("json", "response"),
}
_TOPIC = re.compile(r"^(?P<prefix>[^.]+)\.(?P<ns>[^.]+)\.(?P<kind>model|pipeline)\.(?P<name>[^.]+)\."
                    r"(?P<dir>inputs|outputs)$")
_CONTENTS = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}
_RAW_DTYPES = {
    "BOOL": "?", "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "UINT8": "<u1",
    "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}


def topic_pattern(prefix: str = "seldon", namespace: str | None = None, pipelines: bool = True) -> str:
    """The regular expression of the topics to consume.

    >>> bool(re.match(topic_pattern(namespace="prod"), "seldon.prod.pipeline.p1.outputs"))
    True
    >>> bool(re.match(topic_pattern(pipelines=False), "seldon.prod.pipeline.p1.outputs"))
    False
    """
    ns = re.escape(namespace) if namespace else r"[^.]+"
    kinds = "model|pipeline" if pipelines else "model"
    return rf"^{re.escape(prefix)}\.{ns}\.({kinds})\.[^.]+\.(inputs|outputs)$"


def _pb() -> Any:
    from collectors.oip_proto import grpc_predict_v2_pb2

    return grpc_predict_v2_pb2


def _param(p: Any) -> Any:
    which = p.WhichOneof("parameter_choice")
    return getattr(p, which) if which else None


def _params(m: Any) -> dict[str, Any]:
    return {k: _param(v) for k, v in m.items()}


def _raw_values(raw: bytes, datatype: str, what: str) -> list[Any]:
    if datatype == "BYTES":  # each element: a 4-byte little-endian length, then the bytes
        out: list[bytes] = []
        i = 0
        while i < len(raw):
            if i + 4 > len(raw):
                raise DecodeError(f"{what}: truncated BYTES length prefix", protocol=SOURCE)
            n = int.from_bytes(raw[i:i + 4], "little")
            if i + 4 + n > len(raw):
                raise DecodeError(f"{what}: BYTES element longer than the raw contents", protocol=SOURCE)
            out.append(raw[i + 4:i + 4 + n])
            i += 4 + n
        return out
    import numpy as np

    if datatype == "BF16":
        if len(raw) % 2:
            raise DecodeError(f"{what}: {len(raw)} raw bytes are not whole BF16 values", protocol=SOURCE)
        return (np.frombuffer(raw, "<u2").astype("<u4") << 16).view("<f4").tolist()  # type: ignore[no-any-return]
    dtype = _RAW_DTYPES.get(datatype)
    if dtype is None:
        raise DecodeError(f"{what}: unknown datatype {datatype!r}", protocol=SOURCE)
    size = np.dtype(dtype).itemsize
    if len(raw) % size:
        raise DecodeError(f"{what}: {len(raw)} raw bytes are not whole {datatype} values", protocol=SOURCE)
    return np.frombuffer(raw, dtype).tolist()  # type: ignore[no-any-return]


def _tensor(t: Any, raw: bytes | None, what: str) -> dict[str, Any]:
    datatype = t.datatype.upper()
    if raw is not None:
        data = _raw_values(raw, datatype, what)
    else:
        field = _CONTENTS.get(datatype)
        if field is None:
            raise DecodeError(f"{what}: datatype {datatype!r} needs raw contents", protocol=SOURCE)
        data = list(getattr(t.contents, field))
    params = _params(t.parameters)
    if datatype == "BYTES":  # JSON carries text; a tensor with any non-UTF-8 element is all base64
        try:
            data = [b.decode("utf-8") for b in data]
        except UnicodeDecodeError:
            data = [base64.b64encode(b).decode("ascii") for b in data]
            params["content_type"] = "base64"
    out: dict[str, Any] = {"name": t.name, "shape": list(t.shape), "datatype": datatype, "data": data}
    if params:
        out["parameters"] = params
    return out


def message_to_json(value: bytes, part: str) -> dict[str, Any]:
    """A protobuf ``ModelInferRequest`` (``part="request"``) or ``ModelInferResponse`` as the
    Open Inference Protocol's JSON body (typed contents or raw contents alike).

    Raises :class:`~inferwatch.errors.DecodeError` for bytes that are not such a message.
    """
    pb = _pb()
    from google.protobuf.message import DecodeError as ProtoDecodeError

    cls = pb.ModelInferRequest if part == "request" else pb.ModelInferResponse
    try:
        msg = cls.FromString(value)
    except ProtoDecodeError as exc:
        raise DecodeError(f"not a protobuf {cls.__name__}: {exc}", protocol=SOURCE) from None
    tensors = msg.inputs if part == "request" else msg.outputs
    raws = list(msg.raw_input_contents if part == "request" else msg.raw_output_contents)
    if raws and len(raws) != len(tensors):
        raise DecodeError(f"{len(raws)} raw contents for {len(tensors)} tensors", protocol=SOURCE)
    key = "inputs" if part == "request" else "outputs"
    body: dict[str, Any] = {}
    if msg.id:
        body["id"] = msg.id
    if msg.model_name:
        body["model_name"] = msg.model_name
    if msg.model_version:
        body["model_version"] = msg.model_version
    if msg.parameters:
        body["parameters"] = _params(msg.parameters)
    body[key] = [_tensor(t, raws[i] if raws else None, f"{key}[{i}] ({t.name})") for i, t in enumerate(tensors)]
    if part == "request" and len(msg.outputs):
        body["outputs"] = [{"name": o.name, **({"parameters": _params(o.parameters)} if o.parameters else {})}
                           for o in msg.outputs]
    return body


def _headers(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in headers or ():
        if v is not None:
            out[k.lower()] = v.decode("utf-8", "replace")
    return out


def envelope_from_message(topic: str, key: bytes | None, value: bytes | None,
                          headers: Sequence[tuple[str, bytes | None]] | None = None,
                          timestamp_ms: int | None = None) -> Envelope:
    """The envelope of one message of a Seldon Core v2 topic; raises :class:`DecodeError` when
    the topic is not one of Seldon's or the value is not a message of its kind."""
    m = _TOPIC.match(topic)
    if m is None:
        raise DecodeError(f"topic {topic!r} is not <prefix>.<namespace>.model|pipeline.<name>.inputs|outputs",
                          protocol=SOURCE)
    if not value:
        raise DecodeError("empty message value", protocol=SOURCE)
    h = _headers(headers)
    part = "request" if m["dir"] == "inputs" else "response"
    kind = h.get(HEADER_TYPE, "").strip().lower()
    if kind in _TYPES:
        fmt, typed_part = _TYPES[kind]
        part = typed_part
    else:
        fmt = "json" if value[:1] in (b"{", b"[") else "proto"
    payload: Any = value if fmt == "json" else message_to_json(value, part)
    meta = {"seldon_topic": topic, "seldon_kind": m["kind"], "seldon_format": fmt}
    if h.get("pipeline"):
        meta["pipeline"] = h["pipeline"]
    rid = h.get("x-request-id") or (key.decode("utf-8", "replace") if key else None)
    fields: dict[str, Any] = {
        "model": m["name"] if m["kind"] == "model" else f"{m['name']}.pipeline",
        "namespace": m["ns"], "part": part, part: payload, "meta": meta,
    }
    if fmt == "proto":
        fields["protocol"] = "oip-v2"  # the JSON variant's protocol is detected from its body
    if rid:
        fields["id"] = rid
    version = payload.get("model_version") if isinstance(payload, dict) else None
    if version:  # the version the model answered with (a paired record keeps it)
        fields["version"] = str(version)
    if h.get("traceparent"):
        fields["trace"] = h["traceparent"]
    if timestamp_ms is not None and timestamp_ms >= 0:
        fields["timestamp"] = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    ctype = "application/json" if fmt == "json" else None
    return Envelope(source=SOURCE, raw=value, fields=fields, content_type=ctype)


def pair(envelopes: Sequence[Envelope]) -> list[Envelope]:
    """Join the request and response envelopes of one (id, model) into one ``both`` envelope."""
    out: list[Envelope] = []
    index: dict[tuple[str, str], int] = {}
    for env in envelopes:
        f = env.fields
        rid = f.get("id")
        if not rid:
            out.append(env)
            continue
        k = (str(rid), str(f.get("model")))
        j = index.get(k)
        other = out[j] if j is not None else None
        if j is not None and other is not None and {other.fields["part"], f["part"]} == {"request", "response"}:
            merged = dict(other.fields)
            merged.update({p: v for p, v in f.items() if p not in ("part", "meta", "timestamp")})
            merged["meta"] = {**other.fields.get("meta", {}), **f.get("meta", {})}
            ts = [x for x in (other.fields.get("timestamp"), f.get("timestamp")) if x is not None]
            if ts:
                merged["timestamp"] = min(ts)
            if len(ts) == 2:
                merged["latency_ms"] = abs((ts[1] - ts[0]).total_seconds()) * 1000
            merged["part"] = "both"
            merged["meta"].pop("seldon_topic", None)
            out[j] = Envelope(source=SOURCE, raw=other.raw + b"\n" + env.raw, fields=merged,
                              content_type=other.content_type if other.content_type == env.content_type else None)
            del index[k]
        else:
            index[k] = len(out)
            out.append(env)
    return out


class SeldonV2Collector:
    """Consumes Seldon Core v2's model and pipeline topics into the ingest path (see the module).

    ``kafka`` are kafka-python client settings (``bootstrap_servers`` and security options);
    the consumer group ``group`` keeps the position across restarts.
    """

    name = SOURCE

    def __init__(self, kafka: dict[str, Any], *, prefix: str = "seldon", namespace: str | None = None,
                 pipelines: bool = True, group: str = "inferwatch-seldon-v2", max_records: int = 1000,
                 start: str = "earliest", metadata_max_age_ms: int = 5000, retry_max_s: float = 10.0) -> None:
        self.kafka = dict(kafka)
        self.pattern = topic_pattern(prefix, namespace, pipelines)
        self.group = group
        self.max_records = max_records
        self.start_at = start
        self.metadata_max_age_ms = metadata_max_age_ms
        self.retry_max_s = retry_max_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.batches = 0
        self.messages = 0

    @classmethod
    def from_config(cls, cfg: Any) -> SeldonV2Collector:
        from inferwatch.kafka_log import _client_config

        s = cfg.seldon_v2
        kafka = _client_config(cfg.kafka)
        if s.bootstrap_servers:
            kafka["bootstrap_servers"] = s.bootstrap_servers.split(",")
        return cls(kafka, prefix=s.prefix, namespace=s.namespace, pipelines=s.pipelines, group=s.group,
                   max_records=s.max_records, start=s.start)

    def start(self, ingestor: Ingestor) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(ingestor,), name="seldon-v2", daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _consumer(self) -> Any:
        import kafka

        c = kafka.KafkaConsumer(group_id=self.group, enable_auto_commit=False, auto_offset_reset=self.start_at,
                                metadata_max_age_ms=self.metadata_max_age_ms, **self.kafka)
        c.subscribe(pattern=self.pattern)
        return c

    def _run(self, ingestor: Ingestor) -> None:
        loop = asyncio.new_event_loop()
        consumer = None
        backoff = 0.2
        try:
            while not self._stop.is_set():
                if consumer is None:
                    try:
                        consumer = self._consumer()
                    except Exception as exc:  # broker down at start: keep trying, never exit
                        log.warning("seldon-v2: cannot reach Kafka (%s); retrying", exc)
                        self._ready.set()
                        self._stop.wait(min(backoff, self.retry_max_s))
                        backoff = min(backoff * 2, self.retry_max_s)
                        continue
                self._ready.set()
                try:
                    polled = consumer.poll(timeout_ms=300, max_records=self.max_records)
                except Exception as exc:
                    log.warning("seldon-v2: poll failed (%s); retrying", exc)
                    self._stop.wait(min(backoff, self.retry_max_s))
                    continue
                msgs = [m for batch in polled.values() for m in batch]
                if not msgs:
                    continue
                if not self._ingest(loop, ingestor, msgs):
                    break  # stopping with the batch not durable: not committed, it is read again
                try:
                    consumer.commit()
                except Exception as exc:  # a rebalance: the batch is read again, same ids, counted once
                    log.warning("seldon-v2: commit failed (%s); the batch will be read again", exc)
                self.batches += 1
                self.messages += len(msgs)
                backoff = 0.2
        finally:
            if consumer is not None:
                try:
                    consumer.close(autocommit=False)
                except Exception:  # closing a consumer of a dead broker
                    pass
            loop.close()

    def _ingest(self, loop: asyncio.AbstractEventLoop, ingestor: Ingestor, msgs: list[Any]) -> bool:
        envelopes: list[Envelope] = []
        letters: list[DeadLetter] = []
        for m in msgs:
            try:
                envelopes.append(envelope_from_message(m.topic, m.key, m.value, m.headers, m.timestamp))
            except DecodeError as exc:
                letters.append(DeadLetter(raw=m.value or b"", source=SOURCE, reason=str(exc), stage="decode",
                                          meta={"topic": m.topic, "partition": str(m.partition),
                                                "offset": str(m.offset)}))
        envelopes = pair(envelopes)
        delay = 0.2
        while not self._stop.is_set():
            try:
                loop.run_until_complete(ingestor.ingest(envelopes, letters))
                return True
            except Exception as exc:  # the log refused: Seldon's topic holds the batch, try again
                log.error("seldon-v2: the log did not take %d messages (%s); retrying in %.1fs",
                          len(msgs), exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max_s)
        return False

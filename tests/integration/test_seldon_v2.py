"""Seldon Core v2 topics on the stack's real Kafka, messages built with the compiled protobuf classes.

The values are what Seldon's dataflow writes (``ModelInferRequest``/``ModelInferResponse``, typed
or raw contents, and the JSON variant of the REST path, told apart by ``seldon-infer-type``); the
oracle is the numpy arrays they were built from.
"""

from __future__ import annotations

import uuid

import numpy as np
import orjson
import pytest

from collectors.oip_proto import grpc_predict_v2_pb2 as pb
from collectors.seldon_v2 import SeldonV2Collector, envelope_from_message, pair
from inferwatch.audit import SearchQuery
from inferwatch.config import load_config
from inferwatch.ingest import Ingestor
from inferwatch.metrics import Metrics
from inferwatch.record import DeadLetter, InferenceRecord
from inferwatch.sqlite_log import SQLiteLog
from sinks.sqlite_audit import SQLiteAuditStore
from tests.contracts import CollectorContract
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

X = (np.arange(12, dtype=np.float32).reshape(3, 4) / 2).astype(np.float32)
Y = np.array([0, 2, 1], dtype=np.int64)


def _request(rid: str, model: str) -> bytes:
    req = pb.ModelInferRequest(model_name=model, id=rid)
    t = req.inputs.add(name="x", datatype="FP32", shape=list(X.shape))
    t.contents.fp32_contents.extend(X.ravel().tolist())
    req.parameters["content_type"].string_param = "np"
    return req.SerializeToString()


def _response_raw(rid: str, model: str) -> bytes:
    resp = pb.ModelInferResponse(model_name=model, model_version="v7", id=rid)
    resp.outputs.add(name="label", datatype="INT64", shape=[3])
    resp.raw_output_contents.append(Y.astype("<i8").tobytes())
    return resp.SerializeToString()


def _response_bytes(rid: str, model: str, words: list[bytes]) -> bytes:
    resp = pb.ModelInferResponse(model_name=model, id=rid)
    resp.outputs.add(name="text", datatype="BYTES", shape=[len(words)])
    resp.raw_output_contents.append(b"".join(len(w).to_bytes(4, "little") + w for w in words))
    return resp.SerializeToString()


def _h(kind: str, rid: str, **extra: str) -> list[tuple[str, bytes]]:
    return [("seldon-infer-type", kind.encode()), ("x-request-id", rid.encode()),
            *((k, v.encode()) for k, v in extra.items())]


@pytest.fixture
def seldon_ns(kafka_admin):
    from kafka.admin import NewTopic

    ns = "t" + uuid.uuid4().hex[:10]
    topics = [f"seldon.{ns}.model.{m}.{d}" for m in ("iris", "txt") for d in ("inputs", "outputs")]
    topics += [f"seldon.{ns}.pipeline.flow.{d}" for d in ("inputs", "outputs")]
    kafka_admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in topics],
                              timeout_ms=30000)
    wait_until(lambda: set(topics) <= set(kafka_admin.list_topics()), 30, "the Seldon topics")
    yield ns
    kafka_admin.delete_topics(topics, timeout_ms=30000)


def test_seldon_v2_topics_become_records_on_the_log(stack_env, seldon_ns, tmp_path):
    import kafka

    ns = seldon_ns
    bootstrap = stack_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"]
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all")
    sends = [
        (f"seldon.{ns}.model.iris.inputs", "r1", _request("r1", "iris"), _h("proto/InferModelRequest", "r1")),
        (f"seldon.{ns}.model.iris.outputs", "r1", _response_raw("r1", "iris"), _h("proto/InferModelResponse", "r1")),
        (f"seldon.{ns}.model.iris.inputs", "r2", _request("r2", "iris"), _h("proto/InferModelRequest", "r2")),
        (f"seldon.{ns}.model.txt.outputs", "r3", _response_bytes("r3", "txt", [b"alpha", "\u00e9t\u00e9".encode()]),
         _h("proto/InferModelResponse", "r3")),
        (f"seldon.{ns}.model.txt.inputs", "r4",
         orjson.dumps({"inputs": [{"name": "q", "shape": [1], "datatype": "BYTES", "data": ["hello"]}]}),
         _h("json/inferModelRequest", "r4")),
        (f"seldon.{ns}.pipeline.flow.inputs", "r5", _request("r5", "flow"),
         _h("proto/InferModelRequest", "r5", pipeline="flow")),
        (f"seldon.{ns}.pipeline.flow.outputs", "r5", _response_raw("r5", "flow"),
         _h("proto/InferModelResponse", "r5", pipeline="flow")),
        (f"seldon.{ns}.model.iris.outputs", "r6", b"\xff\xff\xff\xff", _h("proto/InferModelResponse", "r6")),
    ]
    for topic, key, value, headers in sends:
        producer.send(topic, key=key.encode(), value=value, headers=headers)
    producer.flush()
    producer.close()

    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path)})
    lg = SQLiteLog(cfg.log_path)
    collector = SeldonV2Collector({"bootstrap_servers": bootstrap.split(",")}, namespace=ns,
                                  group="g-" + uuid.uuid4().hex)
    collector.start(Ingestor(lg, cfg, Metrics()))
    try:
        # r1 and r5 arrive as one record or two halves (depending on the polls); 7 valid messages
        def enough() -> bool:
            records = [InferenceRecord.from_json(e.value) for e in lg.consumer(cfg.log.records_topic, "peek").poll(100)]
            halves = sum(2 if r.part == "both" else 1 for r in records)
            return halves >= 7 and lg.size(cfg.log.deadletter_topic) >= 1

        wait_until(enough, 60, "the Seldon messages on the log")
    finally:
        collector.stop()
    records = [InferenceRecord.from_json(e.value) for e in lg.consumer(cfg.log.records_topic, "t").poll(100)]
    letters = [DeadLetter.from_json(e.value) for e in lg.consumer(cfg.log.deadletter_topic, "t").poll(100)]
    assert [dl.raw for dl in letters] == [b"\xff\xff\xff\xff"] and "ModelInferResponse" in letters[0].reason

    store = SQLiteAuditStore(tmp_path / "audit.db")
    store.write_records(records)
    r1 = [store.get(f"r1-{i}") for i in range(3)]
    for i, doc in enumerate(r1):
        assert doc["model"] == "iris" and doc["namespace"] == ns
        assert [doc["input"][f"x_{j}"] for j in range(4)] == X[i].tolist()
        assert doc["output"] == {"label": int(Y[i])}
    assert r1[0]["version"] == "v7"
    r2 = store.get("r2-0")
    assert r2["input"]["x_0"] == 0.0 and "output" not in r2  # a half without its twin is kept
    r3 = [store.get(f"r3-{i}")["output"]["text"] for i in range(2)]
    assert r3 == ["alpha", "\u00e9t\u00e9"]
    r4 = store.get("r4-0")
    assert r4["input"] == {"q": "hello"} and r4["model"] == "txt"
    r5 = store.get("r5-0")
    assert r5["model"] == "flow.pipeline" and r5["output"] == {"label": 0} and r5["meta"]["pipeline"] == "flow"
    assert store.count(SearchQuery(kind="records")) == 3 + 3 + 2 + 1 + 3  # r1..r5, one document per row
    assert collector.messages == len(sends)


def test_halves_in_one_poll_are_paired_into_one_record():
    a = envelope_from_message("seldon.ns.model.m.inputs", b"k", _request("k", "m"), _h("proto/InferModelRequest", "k"),
                              1_000)
    b = envelope_from_message("seldon.ns.model.m.outputs", b"k", _response_raw("k", "m"),
                              _h("proto/InferModelResponse", "k"), 1_250)
    c = envelope_from_message("seldon.ns.model.other.outputs", b"k", _response_raw("k", "other"),
                              _h("proto/InferModelResponse", "k"))
    out = pair([a, b, c])
    assert [e.fields["part"] for e in out] == ["both", "response"]
    assert out[0].fields["latency_ms"] == 250.0 and "request" in out[0].fields and "response" in out[0].fields


class TestSeldonV2CollectorContract(CollectorContract):
    """The collector contract, payloads delivered as Seldon's REST path writes them (JSON variant)."""

    @pytest.fixture
    def collector(self, stack_env, kafka_admin):
        import kafka

        self.ns = "c" + uuid.uuid4().hex[:10]
        self.bootstrap = stack_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"].split(",")
        self.producer = kafka.KafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        topic = f"seldon.{self.ns}.model.toy-model.inputs"  # Seldon creates a model's topics when it loads
        kafka_admin.create_topics([kafka.admin.NewTopic(topic, num_partitions=1, replication_factor=1)],
                                  timeout_ms=30000)
        wait_until(lambda: topic in kafka_admin.list_topics(), 30, "the topic")
        c = SeldonV2Collector({"bootstrap_servers": self.bootstrap}, namespace=self.ns, group="g-" + uuid.uuid4().hex)
        yield c
        self.producer.close()
        topics = [t for t in kafka_admin.list_topics() if t.startswith(f"seldon.{self.ns}.")]
        if topics:
            kafka_admin.delete_topics(topics, timeout_ms=30000)

    def deliver(self, collector, record_id, model, body):
        before = collector.messages
        self.producer.send(f"seldon.{self.ns}.model.{model}.inputs", key=record_id.encode(), value=body,
                           headers=_h("json/inferModelRequest", record_id))
        self.producer.flush()
        wait_until(lambda: collector.messages > before, 60, "the collector to commit the message")

"""The collector over real HTTP (uvicorn on loopback), with the embedded audit role behind it."""

from __future__ import annotations

import base64

import orjson
import pytest

from inferwatch.audit import SearchQuery
from inferwatch.record import DeadLetter
from tests.pipelines import collector_fixtures

pipe, client = collector_fixtures({"collector.max_body_bytes": 100_000}, timeout=10)


def _idle(pipe):
    assert pipe.wait_idle(timeout=20)
    return pipe.store


SELDON_REQ = {"data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0], [3.0, 4.0]]}}
SELDON_RESP = {"data": {"names": ["p"], "ndarray": [[0.1], [0.9]]}, "meta": {}}


def test_seldon_binary_cloudevents_merge_into_one_document_per_row(pipe, client):
    h = {"Ce-Type": "io.seldon.serving.inference.request", "Ce-Requestid": "req-1", "Ce-Id": "evt-1",
         "Ce-Modelid": "classifier", "Ce-Inferenceservicename": "income", "Ce-Namespace": "prod",
         "Ce-Endpoint": "default", "Ce-Specversion": "1.0", "Ce-Source": "seldon", "Content-Type": "application/json"}
    r = client.post("/", content=orjson.dumps(SELDON_REQ), headers=h)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 1, "ids": ["req-1/classifier"], "rows": 2}
    h2 = {**h, "Ce-Type": "io.seldon.serving.inference.response", "Ce-Id": "evt-2"}
    assert client.post("/", content=orjson.dumps(SELDON_RESP), headers=h2).status_code == 202
    store = _idle(pipe)
    docs = sorted(store.search(SearchQuery(id="req-1")), key=lambda d: d["row"])
    assert [d["doc_id"] for d in docs] == ["req-1/classifier-0", "req-1/classifier-1"]
    assert docs[1]["input"] == {"a": 3.0, "b": 4.0} and docs[1]["output"] == {"p": 0.9}
    assert docs[0]["model"] == "income" and docs[0]["endpoint"] == "default" and docs[0]["namespace"] == "prod"
    assert "version" not in docs[0]  # the endpoint is not a model version
    assert orjson.loads(docs[0]["request"]) == SELDON_REQ and orjson.loads(docs[0]["response"]) == SELDON_RESP
    assert docs[0]["protocol"] == "seldon-v1"
    assert docs[0]["meta"]["ce-modelid"] == "classifier"


def test_kserve_events_pair_on_ce_id(pipe, client):
    base = {"Ce-Id": "k-1", "Ce-Inferenceservicename": "sklearn-iris", "Ce-Namespace": "ns",
            "Ce-Component": "predictor", "Ce-Endpoint": "canary", "Ce-Specversion": "1.0", "Ce-Source": "kserve"}
    req = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
    assert client.post("/", json=req, headers={**base, "Ce-Type": "org.kubeflow.serving.inference.request"}
                       ).status_code == 202
    assert client.post("/", json={"predictions": [1, 1]},
                       headers={**base, "Ce-Type": "org.kubeflow.serving.inference.response"}).status_code == 202
    store = _idle(pipe)
    d = store.get("k-1-1")
    assert d["input"] == {"f0": 6.0, "f1": 3.4, "f2": 4.5, "f3": 1.6}
    assert list(d["output"].values()) == [1]
    assert d["endpoint"] == "canary" and "version" not in d and d["protocol"] == "kserve-v1"


def test_structured_and_batched_cloudevents(pipe, client):
    ev = {"specversion": "1.0", "id": "s-1", "type": "org.kubeflow.serving.inference.request",
          "source": "x", "inferenceservicename": "m", "datacontenttype": "application/json",
          "data": {"instances": [{"age": 30, "city": "Oslo"}]}}
    r = client.post("/", content=orjson.dumps(ev), headers={"Content-Type": "application/cloudevents+json"})
    assert r.status_code == 202, r.text
    ev2 = {**ev, "id": "s-2", "data": None,
           "data_base64": base64.b64encode(b'{"instances": [{"age": 41, "city": "Rome"}]}').decode()}
    del ev2["data"]
    r = client.post("/", content=orjson.dumps([ev2]), headers={"Content-Type": "application/cloudevents-batch+json"})
    assert r.status_code == 202, r.text
    store = _idle(pipe)
    assert store.get("s-1-0")["input"] == {"age": 30, "city": "Oslo"}
    assert store.get("s-2-0")["input"] == {"age": 41, "city": "Rome"}


def test_plain_json_records(pipe, client):
    one = {"model": "m", "id": "j-1", "version": "2", "inputs": {"x": [1, 2, 3]}, "outputs": [{"y": 0}, {"y": 1}, {"y": 0}]}
    many = [{"model": "m", "id": f"j-{i}", "request": {"instances": [[i]]}, "response": {"predictions": [i]}}
            for i in range(2, 5)]
    assert client.post("/v1/records", json=one).json()["rows"] == 3
    assert client.post("/v1/records", json=many).json()["accepted"] == 3
    store = _idle(pipe)
    assert store.get("j-1-2")["output"] == {"y": 0}
    assert store.count(SearchQuery(model="m")) == 6


CE = {"Ce-Specversion": "1.0", "Ce-Source": "test", "Ce-Id": "1"}


@pytest.mark.parametrize("body, headers, status, reason", [
    (b"\xff\xfe garbage", {**CE, "Ce-Type": "io.seldon.serving.inference.request", "Ce-Modelid": "m"}, 400, ""),
    (b'[1, {"a": 1}]', {**CE, "Ce-Type": "org.kubeflow.serving.inference.request",
                        "Ce-Inferenceservicename": "m"}, 400, "expected"),
    (b'{"instances": [[1]]}', {"Content-Type": "application/json"}, 400, "not a CloudEvent"),
    (b'{"instances": [[1]]}', {**CE, "Ce-Type": "com.example.other"}, 400, "unsupported CloudEvent type"),
    (b'{"instances": [[1]]}', {**CE, "Ce-Type": "org.kubeflow.serving.inference.request"}, 400, "no model"),
    (b'{"instances": [[1]]}', {"Ce-Type": "org.kubeflow.serving.inference.request", "Ce-Id": "1",
                               "Ce-Inferenceservicename": "m"}, 400, "required attribute(s) source, specversion"),
    (b'{"instances": [[1]]}', {**CE, "Ce-Specversion": "9.9", "Ce-Type": "org.kubeflow.serving.inference.request",
                               "Ce-Inferenceservicename": "m"}, 400, "unsupported specversion"),
    (b"x" * 200_000, {**CE, "Ce-Type": "org.kubeflow.serving.inference.request"}, 413, "max_body_bytes"),
    (b"{", {"Content-Type": "application/cloudevents+json"}, 400, "invalid CloudEvent"),
])
def test_bad_payloads_get_a_reason_and_a_dead_letter(pipe, client, body, headers, status, reason):
    r = client.post("/", content=body, headers=headers)
    assert r.status_code == status, r.text
    answer = r.json()
    assert reason in answer["error"]
    store = _idle(pipe)
    letters = store.search(SearchQuery(kind="deadletters"))
    assert [d["id"] for d in letters] == [answer["deadletter"]]
    raw = DeadLetter.from_json(orjson.dumps(letters[0])).raw
    # a body refused for its size keeps its first 64 KiB (announced by Content-Length here)
    assert raw == (body if status != 413 else body[:65536])
    assert store.count(SearchQuery()) == 0


def test_bad_json_record_in_a_batch_is_rejected_alone(pipe, client):
    r = client.post("/v1/records", json=[{"model": "m", "id": "ok", "inputs": {"x": [1]}}, {"id": "no-model"}])
    assert r.status_code == 207, r.text  # partly accepted: not a plain 400
    answer = r.json()
    assert answer["accepted"] == 1 and answer["rejected"] == 1
    assert answer["results"][0] == {"status": "accepted", "id": "ok"}
    assert answer["results"][1]["status"] == "deadlettered" and "no 'model'" in answer["results"][1]["error"]
    store = _idle(pipe)
    assert store.get("ok-0") is not None
    assert [d["id"] for d in store.search(SearchQuery(kind="deadletters"))] == [answer["results"][1]["deadletter"]]


def test_skip_logging_header(pipe, client):
    r = client.post("/", json={"instances": [[1]]}, headers={
        **CE, "Ce-Type": "io.seldon.serving.inference.request", "Ce-Modelid": "m", "Seldon-Skip-Logging": "true"})
    assert r.status_code == 204
    assert _idle(pipe).count(SearchQuery()) == 0


def test_health_ready_metrics(pipe, client):
    from tests.waiting import wait_until

    assert client.get("/healthz").json() == {"status": "ok"}
    # ready once the audit role behind the collector has connected and made its first step
    wait_until(lambda: client.get("/readyz").status_code == 200, 30, "the pipeline to be ready")
    assert 'inferwatch_ready{role="collector"} 1.0' in client.get("/metrics").text
    client.post("/v1/records", json={"model": "m", "inputs": {"x": [1]}})
    text = client.get("/metrics").text
    assert 'inferwatch_records_received_total{source="json"} 1.0' in text
    assert 'inferwatch_records_decoded_total{model="m",version=""} 1.0' in text

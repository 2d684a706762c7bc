"""Issue 10's regressions, end to end (uvicorn on loopback, the embedded audit role behind it),
with the bytes made by the real client libraries (tests/realclients.py): the CloudEvents SDK 2.x
(both APIs), seldon-core's wrapper, MLServer's codecs, KServe's InferResponse, tritonclient."""

from __future__ import annotations

import base64
import threading

import httpx
import numpy as np
import orjson
import pytest

import inferwatch.ingest as ingest
from inferwatch.audit import SearchQuery
from inferwatch.pipeline import Pipeline
from inferwatch.record import DeadLetter
from tests import realclients as rc
from tests.pipelines import collector_fixtures

SELDON = "io.seldon.serving.inference"
KSERVE = "org.kubeflow.serving.inference"


# a long decoding budget: these tests hold decodes on purpose and the machine is shared
pipe, client = collector_fixtures({"collector.max_body_bytes": 2_000_000, "collector.decode_seconds": 120}, timeout=30)


def _store(pipe):
    assert pipe.wait_idle(timeout=30)
    return pipe.store


def _letters(pipe):
    return {d["id"]: DeadLetter.from_json(orjson.dumps(d)) for d in _store(pipe).search(
        SearchQuery(kind="deadletters", limit=1000))}


def _deep(depth: int, obj: bool = False) -> bytes:
    return (b'{"k":' * depth + b"1" + b"}" * depth) if obj else (b"[" * depth + b"1" + b"]" * depth)


def _splice(body: bytes, placeholder: str, value: bytes) -> bytes:
    marker = orjson.dumps(placeholder)
    assert body.count(marker) == 1
    return body.replace(marker, value)


class _Model:
    def __init__(self, answer):
        self.answer = answer

    def predict(self, X, names):
        return self.answer


# --------------------------------------------------------------------------- 1. deep nesting


@pytest.mark.parametrize("depth", [255, 256, 1023])
def test_deep_nesting_anywhere_is_a_400_with_a_dead_letter(pipe, client, depth):
    """The SDK writes the event, the nesting is spliced in where its placeholder was (no JSON
    writer, the SDK's included, writes 1,023 levels)."""
    deep = _deep(depth)
    deep_obj = _deep(depth, obj=True)
    attrs = {"type": f"{KSERVE}.request", "source": "kserve", "id": "d-1", "inferenceservicename": "m"}
    cases = []
    _, body = rc.cloudevent_structured(attrs, {"instances": "@@"})
    cases.append(("structured data", {"content-type": "application/cloudevents+json"},
                  _splice(body, "@@", deep), "nested"))
    _, body = rc.cloudevent_structured({**attrs, "ext": "@@"}, {"instances": [[1]]})
    cases.append(("extension attribute", {"content-type": "application/cloudevents+json"},
                  _splice(body, "@@", deep_obj), "attribute 'ext'"))
    headers, _ = rc.cloudevent_binary(attrs, b"{}")
    cases.append(("binary body", {**headers, "content-type": "application/json"}, b'{"instances": [%s]}' % deep,
                  "nested"))
    for key, value in (("trace", deep), ("meta", b'{"a": %s}' % deep_obj), ("version", deep_obj)):
        cases.append((f"record {key}", {"content-type": "application/json"},
                      b'{"model": "m", "inputs": {"x": [1]}, "%s": %s}' % (key.encode(), value), "nested"))
    cases.append(("record input cell", {"content-type": "application/json"},
                  b'{"model": "m", "inputs": {"x": [%s]}}' % deep, "nested"))
    answers = []
    for what, headers, body, reason in cases:
        path = "/v1/records" if what.startswith("record") else "/"
        r = client.post(path, content=body, headers=headers)
        assert r.status_code == 400, (what, r.status_code, r.text[:300])
        answers.append((what, body, r.json(), reason))
    letters = _letters(pipe)
    for what, body, answer, reason in answers:
        assert reason in answer["error"], (what, answer["error"])
        assert letters[answer["deadletter"]].raw == body, what
    assert _store(pipe).count(SearchQuery()) == 0


# --------------------------------------------------------------------------- 2. off the event loop


def test_healthz_answers_while_a_delivery_is_being_decoded(pipe, client, monkeypatch):
    """By condition, not by clock: decoding is held inside the decode thread until /healthz has
    answered. Were decoding on the event loop, /healthz could not answer (its timeout, long, is
    only there so a regression fails instead of hanging)."""
    started, release = threading.Event(), threading.Event()
    real = ingest.to_record

    def held(env, *a, **kw):
        started.set()
        assert release.wait(60)
        return real(env, *a, **kw)

    monkeypatch.setattr(ingest, "to_record", held)
    body = rc.triton_request([("x", np.array([i], dtype=np.int32), "INT32") for i in range(16000)])
    assert len(body) > 65536  # decoded off the loop (bigger than collector.inline_decode_bytes)
    headers, _ = rc.cloudevent_binary({"type": f"{KSERVE}.request", "source": "t", "id": "same-names",
                                       "inferenceservicename": "m", "datacontenttype": "application/json"}, b"")
    result: dict[str, httpx.Response] = {}
    base = client.base_url

    def post() -> None:
        with httpx.Client(base_url=base, timeout=120) as c:
            result["r"] = c.post("/", content=body, headers=headers)

    t = threading.Thread(target=post)
    t.start()
    assert started.wait(60)
    try:
        h = client.get("/healthz", timeout=30)
        assert h.status_code == 200 and "r" not in result  # answered while the decode is held
    finally:
        release.set()
        t.join(120)
    assert result["r"].status_code == 202, result["r"].text[:300]
    doc = _store(pipe).get("same-names-0")
    assert doc["input"]["x"] == 0 and doc["input"]["x.15999"] == 15999


def test_over_budget_is_413_naming_the_limit(tmp_path):
    from inferwatch.config import load_config

    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path / "d"), "collector.port": 0,
                                               "collector.max_columns": 1000})
    p = Pipeline(cfg, ["collector", "audit"])
    p.start()
    try:
        body = rc.triton_request([(f"t{i}", np.array([i], dtype=np.int32), "INT32") for i in range(1001)])
        headers, _ = rc.cloudevent_binary({"type": f"{KSERVE}.request", "source": "t", "id": "wide",
                                           "inferenceservicename": "m"}, b"")
        r = httpx.post(f"http://127.0.0.1:{p.bound_port}/", content=body, headers=headers, timeout=30)
        assert r.status_code == 413 and "max_columns" in r.json()["error"]
        assert p.wait_idle(30)
        [letter] = p.store.search(SearchQuery(kind="deadletters"))
        assert DeadLetter.from_json(orjson.dumps(letter)).raw == body
    finally:
        p.stop()


# --------------------------------------------------------------------------- 3. Seldon's normal answers


def test_seldon_1d_prediction_and_list_of_dicts_are_audited(pipe, client):
    req = {"data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0], [3.0, 4.0]]}}
    pred = np.array([1, 0])
    dicts = [{"label": "cat"}, {"label": "dog", "p": 0.4}]
    for rid, answer in (("s-1", pred), ("s-2", dicts)):
        attrs = {"source": "seldon", "id": f"e-{rid}", "requestid": rid, "modelid": "classifier",
                 "inferenceservicename": "income", "datacontenttype": "application/json"}
        for part, payload in (("request", orjson.dumps(req)), ("response", rc.seldon_response(_Model(answer), req, answer))):
            headers, body = rc.cloudevent_binary({**attrs, "type": f"{SELDON}.{part}"}, payload)
            r = client.post("/", content=body, headers=headers)
            assert r.status_code == 202, r.text
    store = _store(pipe)
    assert [store.get(f"s-1/classifier-{i}")["output"] for i in range(2)] == [{"f0": 1}, {"f0": 0}]
    assert [store.get(f"s-2/classifier-{i}")["output"] for i in range(2)] == [
        {"label": "cat", "p": None}, {"label": "dog", "p": 0.4}]


# --------------------------------------------------------------------------- 4. Seldon graphs


def test_every_seldon_graph_node_keeps_its_own_input_and_output(pipe, client):
    """transformer -> model -> output transformer, one Ce-Requestid: three nodes, three keys."""
    raw = {"data": {"names": ["age"], "ndarray": [[30], [60]]}}
    scaled = {"data": {"names": ["age"], "ndarray": [[0.3], [0.6]]}}
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])
    model = _Model(proba)
    model.class_names = ["no", "yes"]
    nodes = [("transformer", orjson.dumps(raw), orjson.dumps(scaled)),
             ("classifier", orjson.dumps(scaled), rc.seldon_response(model, scaled, proba)),
             ("labeller", rc.seldon_response(model, scaled, proba), orjson.dumps({"data": {"ndarray": ["no", "yes"]}}))]
    for node, request, response in nodes:
        for part, payload in (("request", request), ("response", response)):
            headers, body = rc.cloudevent_binary({"type": f"{SELDON}.{part}", "source": "seldon", "id": f"{node}-{part}",
                                                  "requestid": "g-1", "modelid": node, "inferenceservicename": "income",
                                                  "datacontenttype": "application/json"}, payload)
            assert client.post("/", content=body, headers=headers).status_code == 202
    store = _store(pipe)
    docs = store.search(SearchQuery(id="g-1"))  # the request id finds every node
    by_node = {d["meta"]["ce-modelid"]: d for d in docs if d["row"] == 1}
    assert by_node["transformer"]["input"] == {"age": 60} and by_node["transformer"]["output"] == {"age": 0.6}
    assert by_node["classifier"]["input"] == {"age": 0.6} and by_node["classifier"]["output"] == {"no": 0.2, "yes": 0.8}
    assert by_node["labeller"]["output"] == {"f0": "yes"}
    assert sorted(d["doc_id"] for d in docs) == sorted(f"g-1/{n}-{i}" for n, _, _ in nodes for i in range(2))


# --------------------------------------------------------------------------- 5. CloudEvents attributes


def test_sdk_percent_encoded_headers_are_decoded_and_halves_pair(pipe, client):
    attrs = {"source": "kserve", "id": "req 1/é", "inferenceservicename": "sklearn iris",
             "metadata": '{"X-User": ["a b"]}', "endpoint": "default", "datacontenttype": "application/json"}
    h1, b1 = rc.cloudevent_binary({**attrs, "type": f"{KSERVE}.request"}, b'{"instances": [[1, 2]]}')
    assert h1["ce-id"] != "req 1/é"  # the SDK really encoded it
    h2, b2 = rc.cloudevent_binary({**attrs, "type": f"{KSERVE}.response"}, b'{"predictions": [1]}')
    for h, b in ((h1, b1), (h2, b2)):
        r = client.post("/", content=b, headers=h)
        assert r.status_code == 202 and r.json()["ids"] == ["req 1/é"]
    doc = _store(pipe).get("req 1/é-0")
    assert doc["input"] == {"f0": 1, "f1": 2} and doc["output"] == {"f0": 1}
    assert doc["model"] == "sklearn iris" and doc["meta"]["ce-metadata"] == '{"X-User": ["a b"]}'


def test_legacy_sdk_api_binary_and_structured(pipe, client):
    for i, make in enumerate((rc.cloudevent_legacy_binary, rc.cloudevent_legacy_structured)):
        headers, body = make({"type": f"{KSERVE}.request", "source": "s", "id": f"l {i}",
                              "inferenceservicename": "m"}, {"instances": [[i]]})
        r = client.post("/", content=body, headers=headers)
        assert r.status_code == 202, r.text
    assert _store(pipe).get("l 1-0")["input"] == {"f0": 1}


@pytest.mark.parametrize("missing", ["id", "source", "specversion", "type"])
def test_required_attributes_are_enforced(pipe, client, missing):
    headers, body = rc.cloudevent_binary({"type": f"{KSERVE}.request", "source": "s", "id": "r-1",
                                          "inferenceservicename": "m"}, b'{"instances": [[1]]}')
    del headers[f"ce-{missing}"]
    r = client.post("/", content=body, headers={**headers, "content-type": "application/json"})
    assert r.status_code == 400
    if missing != "type":
        assert missing in r.json()["error"]
    assert _letters(pipe)[r.json()["deadletter"]].raw == body
    _, sbody = rc.cloudevent_structured({"type": f"{KSERVE}.request", "source": "s", "id": "r-2",
                                         "inferenceservicename": "m"}, {"instances": [[1]]})
    event = orjson.loads(sbody)
    del event[missing]
    r = client.post("/", content=orjson.dumps(event), headers={"content-type": "application/cloudevents+json"})
    assert r.status_code == 400 and missing in r.json()["error"]
    assert _store(pipe).count(SearchQuery()) == 0


# --------------------------------------------------------------------------- 6. batches


def test_batch_answers_every_event_and_loses_no_valid_one(pipe, client):
    ok = lambda i: ({"type": f"{KSERVE}.request", "source": "s", "id": f"b-{i}",  # noqa: E731
                     "inferenceservicename": "m"}, {"instances": [[i]]})
    events = [ok(0), ({"type": "io.seldon.serving.inference.outlier", "source": "s", "id": "o-1"}, {"x": 1}),
              ok(1), ({"type": f"{KSERVE}.request", "source": "s", "id": "no-model"}, {"instances": [[9]]}), ok(2)]
    headers, body = rc.cloudevent_batch(events)
    r = client.post("/", content=body, headers=headers)
    assert r.status_code == 207, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["accepted", "deadlettered", "accepted", "deadlettered", "accepted"]
    assert "unsupported CloudEvent type" in results[1]["error"] and "no model" in results[3]["error"]
    store = _store(pipe)
    assert [store.get(f"b-{i}-0")["input"] for i in range(3)] == [{"f0": 0}, {"f0": 1}, {"f0": 2}]
    letters = _letters(pipe)
    assert orjson.loads(letters[results[1]["deadletter"]].raw)["id"] == "o-1"
    bad_only = rc.cloudevent_batch([events[1]])
    r = client.post("/", content=bad_only[1], headers=bad_only[0])
    assert r.status_code == 400 and r.json()["results"][0]["status"] == "deadlettered"


# --------------------------------------------------------------------------- 8. fidelity


def test_model_version_endpoint_schemas_and_binary_columns(pipe, client):
    codecs, types = rc.mlserver()
    req = codecs.NumpyRequestCodec.encode_request(np.array([[1.5, 2.0]], dtype=np.float32))
    out = codecs.Base64Codec.encode_output("blob", [b"\x89PNG\r\n"])
    resp = types.InferenceResponse(model_name="m", model_version="v3", outputs=[out])
    attrs = {"source": "kserve", "id": "f-1", "inferenceservicename": "m", "endpoint": "canary",
             "datacontenttype": "application/json"}
    for part, payload in (("request", req.model_dump_json().encode()), ("response", resp.model_dump_json().encode())):
        headers, body = rc.cloudevent_binary({**attrs, "type": f"{KSERVE}.{part}"}, payload)
        assert client.post("/", content=body, headers=headers).status_code == 202
    doc = _store(pipe).get("f-1-0")
    assert doc["version"] == "v3" and doc["endpoint"] == "canary"
    assert doc["input_schema"]["tensors"][0]["datatype"] == "FP32"
    assert doc["input_schema"]["tensors"][0]["shape"] == [1, 2]
    assert doc["output_schema"]["encodings"] == {"blob": "base64"}
    assert base64.b64decode(doc["output"]["blob"]) == b"\x89PNG\r\n"


def test_kserve_infer_response_version_survives_ce_endpoint(pipe, client):
    it = rc.kserve_infer_type()
    o = it.InferOutput(name="predict", shape=[1], datatype="INT64")
    o.set_data_from_numpy(np.array([2]))
    rest, _ = it.InferResponse(model_name="iris", model_version="7", infer_outputs=[o], response_id="k").to_rest()
    headers, body = rc.cloudevent_binary({"type": f"{KSERVE}.response", "source": "kserve", "id": "k-7",
                                          "inferenceservicename": "iris", "endpoint": "default"}, orjson.dumps(rest))
    assert client.post("/", content=body, headers={**headers, "content-type": "application/json"}).status_code == 202
    doc = _store(pipe).get("k-7-0")
    assert doc["version"] == "7" and doc["endpoint"] == "default"
    assert doc["output_schema"]["tensors"] == [{"name": "predict", "datatype": "INT64", "shape": [1]}]


def test_too_many_events_in_one_batch_is_413_naming_the_limit(pipe, client):
    n = pipe.cfg.collector.max_events + 1
    headers, body = rc.cloudevent_batch([({"type": f"{KSERVE}.request", "source": "s", "id": f"m-{i}",
                                           "inferenceservicename": "m"}, {"instances": [[i]]}) for i in range(n)])
    r = client.post("/", content=body, headers=headers)
    assert r.status_code == 413 and "max_events" in r.json()["error"]
    assert _letters(pipe)[r.json()["deadletter"]].raw == body

"""The HTTP collector's request/response pairing key and fields (collectors/http.py
``envelope_from_cloudevent``) and the Seldon Core v2 pairing's edges (collectors/seldon_v2.py
``pair``): the cases `make mutation` showed no test held. Expected values follow the CloudEvents
attributes KServe and Seldon send (their documented names) and the envelope fields by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from collectors.http import envelope_from_cloudevent
from collectors.seldon_v2 import envelope_from_message, pair
from inferwatch.ingest import Envelope

BASE = {"id": "e1", "source": "src", "specversion": "1.0"}


def _ce(kind, body=b"{}", **attrs):
    return envelope_from_cloudevent({**BASE, "type": f"org.kubeflow.serving.inference.{kind}", **attrs}, body)


def test_a_kserve_request_event_field_by_field():
    env = envelope_from_cloudevent(
        {**BASE, "type": "org.kubeflow.serving.inference.request", "inferenceservicename": "iris",
         "namespace": "prod", "endpoint": "canary", "component": "predictor", "time": "2026-01-01T00:00:01Z",
         "traceparent": "00-aa-bb-01", "datacontenttype": "application/json", "modelversion": "4",
         "metadata": "", "extra": "not kept"},
        b'{"instances": []}')
    assert env.source == "cloudevents" and env.raw == b'{"instances": []}'
    assert env.content_type == "application/json"
    assert env.fields == {
        "part": "request", "request": b'{"instances": []}', "id": "e1", "model": "iris", "version": "4",
        "namespace": "prod", "endpoint": "canary", "timestamp": datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC),
        "protocol": None, "trace": "00-aa-bb-01",
        # the CloudEvent attributes kept as meta: the known ones with a value (metadata is empty)
        "meta": {"ce-id": "e1", "ce-source": "src", "ce-specversion": "1.0",
                 "ce-type": "org.kubeflow.serving.inference.request", "ce-inferenceservicename": "iris",
                 "ce-component": "predictor"},
    }


def test_a_response_event_carries_the_response_and_the_same_id_as_its_request():
    req, resp = _ce("request", inferenceservicename="m"), _ce("response", b"[1]", inferenceservicename="m")
    assert resp.fields["part"] == "response" and resp.fields["response"] == b"[1]" and "request" not in resp.fields
    assert req.fields["id"] == resp.fields["id"] == "e1"
    fb = _ce("feedback", b"{}")
    assert fb.fields["part"] == "feedback" and fb.fields["request"] == b"{}" and "response" not in fb.fields


def test_seldon_requestid_is_the_pairing_key_with_the_graph_node():
    seldon = {**BASE, "type": "io.seldon.serving.inference.request", "requestid": "R"}
    assert envelope_from_cloudevent({**seldon, "modelid": "model"}, b"{}").fields["id"] == "R/model"
    assert envelope_from_cloudevent(seldon, b"{}").fields["id"] == "R"
    # a node without a Seldon request id is KServe's event id alone
    env = envelope_from_cloudevent({**BASE, "type": "x.response", "modelid": "node"}, b"{}")
    assert env.fields["id"] == "e1" and env.fields["model"] == "node"


def test_model_version_trace_and_content_type_sources_in_order():
    attrs = {**BASE, "type": "t.request", "inferenceservicename": "svc", "modelid": "node", "modelversion": "2",
             "traceparent": "attr-trace"}
    q = {"model": "qmodel", "version": "qv", "protocol": "oip-v2"}
    h = {"traceparent": "hdr-trace", "content-type": "text/plain"}
    env = envelope_from_cloudevent(attrs, b"x", query=q, headers=h)
    assert [env.fields[k] for k in ("model", "version", "protocol", "trace")] == ["qmodel", "qv", "oip-v2",
                                                                                  "attr-trace"]
    assert env.content_type == "text/plain"
    env = envelope_from_cloudevent({k: v for k, v in attrs.items() if k != "traceparent"}, b"x", headers=h)
    assert [env.fields[k] for k in ("model", "version", "protocol", "trace")] == ["svc", "2", None, "hdr-trace"]
    env = envelope_from_cloudevent({**BASE, "type": "t.request"}, b"x")
    assert [env.fields[k] for k in ("model", "version", "trace", "timestamp")] == [None, None, None, None]
    assert env.content_type is None


def test_allowed_headers_join_the_meta_and_others_do_not():
    env = envelope_from_cloudevent({**BASE, "type": "t.request"}, b"x",
                                   headers={"x-team": "a", "x-secret": "s", "content-type": "c"},
                                   allowed_headers=("x-team",))
    assert env.fields["meta"] == {"ce-id": "e1", "ce-source": "src", "ce-specversion": "1.0", "ce-type": "t.request",
                                  "x-team": "a"}


@pytest.mark.parametrize("time", ["yesterday", "", "2026-13-01T00:00:00Z"])
def test_an_event_time_that_does_not_parse_is_left_out(time):
    assert _ce("request", time=time).fields["timestamp"] is None


def test_required_attributes_specversion_and_type():
    with pytest.raises(ValueError, match=r"^the CloudEvent lacks the required attribute\(s\) id, type$"):
        envelope_from_cloudevent({"source": "s", "specversion": "1.0", "id": ""}, b"")
    with pytest.raises(ValueError, match=r"^unsupported specversion '2.0': expected 1.0 \(or 0.3\)$"):
        envelope_from_cloudevent({**BASE, "specversion": "2.0", "type": "t.request"}, b"")
    assert envelope_from_cloudevent({**BASE, "specversion": "0.3", "type": "t.request"}, b"").fields["part"] == "request"
    with pytest.raises(ValueError, match=r"^unsupported specversion '1.0-abcdefghijklmnop': "):  # its first 20 characters
        envelope_from_cloudevent({**BASE, "specversion": "1.0-abcdefghijklmnopqrstuvwxyz", "type": "t.request"}, b"")
    with pytest.raises(ValueError, match=r"^unsupported CloudEvent type 't.requests': expected a type ending in "
                                         r"\.request, \.response or \.feedback$"):
        envelope_from_cloudevent({**BASE, "type": "t.requests"}, b"")
    assert envelope_from_cloudevent({**BASE, "type": "request"}, b"").fields["part"] == "request"


# --- Seldon Core v2 pair ------------------------------------------------------------------------

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _half(part, rid, model="iris", ts_ms=None, meta_headers=(), key=None):
    direction = "inputs" if part == "request" else "outputs"
    body = ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]} if part == "request"
            else {"outputs": [{"name": "y", "shape": [1], "datatype": "INT64", "data": [1]}]})
    headers = [("x-request-id", rid.encode())] if rid else []
    headers += list(meta_headers)
    return envelope_from_message(f"seldon.prod.model.{model}.{direction}", key, orjson.dumps(body), headers,
                                 timestamp_ms=ts_ms)


def test_pair_merges_meta_both_ways_and_keeps_the_request_fields():
    req = _half("request", "r1", ts_ms=T0_MS, meta_headers=[("pipeline", b"p-req")])
    resp = _half("response", "r1", ts_ms=T0_MS + 7, meta_headers=[("traceparent", b"00-t")])
    (both,) = pair([req, resp])
    f = both.fields
    assert f["meta"] == {"seldon_kind": "model", "seldon_format": "json", "pipeline": "p-req"}
    assert f["trace"] == "00-t" and f["namespace"] == "prod" and f["request"] == req.fields["request"]
    assert f["latency_ms"] == pytest.approx(7.0) and f["timestamp"] == datetime(2026, 1, 1, tzinfo=UTC)
    # the halves are not changed
    assert req.fields["part"] == "request" and "seldon_topic" in req.fields["meta"]
    assert resp.fields["part"] == "response" and "seldon_topic" in resp.fields["meta"]


def test_pair_latency_is_the_distance_whichever_half_is_later():
    a = _half("request", "r1", ts_ms=T0_MS + 1500)
    b = _half("response", "r1", ts_ms=T0_MS)
    (both,) = pair([a, b])
    assert both.fields["latency_ms"] == pytest.approx(1500.0)
    assert both.fields["timestamp"] == datetime(2026, 1, 1, tzinfo=UTC)
    (one,) = pair([_half("request", "r2"), _half("response", "r2", ts_ms=T0_MS + 3000)])
    assert one.fields["timestamp"] == datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=3)
    assert "latency_ms" not in one.fields


def test_an_envelope_without_id_passes_through_and_pairing_goes_on():
    lone = _half("request", None)
    out = pair([lone, _half("request", "r1"), _half("response", "r1")])
    assert out[0] is lone and [e.fields["part"] for e in out] == ["request", "both"]
    assert out[1].source == "seldon-v2"


def test_pair_of_envelopes_without_meta():
    """Halves built by hand (no meta, no topic): the pair has the empty meta."""
    req = Envelope(source="seldon-v2", raw=b"a", fields={"id": "r", "model": "m", "part": "request", "request": b"a"})
    resp = Envelope(source="seldon-v2", raw=b"b", fields={"id": "r", "model": "m", "part": "response", "response": b"b"})
    (both,) = pair([req, resp])
    assert both.fields == {"id": "r", "model": "m", "part": "both", "request": b"a", "response": b"b", "meta": {}}
    assert both.raw == b"a\nb" and both.content_type is None


def test_pair_keys_by_the_message_key_when_there_is_no_request_id_header():
    out = pair([_half("request", None, key=b"k1"), _half("response", None, key=b"k1")])
    assert [(e.fields["id"], e.fields["part"]) for e in out] == [("k1", "both")]


def test_pair_of_a_model_and_its_pipeline_stays_apart():
    req = _half("request", "r1")
    resp = envelope_from_message("seldon.prod.pipeline.iris.outputs", None, b'{"outputs": []}',
                                 [("x-request-id", b"r1")])
    assert pair([req, resp]) == [req, resp]


def test_pair_after_a_pair_a_new_request_with_the_same_id_waits_for_its_own_response():
    """After a pair the key is free again; of two open requests with one id the newer one is open
    (a resent request replaces the one the response has not come for), so the response pairs with it."""
    out = pair([_half("request", "r1"), _half("response", "r1"), _half("request", "r1"), _half("request", "r1"),
                _half("response", "r1")])
    assert [e.fields["part"] for e in out] == ["both", "request", "both"]

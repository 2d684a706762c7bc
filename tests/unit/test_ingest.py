"""The one way in: CloudEvents and /v1/records items become envelopes that one function decodes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest

from collectors.http import envelope_from_cloudevent, envelope_from_json
from inferwatch.config import load_config
from inferwatch.errors import DecodeError
from inferwatch.ingest import Envelope, Ingestor, to_record
from inferwatch.metrics import Metrics
from inferwatch.record import DeadLetter, InferenceRecord
from inferwatch.sqlite_log import SQLiteLog

KSERVE_REQ = {"instances": [[1.0, 2.0], [3.0, 4.0]]}


def _ce(part, body, **attrs):
    return envelope_from_cloudevent({"type": f"org.kubeflow.serving.inference.{part}", "id": "r1", "source": "t", "specversion": "1.0",
                                     "inferenceservicename": "m", **attrs}, orjson.dumps(body))


def test_cloudevent_and_json_item_give_the_same_record():
    from_ce = to_record(_ce("request", KSERVE_REQ, time="2026-01-01T00:00:00Z"))
    from_json = to_record(envelope_from_json({"model": "m", "id": "r1", "request": KSERVE_REQ,
                                              "timestamp": "2026-01-01T00:00:00+00:00"}))
    for rec in (from_ce, from_json):
        assert rec.inputs == {"f0": [1.0, 3.0], "f1": [2.0, 4.0]} and rec.protocol == "kserve-v1"
        assert rec.part == "request" and rec.timestamp == datetime(2026, 1, 1, tzinfo=UTC)
        assert orjson.loads(rec.request_bytes() or b"") == KSERVE_REQ
    assert (from_ce.source, from_json.source) == ("cloudevents", "json")


def test_payload_says_model_id_and_version_when_the_transport_does_not():
    body = {"model_name": "iris", "model_version": "3", "id": "p-1",
            "outputs": [{"name": "y", "shape": [1], "datatype": "INT64", "data": [2]}]}
    rec = to_record(Envelope(source="test", raw=b"", fields={"part": "response", "response": orjson.dumps(body)}))
    assert (rec.model, rec.id, rec.version, rec.outputs) == ("iris", "p-1", "3", {"y": [2]})


def test_feedback_event_decodes_request_response_and_truth():
    fb = {"request": {"instances": [[1.0]]}, "response": {"predictions": [0]}, "truth": {"predictions": [1]}}
    rec = to_record(_ce("feedback", fb))
    assert rec.part == "feedback"
    assert rec.inputs == {"f0": [1.0]} and rec.outputs == {"f0": [0]} and rec.truth == {"f0": [1]}
    assert orjson.loads(rec.request or "") == fb  # the feedback body is kept verbatim


def test_json_item_tables_rows_and_truth_payload():
    rec = to_record(envelope_from_json({"model": "m", "inputs": [{"a": 1}, {"a": 2}], "outputs": {"y": [0, 1]},
                                        "truth_payload": {"predictions": [1, 1]}, "version": 2, "meta": {"k": 1}}))
    assert rec.part == "both" and rec.inputs == {"a": [1, 2]} and rec.truth == {"f0": [1, 1]}
    assert rec.version == "2" and rec.meta == {"k": "1"} and rec.protocol == "json"


@pytest.mark.parametrize("item, reason", [
    ([1], "JSON object"), ({"id": "x"}, "no 'model'"), ({"model": "m"}, "neither"),
    ({"model": "m", "inputs": {"x": 1}}, "must be a table"), ({"model": "m", "inputs": {"x": [1], "y": [1, 2]}},
                                                               "must be a table"),
    ({"model": "m", "inputs": {"x": [1]}, "timestamp": "yesterday"}, "bad timestamp"),
])
def test_bad_json_items_name_the_reason(item, reason):
    with pytest.raises(DecodeError, match=reason):
        to_record(envelope_from_json(item))


def test_envelope_fields_are_record_fields():
    with pytest.raises(ValueError, match="not InferenceRecord fields"):
        Envelope(source="x", raw=b"", fields={"modle": "m"})


def test_ingest_appends_records_and_keeps_failures_as_dead_letters(tmp_path):
    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path)})
    lg = SQLiteLog(tmp_path / "log.db")
    ingestor = Ingestor(lg, cfg, Metrics())
    bad = _ce("request", [1, {"a": 1}])
    rejected = DeadLetter(raw=b"[", source="json", reason="not JSON")
    recs, letters = asyncio.run(ingestor.ingest([_ce("request", KSERVE_REQ), bad], [rejected]))
    assert [r.id for r in recs] == ["r1"] and letters[0].reason == "not JSON"
    assert letters[1].raw == bad.raw and letters[1].meta["model"] == "m" and letters[1].stage == "decode"
    logged = [InferenceRecord.from_json(e.value).id for e in lg.consumer(cfg.log.records_topic, "t").poll(10)]
    dead = [DeadLetter.from_json(e.value).id for e in lg.consumer(cfg.log.deadletter_topic, "t").poll(10)]
    assert logged == ["r1"] and dead == [dl.id for dl in letters]


# --- Seldon Core v2: pairing the halves of one request (collectors/seldon_v2.pair) -----------------


def _half(part: str, rid: str | None, model: str = "iris", ts_ms: int | None = None, body: dict | None = None,
          pipeline: str | None = None):
    from collectors.seldon_v2 import envelope_from_message

    direction = "inputs" if part == "request" else "outputs"
    if body is None:
        body = ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]} if part == "request"
                else {"model_name": model, "model_version": "3", "outputs": [
                    {"name": "y", "shape": [1], "datatype": "INT64", "data": [1]}]})
    headers = [("x-request-id", rid.encode())] if rid else []
    if pipeline:
        headers.append(("pipeline", pipeline.encode()))
    return envelope_from_message(f"seldon.prod.model.{model}.{direction}", None, orjson.dumps(body), headers,
                                 timestamp_ms=ts_ms)


def test_seldon_v2_halves_of_one_request_pair_into_one_record() -> None:
    from collectors.seldon_v2 import pair

    t0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    req, resp = _half("request", "r1", ts_ms=t0 + 250, pipeline="p1"), _half("response", "r1", ts_ms=t0 + 40)
    for halves in ([req, resp], [resp, req]):  # either order
        (both,) = pair(halves)
        f = both.fields
        assert f["part"] == "both" and f["id"] == "r1" and f["model"] == "iris"
        assert f["request"] == req.fields["request"] and f["response"] == resp.fields["response"]
        assert f["timestamp"] == datetime(2026, 1, 1, 0, 0, 0, 40_000, tzinfo=UTC)  # the earlier half's
        assert f["latency_ms"] == pytest.approx(210.0)
        assert f["meta"]["pipeline"] == "p1" and "seldon_topic" not in f["meta"]
        assert both.raw == halves[0].raw + b"\n" + halves[1].raw
        assert both.content_type == "application/json"
        rec = to_record(both)
        assert rec.inputs == {"x": [1.0]} and rec.outputs == {"y": [1]}


def test_seldon_v2_pairs_only_a_request_with_a_response_of_the_same_id_and_model() -> None:
    from collectors.seldon_v2 import pair

    a = _half("request", "r1")
    other_model = _half("response", "r1", model="wine")
    other_id = _half("response", "r2")
    twice = _half("request", "r1")
    no_id = _half("request", None, body={"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [2.0]}]})
    out = pair([a, other_model, other_id, twice, no_id])
    assert out == [a, other_model, other_id, twice, no_id]  # nothing paired, order kept
    assert [e.fields["part"] for e in out] == ["request", "response", "response", "request", "request"]


def test_seldon_v2_a_third_half_starts_a_new_pair_and_positions_are_kept() -> None:
    from collectors.seldon_v2 import pair

    first = _half("request", "r1")
    lone = _half("request", "r9")
    out = pair([first, lone, _half("response", "r1"), _half("request", "r1"), _half("response", "r1")])
    assert [(e.fields["id"], e.fields["part"]) for e in out] == [("r1", "both"), ("r9", "request"), ("r1", "both")]


def test_seldon_v2_pairing_without_timestamps_or_with_mixed_formats() -> None:
    from collectors.oip_proto import grpc_predict_v2_pb2 as pb
    from collectors.seldon_v2 import envelope_from_message, pair

    req = _half("request", "r1")  # JSON, no timestamp
    msg = pb.ModelInferResponse(model_name="iris", model_version="3", id="r1")
    out = msg.outputs.add(name="y", datatype="INT64", shape=[1])
    out.contents.int64_contents.extend([4])
    resp = envelope_from_message("seldon.prod.model.iris.outputs", b"r1", msg.SerializeToString(),
                                 [("seldon-infer-type", b"proto/InferModelResponse")], timestamp_ms=1_767_225_600_000)
    (both,) = pair([req, resp])
    assert both.content_type is None  # JSON + protobuf: no one media type
    assert both.fields["timestamp"] == datetime(2026, 1, 1, tzinfo=UTC)  # the one timestamp there is
    assert "latency_ms" not in both.fields
    assert both.fields["version"] == "3"  # the response's model_version survives the merge
    assert both.fields["protocol"] == "oip-v2"
    (none,) = pair([_half("request", "r2"), _half("response", "r2")])
    assert "timestamp" not in none.fields and "latency_ms" not in none.fields


@pytest.mark.parametrize("inline_bytes", [65_536, 0])
def test_decoding_runs_with_the_cyclic_collector_paused_in_place_and_on_the_pool(tmp_path, inline_bytes):
    # a collection inside a decode would be charged to the delivery's CPU budget: whether the
    # delivery is decoded in place (small) or on the decode threads, the collector is off meanwhile
    import gc

    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path),
                                               "collector.inline_decode_bytes": inline_bytes})
    ingestor = Ingestor(SQLiteLog(tmp_path / "log.db"), cfg, Metrics())
    assert gc.isenabled()
    assert asyncio.run(ingestor.offload(gc.isenabled, 1000)) is False
    assert gc.isenabled()

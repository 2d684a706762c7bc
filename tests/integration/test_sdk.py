"""The Python SDK end to end on the real stack: a real FastAPI app with the ASGI middleware, a
decorated predict function and ``inferwatch.log(...)``, into Kafka (straight, or through the HTTP
collector) and from there by the audit role's worker into Elasticsearch.

Oracles: the bytes the HTTP client sent and received, the numbers the app computed."""

from __future__ import annotations

import uuid

import httpx
import numpy as np
import orjson
import pytest
from fastapi import FastAPI, HTTPException, Request

import inferwatch
from inferwatch import sdk
from inferwatch.config import CollectorConfig
from inferwatch.ingest import Ingestor
from inferwatch.metrics import Metrics
from tests.integration.scaled import scaled_path
from tests.llm_standin import StandIn, serve_app
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _app(standin: StandIn) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/models/fraud:predict")
    async def predict(body: dict) -> dict:
        return {"predictions": [int(sum(row) > 10) for row in body["instances"]]}

    @app.post("/v2/models/broken/infer")
    async def broken(body: dict) -> dict:
        raise HTTPException(status_code=503, detail="model warming up")

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await standin._chat(request)

    @app.get("/health")
    async def health() -> dict:
        return {"ok": True}

    return app


@pytest.mark.parametrize("destination", ["kafka", "collector"])
def test_fastapi_middleware_decorator_and_log_reach_the_audit_store(stack_env, tmp_path, destination):
    with scaled_path(stack_env, f"sdk-{destination}") as s:
        collector = None
        if destination == "kafka":
            client = sdk.Client.to_log(s.log, s.cfg, spool_path=tmp_path / "spool.db")
        else:
            from collectors.http import HTTPCollector

            collector = HTTPCollector(CollectorConfig(port=0))
            collector.start(Ingestor(s.log, s.cfg, Metrics()))
            client = sdk.Client.to_collector(f"http://127.0.0.1:{collector.port}", spool_path=tmp_path / "spool.db")
        sdk.configure(client)
        standin = StandIn()
        app = _app(standin)
        app.add_middleware(sdk.InferwatchMiddleware, model="fraud")
        sent: dict[str, tuple[bytes, bytes]] = {}
        try:
            with serve_app(app) as url, httpx.Client(base_url=url, timeout=30) as http:
                for i in range(20):
                    body = orjson.dumps({"instances": [[i, 1.5], [i * 2, 0.5]]})
                    headers = {"content-type": "application/json"}
                    if i == 0:
                        headers |= {"x-request-id": "caller-id-0", "traceparent": TRACE}
                    r = http.post("/v1/models/fraud:predict", content=body, headers=headers)
                    assert r.status_code == 200
                    sent[r.headers["x-request-id"]] = (body, r.content)
                assert "caller-id-0" in sent  # the caller's id is kept and echoed
                skipped = http.post("/v1/models/fraud:predict", content=b'{"instances": [[0, 0]]}',
                                    headers={"x-inferwatch-skip": "1", "content-type": "application/json"})
                assert skipped.status_code == 200
                err = http.post("/v2/models/broken/infer", json={"inputs": [
                    {"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]})
                assert err.status_code == 503
                text = ""
                with http.stream("POST", "/v1/chat/completions", json={
                        "model": "tiny-llm", "stream": True, "stream_options": {"include_usage": True},
                        "messages": [{"role": "user", "content": "searchable giraffe words"}]}) as resp:
                    chat_id = resp.headers["x-request-id"]
                    for line in resp.iter_lines():
                        if line.startswith("data: {"):
                            chunk = orjson.loads(line[6:])
                            text += "".join(c["delta"].get("content") or "" for c in chunk["choices"])
                assert http.get("/health").status_code == 200  # not an inference call: not logged

            @sdk.monitor(model="scorer")
            def score(x: np.ndarray) -> np.ndarray:
                return x.sum(axis=1)

            out = score(np.array([[1.0, 2.0], [3.0, 4.0]]))
            rid = inferwatch.log({"instances": [{"age": 41}]}, {"predictions": [0.25]}, model="scorer",
                                 id="explicit-" + uuid.uuid4().hex[:6])
            assert client.flush(60) and client.dropped == 0
            s.start_audit()
            # 20 exchanges x 2 rows + broken (1 row) + chat (1) + score (2 rows) + explicit log (1)
            wait_until(lambda: s.count() >= 45, 120, "the audit documents")
            assert s.count() == 45
            for req_id, (body, answer) in sent.items():
                doc = s.store.get(f"{req_id}-0")
                assert doc["request"] == body.decode() and doc["response"] == answer.decode()
                assert doc["model"] == "fraud" and doc["protocol"] == "kserve-v1"
                assert doc["output"]["f0"] == orjson.loads(answer)["predictions"][0]
            assert s.store.get("caller-id-0-0")["trace"] == TRACE
            broken = [d for d in s.docs(model="broken")]
            assert len(broken) == 1 and broken[0]["meta"]["status"] == "503"
            assert "model warming up" in broken[0]["meta"]["error"] and broken[0]["input"] == {"x": 1.0}
            chat = s.store.get(f"{chat_id}-0")
            assert chat["model"] == "tiny-llm" and chat["output"]["completion"] == text
            assert chat["output"]["completion_tokens"] == len(text.split()) and chat["output"]["ttft_ms"] > 0
            assert [d["record_id"] for d in s.docs(text="giraffe")] == [chat_id]
            scored = sorted(s.docs(model="scorer"), key=lambda d: (d["record_id"], d["row"]))
            by_id = {d["record_id"] for d in scored}
            assert rid in by_id and len(by_id) == 2
            dec = [d for d in scored if d["record_id"] != rid]
            assert [d["output"]["f0"] for d in dec] == out.tolist()
            assert s.letters_on_log() == []
        finally:
            sdk.close()
            if collector is not None:
                collector.stop()

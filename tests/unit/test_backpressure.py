"""The collector under a slow, failing or overloaded log: fast 503 with Retry-After, bounded work,
nothing appended twice, nothing appended for a client that has gone, PII gone before the log."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
import pytest

from collectors.http import create_app
from inferwatch.config import Config, load_config
from inferwatch.errors import LogError
from inferwatch.ingest import Ingestor
from inferwatch.metrics import Metrics


class FakeLog:
    """A log whose appends can be held (``gate``) or made to fail (``fail``)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.fail: str | None = None
        self.calls = 0
        self.items: list[tuple[str, bytes]] = []

    def append(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        self.calls += 1
        self.gate.wait(30)
        if self.fail:
            raise LogError(self.fail)
        self.items += [(topic, v) for _, v in items]


def _cfg(tmp_path: Any, **collector: Any) -> Config:
    over = {"data_dir": str(tmp_path), "collector": {"append_deadline_s": 0.3, "retry_after_s": 2, **collector}}
    return load_config(None, env={}, overrides=over)


def _client(cfg: Config, lg: FakeLog) -> tuple[httpx.AsyncClient, Ingestor]:
    ing = Ingestor(lg, cfg, Metrics())  # type: ignore[arg-type]
    app = create_app(ing)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c"), ing


def rec(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"r{i}", "model": "m", "inputs": {"x": [float(i)]}, **extra}


def test_a_hanging_log_gets_503_with_retry_after_then_the_breaker_refuses_without_calling_it(tmp_path) -> None:
    lg = FakeLog()
    client, ing = _client(_cfg(tmp_path), lg)

    async def run() -> None:
        lg.gate.clear()
        r = await client.post("/v1/records", json=[rec(1)])
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
        assert "did not confirm" in r.json()["error"]
        calls = lg.calls
        r2 = await client.post("/v1/records", json=[rec(2)])  # the breaker is open: refused before the log
        assert r2.status_code == 503 and "unavailable" in r2.json()["error"]
        assert lg.calls == calls
        assert (await client.get("/readyz")).status_code == 503
        lg.gate.set()  # the log comes back; the first append completes late
        ing.breaker.probe_interval_s = 0.0
        r3 = await client.post("/v1/records", json=[rec(1)])  # the client's resend of r1
        assert r3.status_code == 202
        assert (await client.get("/readyz")).status_code == 200
        await client.aclose()

    asyncio.run(run())


def test_a_failing_log_is_503_and_recovers(tmp_path) -> None:
    lg = FakeLog()
    lg.fail = "broker down"
    client, ing = _client(_cfg(tmp_path), lg)

    async def run() -> None:
        r = await client.post("/v1/records", json=[rec(1)])
        assert r.status_code == 503 and r.headers["retry-after"] == "2" and "broker down" in r.json()["error"]
        lg.fail = None
        ing.breaker.probe_interval_s = 0.0
        assert (await client.post("/v1/records", json=[rec(1)])).status_code == 202
        await client.aclose()

    asyncio.run(run())
    assert [orjson.loads(v)["id"] for t, v in lg.items if t == "inferwatch.records"] == ["r1"]


def test_over_the_request_bound_is_refused_at_once(tmp_path) -> None:
    lg = FakeLog()
    client, _ = _client(_cfg(tmp_path, max_inflight_requests=2, append_deadline_s=30), lg)

    async def run() -> list[int]:
        lg.gate.clear()
        held = [asyncio.create_task(client.post("/v1/records", json=[rec(i)])) for i in range(2)]
        while lg.calls == 0:  # the first request reached the log and holds it
            await asyncio.sleep(0.01)
        extra = await client.post("/v1/records", json=[rec(9)])
        assert extra.status_code == 503 and extra.headers["retry-after"] == "2"
        assert "requests and" in extra.json()["error"]
        lg.gate.set()
        codes = [r.status_code for r in await asyncio.gather(*held)]
        await client.aclose()
        return codes

    assert asyncio.run(run()) == [202, 202]


def test_a_resend_of_an_acknowledged_record_is_not_appended_again(tmp_path) -> None:
    lg = FakeLog()
    client, ing = _client(_cfg(tmp_path), lg)

    async def run() -> None:
        for _ in range(3):
            r = await client.post("/v1/records", json=[rec(1), rec(2)])
            assert r.status_code == 202 and r.json()["ids"] == ["r1", "r2"]
        await client.aclose()

    asyncio.run(run())
    assert sorted(orjson.loads(v)["id"] for _, v in lg.items) == ["r1", "r2"]
    assert ing.metrics.duplicates.labels(stage="collector")._value.get() == 4


def test_skip_headers_are_honoured_on_every_route(tmp_path) -> None:
    lg = FakeLog()
    client, _ = _client(_cfg(tmp_path), lg)

    async def run() -> None:
        r = await client.post("/v1/records", json=[rec(1)], headers={"Seldon-Skip-Logging": "true"})
        assert r.status_code == 204
        ce = {"ce-type": "org.kubeflow.serving.inference.request", "ce-id": "x", "ce-inferenceservicename": "m",
              "inferwatch-skip-logging": "1"}
        assert (await client.post("/", content=b'{"instances": [[1]]}', headers=ce)).status_code == 204
        r = await client.post("/v1/records", json=[rec(2)], headers={"Seldon-Skip-Logging": "false"})
        assert r.status_code == 202
        await client.aclose()

    asyncio.run(run())
    assert [orjson.loads(v)["id"] for _, v in lg.items] == ["r2"]


def test_a_request_whose_client_has_gone_is_not_decoded_or_appended(tmp_path) -> None:
    lg = FakeLog()
    ing = Ingestor(lg, _cfg(tmp_path), Metrics())  # type: ignore[arg-type]
    app = create_app(ing)
    body = orjson.dumps([rec(1)])
    messages = [{"type": "http.request", "body": body, "more_body": False}, {"type": "http.disconnect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(m: dict[str, Any]) -> None:
        sent.append(m)

    scope = {"type": "http", "method": "POST", "path": "/v1/records", "raw_path": b"/v1/records",
             "query_string": b"", "headers": [(b"content-type", b"application/json"),
                                              (b"content-length", str(len(body)).encode())],
             "scheme": "http", "server": ("c", 80), "client": ("t", 1), "http_version": "1.1", "root_path": ""}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 499
    assert lg.calls == 0 and ing.metrics.shed.labels(reason="client_gone")._value.get() == 1


@pytest.mark.parametrize("route", ["/v1/records", "/"])
def test_personal_data_never_reaches_the_log(tmp_path, route: str) -> None:
    email, card = "ada@example.org", "4111 1111 1111 1111"
    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path),
                                               "redact": {"fields": ["name"], "patterns": ["email", "card"]}})
    lg = FakeLog()
    client, _ = _client(cfg, lg)

    async def run() -> None:
        if route == "/":
            payload = {"instances": [{"name": "Ada Lovelace", "note": f"mail {email}", "x": 1.5}]}
            headers = {"ce-type": "org.kubeflow.serving.inference.request", "ce-id": "e1", "ce-source": "t",
                       "ce-specversion": "1.0", "ce-inferenceservicename": "m", "content-type": "application/json"}
            r = await client.post("/", content=orjson.dumps(payload), headers=headers)
        else:
            r = await client.post("/v1/records", json=[{"id": "p1", "model": "m",
                                                        "request": {"instances": [{"name": "Ada Lovelace",
                                                                                   "card": card, "x": 1.5}]}}])
        assert r.status_code == 202
        bad = await client.post("/v1/records", content=f'{{"model": "m", "who": "{email}", '.encode())
        assert bad.status_code == 400
        await client.aclose()

    asyncio.run(run())
    everything = b"".join(v for _, v in lg.items)
    for planted in (email, card, card.replace(" ", ""), "Ada Lovelace"):
        assert planted.encode() not in everything
    assert b"1.5" in everything and any(t == "inferwatch.deadletter" for t, _ in lg.items)

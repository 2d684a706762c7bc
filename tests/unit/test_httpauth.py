"""Token authentication in front of a real Starlette app (through its test client)."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from inferwatch.httpauth import TokenAuth, uvicorn_tls


def _app() -> Starlette:
    async def ok(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse(request.url.path)

    return Starlette(routes=[Route(p, ok, methods=["GET", "POST"]) for p in ("/healthz", "/readyz", "/metrics", "/")])


@pytest.fixture
def client() -> TestClient:
    return TestClient(TokenAuth(_app(), ["tok-one", "tok-two"]))


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer tok-one"}, {"authorization": "bearer tok-two"},
                                     {"X-API-Key": "tok-two"}])
def test_configured_tokens_pass(client: TestClient, headers: dict[str, str]) -> None:
    for path in ("/metrics", "/readyz"):
        assert client.get(path, headers=headers).text == path
    assert client.post("/", headers=headers).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer tok-three"}, {"Authorization": "Basic tok-one"},
                                     {"X-API-Key": ""}, {"Authorization": "Bearer "}, {"X-API-Key": "tok-on"}])
def test_anything_else_is_refused(client: TestClient, headers: dict[str, str]) -> None:
    r = client.post("/", headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.get("/metrics", headers=headers).status_code == 401


def test_liveness_stays_open(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200


def test_no_token_no_middleware_and_tls_needs_both_files() -> None:
    with pytest.raises(ValueError):
        TokenAuth(_app(), ["", ""])
    assert uvicorn_tls(None, None) == {}
    assert uvicorn_tls("c.pem", "k.pem") == {"ssl_certfile": "c.pem", "ssl_keyfile": "k.pem"}
    with pytest.raises(ValueError):
        uvicorn_tls("c.pem", None)

"""Bearer-token / API-key authentication for inferwatch's HTTP endpoints (ASGI middleware).

When tokens are configured, every request must carry one of them, as
``Authorization: Bearer <token>`` or ``X-API-Key: <token>``; anything else gets 401 with
``WWW-Authenticate: Bearer``. Comparison is constant-time. Liveness (``/healthz``) stays open so
an orchestrator can probe it without a credential; readiness and metrics do not (Prometheus
sends the token with ``authorization: {credentials: ...}`` in its scrape config).

>>> import asyncio
>>> async def app(scope, receive, send):
...     await send({"type": "http.response.start", "status": 200, "headers": []})
...     await send({"type": "http.response.body", "body": b"ok"})
>>> guarded = TokenAuth(app, ["s3cret-token"])
>>> async def call(headers):
...     sent = []
...     async def send(m): sent.append(m)
...     await guarded({"type": "http", "path": "/metrics", "headers": headers}, None, send)
...     return sent[0]["status"]
>>> asyncio.run(call([])), asyncio.run(call([(b"authorization", b"Bearer s3cret-token")]))
(401, 200)
>>> asyncio.run(call([(b"x-api-key", b"wrong")]))
401
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson

__all__ = ["TokenAuth", "uvicorn_tls"]

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz"})


def _digest(token: str | bytes) -> bytes:
    raw = token.encode() if isinstance(token, str) else token
    return hashlib.sha256(raw).digest()


class TokenAuth:
    """Wraps an ASGI app; requests without a configured token get 401 (lifespan passes through)."""

    def __init__(self, app: ASGIApp, tokens: Iterable[str], open_paths: Iterable[str] = OPEN_PATHS):
        self.app = app
        self._digests = [_digest(t) for t in tokens if t]
        if not self._digests:
            raise ValueError("TokenAuth needs at least one non-empty token")
        self.open_paths = frozenset(open_paths)
        self.refused = 0

    def _presented(self, scope: Scope) -> bytes | None:
        for name, value in scope.get("headers") or []:
            if name == b"authorization":
                scheme, _, cred = value.partition(b" ")
                if scheme.lower() == b"bearer" and cred.strip():
                    return cred.strip()
            elif name == b"x-api-key" and value.strip():
                return bytes(value.strip())
        return None

    def allowed(self, scope: Scope) -> bool:
        token = self._presented(scope)
        if token is None:
            return False
        d = _digest(token)
        ok = False
        for known in self._digests:  # no early exit: the time does not tell which token matched
            ok |= hmac.compare_digest(d, known)
        return ok

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope.get("path") in self.open_paths or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        self.refused += 1
        body = orjson.dumps({"error": "authentication required: send Authorization: Bearer <token> "
                                      "or X-API-Key: <token>"})
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def uvicorn_tls(certfile: str | None, keyfile: str | None) -> dict[str, Any]:
    """uvicorn.Config keyword arguments serving TLS when a certificate is configured."""
    if not certfile:
        return {}
    if not keyfile:
        raise ValueError("TLS needs both tls_certfile and tls_keyfile")
    return {"ssl_certfile": certfile, "ssl_keyfile": keyfile}

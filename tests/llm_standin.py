"""An OpenAI-compatible server stand-in (chat and text completions, streamed or not) for tests.

It answers the way vLLM does: ``chat.completion`` / ``text_completion`` objects, or
``text/event-stream`` chunks ending in ``data: [DONE]``, with ``usage`` in the stream only when
``stream_options.include_usage`` asks. The "model" is deterministic: the completion is the words
of the last user message (or prompt) in reverse order, one word per token and per chunk, cut at
``max_tokens`` (``finish_reason="length"``); with ``tools`` it calls the first tool with its
arguments streamed in two pieces (``finish_reason="tool_calls"``).

Every exchange's exact bytes are kept in :attr:`StandIn.exchanges` (what the server itself read
and wrote), an oracle independent of any logger in front of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Exchange:
    path: str
    request: bytes
    response: bytes = b""
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def _words(body: dict[str, Any]) -> tuple[list[str], int]:
    if "messages" in body:
        texts = [m.get("content") or "" for m in body["messages"]]
        last = next((m.get("content") or "" for m in reversed(body["messages"]) if m.get("role") == "user"), "")
    else:
        p = body.get("prompt", "")
        texts = [p] if isinstance(p, str) else [str(x) for x in p]
        last = texts[-1] if texts else ""
    prompt_tokens = sum(len(str(t).split()) for t in texts)
    return list(reversed(str(last).split())), prompt_tokens


class StandIn:
    """The app plus what it saw; :meth:`serve` runs it on a free loopback port."""

    def __init__(self, chunk_delay_s: float = 0.0) -> None:
        self.exchanges: list[Exchange] = []
        self.chunk_delay_s = chunk_delay_s
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/completions", self._completions, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
        ])
        self.url = ""

    async def _models(self, request: Request) -> Response:
        return Response(orjson.dumps({"object": "list", "data": [{"id": "standin", "object": "model"}]}),
                        media_type="application/json")

    async def _chat(self, request: Request) -> Response:
        return await self._answer(request, chat=True)

    async def _completions(self, request: Request) -> Response:
        return await self._answer(request, chat=False)

    async def _answer(self, request: Request, chat: bool) -> Response:
        raw = await request.body()
        ex = Exchange(request.url.path, raw, headers={k.lower(): v for k, v in request.headers.items()})
        self.exchanges.append(ex)
        body = orjson.loads(raw)
        if body.get("model") == "missing":
            err = orjson.dumps({"object": "error", "message": "The model `missing` does not exist.",
                                "type": "NotFoundError", "param": None, "code": 404})
            ex.response, ex.content_type = err, "application/json"
            return Response(err, status_code=404, media_type="application/json")
        words, prompt_tokens = _words(body)
        limit = body.get("max_tokens") or body.get("max_completion_tokens") or 10_000
        tools = body.get("tools") if chat else None
        out = words[:limit]
        reason = "tool_calls" if tools else ("length" if len(words) > limit else "stop")
        rid = f"cmpl-{len(self.exchanges)}"
        created = int(time.time())
        model = body.get("model", "standin")
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(out),
                 "total_tokens": prompt_tokens + len(out)}
        pieces = [("" if i == 0 else " ") + w for i, w in enumerate(out)]
        if not body.get("stream"):
            if chat:
                msg: dict[str, Any] = {"role": "assistant", "content": None if tools else "".join(pieces)}
                if tools:
                    msg["tool_calls"] = [{"id": "call_0", "type": "function", "function": {
                        "name": tools[0]["function"]["name"], "arguments": '{"q": "' + " ".join(out) + '"}'}}]
                choice: dict[str, Any] = {"index": 0, "message": msg, "finish_reason": reason, "logprobs": None}
                obj = {"id": rid, "object": "chat.completion", "created": created, "model": model,
                       "choices": [choice], "usage": usage}
            else:
                obj = {"id": rid, "object": "text_completion", "created": created, "model": model,
                       "choices": [{"index": 0, "text": "".join(pieces), "finish_reason": reason,
                                    "logprobs": None}], "usage": usage}
            ex.response, ex.content_type = orjson.dumps(obj), "application/json"
            return Response(ex.response, media_type="application/json")
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        kind = "chat.completion.chunk" if chat else "text_completion"

        def chunk(choice: dict[str, Any] | None, usage_: dict[str, Any] | None = None) -> bytes:
            obj = {"id": rid, "object": kind, "created": created, "model": model,
                   "choices": [choice] if choice else []}
            if usage_ is not None or include_usage:
                obj["usage"] = usage_
            return b"data: " + orjson.dumps(obj) + b"\n\n"

        def events() -> list[bytes]:
            evs: list[bytes] = []
            if chat:
                evs.append(chunk({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}))
                if tools:
                    name = tools[0]["function"]["name"]
                    args = '{"q": "' + " ".join(out) + '"}'
                    half = len(args) // 2
                    evs.append(chunk({"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_0",
                                      "type": "function", "function": {"name": name, "arguments": args[:half]}}]},
                                      "finish_reason": None}))
                    evs.append(chunk({"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {
                        "arguments": args[half:]}}]}, "finish_reason": None}))
                for p in pieces:
                    if not tools:
                        evs.append(chunk({"index": 0, "delta": {"content": p}, "finish_reason": None}))
                evs.append(chunk({"index": 0, "delta": {}, "finish_reason": reason}))
            else:
                for i, p in enumerate(pieces):
                    last = i == len(pieces) - 1
                    evs.append(chunk({"index": 0, "text": p, "finish_reason": reason if last else None,
                                      "logprobs": None}))
                if not pieces:
                    evs.append(chunk({"index": 0, "text": "", "finish_reason": reason, "logprobs": None}))
            if include_usage:
                evs.append(chunk(None, usage))
            evs.append(b"data: [DONE]\n\n")
            return evs

        evs = events()
        ex.response, ex.content_type = b"".join(evs), "text/event-stream"

        async def stream() -> AsyncIterator[bytes]:
            for e in evs:
                if self.chunk_delay_s:
                    await asyncio.sleep(self.chunk_delay_s)
                yield e

        return StreamingResponse(stream(), media_type="text/event-stream")

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Run on a free loopback port; yields the base URL (``http://127.0.0.1:<port>``)."""
        with serve_app(self.app) as url:
            self.url = url
            yield url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_app(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread; yields its URL once it accepts connections."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)

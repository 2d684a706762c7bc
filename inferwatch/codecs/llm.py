"""OpenAI-compatible LLM endpoints: ``/v1/chat/completions`` and ``/v1/completions``.

vLLM, TGI's Messages API, llama.cpp's server, Ollama's OpenAI endpoint and most LLM servers speak
this protocol. A request decodes to one row per prompt (a chat request is one prompt: its
messages), a response to one row per choice; streamed responses (server-sent events of
``chat.completion.chunk`` / ``text_completion`` chunks) are assembled into the one completion
object they add up to (:func:`assemble_stream`).

The tables hold the full text (so the audit store can search it) beside numeric features
derived per exchange, so drift and outlier detectors work on LLM traffic:

=====================  ==========================================================================
request column         value
=====================  ==========================================================================
``prompt``             the messages as ``role: content`` lines (chat), or the prompt text
``n_messages``         number of messages (chat; 1 for a completion prompt)
``prompt_chars``       characters of ``prompt``
``max_tokens``, ...    sampling parameters the request sets (``max_tokens``, ``temperature``,
                       ``top_p``, ``n``, ``stream``), only those present
=====================  ==========================================================================

=====================  ==========================================================================
response column        value
=====================  ==========================================================================
``completion``         the generated text (tool calls appended as ``name(arguments)``)
``finish_reason``      ``stop``, ``length``, ``tool_calls``, ... (a category)
``prompt_tokens``,     the server's ``usage`` (``None`` when the server did not report it, e.g. a
``completion_tokens``  stream without ``stream_options.include_usage``: never estimated)
``completion_chars``   characters of ``completion``
``latency_ms``,        total latency and latency to the first token, when the collector measured
``ttft_ms``            them (:func:`exchange_fields`; a body alone does not say)
=====================  ==========================================================================

This codec is not *tabular*: an arbitrary table is not an LLM request, so :meth:`LLMCodec.encode`
writes only its own columns back (``tabular = False`` tells the codec contract so).

>>> from inferwatch.codecs import decode
>>> d = decode({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}, part="request")
>>> d.protocol, d.table["prompt"], d.table["n_messages"]
('openai', ['user: Hi'], [1])
>>> sse = (b'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
...        b'"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}\\n\\n'
...        b'data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
...        b'"delta":{"content":"lo"},"finish_reason":"stop"}]}\\n\\ndata: [DONE]\\n\\n')
>>> out = CODEC.decode(assemble_stream(sse), "response")
>>> out.table["completion"], out.table["finish_reason"], out.meta["stream"]
(['Hello'], ['stop'], True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from inferwatch.codecs.base import Decoded, describe, fail
from inferwatch.errors import DecodeError
from inferwatch.table import Table

__all__ = ["CODEC", "LLMCodec", "PATHS", "assemble_stream", "exchange_fields", "is_event_stream", "parse_sse"]

PROTOCOL = "openai"
#: The URL paths of the protocol (a proxy recognises it by these).
PATHS = ("/v1/chat/completions", "/v1/completions", "/chat/completions", "/completions")
EXPECTED = {
    "request": '{"model", "messages": [{"role", "content"}, ...]} (chat) or {"model", "prompt"} (completion)',
    "response": '{"object": "chat.completion" | "text_completion", "choices": [...], "usage"?} '
                "or its streamed chunks",
}
_CHUNK = "chat.completion.chunk"
_OBJECTS = frozenset({"chat.completion", "text_completion", _CHUNK})
_SAMPLING = ("max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stream")
_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")


# -- server-sent events ----------------------------------------------------------------------------
def is_event_stream(content_type: str | None) -> bool:
    """Whether a media type is ``text/event-stream``."""
    return bool(content_type) and str(content_type).split(";", 1)[0].strip().lower() == "text/event-stream"


def parse_sse(body: bytes | str) -> list[Any]:
    """The JSON ``data`` of each server-sent event, in order (``[DONE]`` and comments skipped).

    Lines may end in ``\\n``, ``\\r\\n`` or ``\\r``; an event's several ``data:`` lines join
    with newlines (the SSE rules). Raises :class:`DecodeError` for data that is not JSON.

    >>> parse_sse(b': keep-alive\\r\\n\\r\\ndata: {"a": 1}\\r\\n\\r\\nevent: x\\ndata: [2,\\ndata: 3]\\n\\ndata: [DONE]\\n\\n')
    [{'a': 1}, [2, 3]]
    """
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
    events: list[Any] = []
    data: list[str] = []

    def flush() -> None:
        if data:
            payload = "\n".join(data)
            data.clear()
            if payload.strip() == "[DONE]":
                return
            try:
                events.append(orjson.loads(payload))
            except orjson.JSONDecodeError as exc:
                raise fail(PROTOCOL, f"event {len(events)} of the stream is not JSON: {exc}") from None

    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            flush()
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
        # "event:", "id:", "retry:" and ":" comments carry nothing we keep
    flush()
    return events


def _concat(a: Any, b: Any) -> Any:
    if b is None:
        return a
    return b if a is None else f"{a}{b}"


def assemble_stream(chunks: bytes | str | list[Any]) -> dict[str, Any]:
    """The completion object a stream adds up to (raw SSE bytes/text or the parsed chunks).

    Chat deltas join per choice (``role``, ``content``, ``reasoning_content``, tool calls by
    index with their ``arguments`` joined); completion chunks join ``text``. The last
    ``finish_reason`` and ``usage`` win; an ``error`` event ends the stream with
    ``finish_reason="error"`` and its message in ``error``. ``stream_chunks`` counts the chunks.

    >>> assemble_stream([{"object": "text_completion", "id": "x", "choices": [{"index": 0, "text": "a"}]},
    ...                  {"object": "text_completion", "id": "x", "choices": [{"index": 0, "text": "b",
    ...                   "finish_reason": "length"}], "usage": {"completion_tokens": 2}}])["choices"]
    [{'index': 0, 'text': 'ab', 'finish_reason': 'length'}]
    """
    events = parse_sse(chunks) if isinstance(chunks, (bytes, bytearray, str)) else list(chunks)
    out: dict[str, Any] = {}
    choices: dict[int, dict[str, Any]] = {}
    chat = False
    for ev in events:
        if not isinstance(ev, dict):
            raise fail(PROTOCOL, f"a stream event is {describe(ev)}", EXPECTED["response"])
        if "error" in ev and "choices" not in ev:
            err = ev["error"]
            out["error"] = err.get("message", err) if isinstance(err, dict) else err
            for c in choices.values():
                c["finish_reason"] = "error"
            if not choices:
                choices[0] = {"index": 0, "finish_reason": "error"}
            continue
        chat = chat or ev.get("object") == _CHUNK or any(isinstance(c, dict) and "delta" in c
                                                         for c in ev.get("choices") or ())
        for key in ("id", "model", "created", "system_fingerprint"):
            if ev.get(key) is not None:
                out.setdefault(key, ev[key])
        if isinstance(ev.get("usage"), dict):
            out["usage"] = ev["usage"]
        if not isinstance(ev.get("choices"), list):
            raise fail(PROTOCOL, "a stream chunk has no 'choices' list", EXPECTED["response"])
        for c in ev["choices"]:
            if not isinstance(c, dict):
                raise fail(PROTOCOL, f"a streamed choice is {describe(c)}")
            idx = c.get("index", 0)
            if not isinstance(idx, int):
                raise fail(PROTOCOL, f"a streamed choice's index is {describe(idx)}")
            acc = choices.setdefault(idx, {"index": idx})
            if c.get("finish_reason") is not None:
                acc["finish_reason"] = c["finish_reason"]
            if "text" in c:
                acc["text"] = _concat(acc.get("text"), c["text"])
            delta = c.get("delta")
            if isinstance(delta, dict):
                msg = acc.setdefault("message", {})
                for key in ("role", "refusal"):
                    if delta.get(key) is not None:
                        msg[key] = delta[key] if key == "role" else _concat(msg.get(key), delta[key])
                for key in ("content", "reasoning_content"):
                    if delta.get(key) is not None:
                        msg[key] = _concat(msg.get(key), delta[key])
                for tc in delta.get("tool_calls") or ():
                    if not isinstance(tc, dict):
                        continue
                    # by index, only the calls that appeared (a stream may start at index 1)
                    calls: dict[int, dict[str, Any]] = acc.setdefault("_tool_calls", {})
                    i = tc.get("index", max(calls, default=-1) + 1)
                    if not isinstance(i, int) or isinstance(i, bool):
                        raise fail(PROTOCOL, f"a streamed tool call's index is {describe(i)}")
                    call = calls.setdefault(i, {"function": {}})
                    for key in ("id", "type"):
                        if tc.get(key) is not None:
                            call[key] = tc[key]
                    fn = tc.get("function") or {}
                    if isinstance(fn, dict):
                        for key in ("name", "arguments"):
                            if fn.get(key) is not None:
                                call["function"][key] = _concat(call["function"].get(key), fn[key])
    for c in choices.values():
        calls = c.pop("_tool_calls", None)
        if calls:
            c["message"]["tool_calls"] = [calls[i] for i in sorted(calls)]
    out["object"] = "chat.completion" if chat else "text_completion"
    out["choices"] = [choices[i] for i in sorted(choices)]
    out["stream_chunks"] = len(events)
    return out


# -- the codec -------------------------------------------------------------------------------------
def _text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict):
                if isinstance(p.get("text"), str):
                    parts.append(p["text"])
                elif p.get("type"):
                    parts.append(f"[{p['type']}]")
            elif isinstance(p, str):
                parts.append(p)
        return "\n".join(parts)
    return orjson.dumps(content).decode()


def _calls(calls: Any) -> str:
    out = []
    for c in calls if isinstance(calls, list) else ():
        fn = c.get("function") if isinstance(c, dict) else None
        if isinstance(fn, dict):
            out.append(f"{fn.get('name', '')}({fn.get('arguments', '') or ''})")
    return "\n".join(out)


def _is_chat_request(obj: Any) -> bool:
    msgs = obj.get("messages")
    return isinstance(msgs, list) and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in msgs)


def _is_completion_request(obj: Any) -> bool:
    p = obj.get("prompt")
    return isinstance(obj.get("model"), str) and (isinstance(p, str) or (
        isinstance(p, list) and bool(p) and all(isinstance(x, (str, int, list)) and not isinstance(x, bool) for x in p)))


def _is_response(obj: Any) -> bool:
    if isinstance(obj, list):
        return bool(obj) and all(isinstance(c, dict) for c in obj) and obj[0].get("object") in _OBJECTS \
            and isinstance(obj[0].get("choices"), list)
    if not isinstance(obj, dict):
        return False
    if obj.get("object") in _OBJECTS and isinstance(obj.get("choices"), list):
        return True
    return isinstance(obj.get("choices"), list) and isinstance(obj.get("id"), str) and "usage" in obj


class LLMCodec:
    """OpenAI-compatible chat and completion requests and responses (streamed or not)."""

    name = PROTOCOL
    aliases: tuple[str, ...] = ("llm", "openai-chat", "openai-completions", "vllm", "tgi")
    expected = EXPECTED
    #: an arbitrary table is not an LLM request: only this codec's own columns encode back
    tabular = False

    def matches(self, obj: Any, part: str) -> bool:
        """Auto-detection: a chat request (``messages`` of role objects), a completion request
        (``model`` and ``prompt``), a (chunked) completion response."""
        if part == "request":
            return isinstance(obj, dict) and (_is_chat_request(obj) or _is_completion_request(obj))
        return _is_response(obj)

    def decode(self, obj: Any, part: str) -> Decoded:
        if part == "request":
            return self._request(obj)
        return self._response(obj)

    def _request(self, obj: Any) -> Decoded:
        if not isinstance(obj, dict):
            raise fail(PROTOCOL, f"request is {describe(obj)}", EXPECTED["request"])
        meta: dict[str, Any] = {}
        if isinstance(obj.get("model"), str):
            meta["model_name"] = obj["model"]
        if _is_chat_request(obj):
            msgs = obj["messages"]
            lines = []
            for m in msgs:
                text = _text(m.get("content"))
                if m.get("tool_calls"):
                    text = "\n".join(t for t in (text, _calls(m["tool_calls"])) if t)
                lines.append(f"{m['role']}: {text}")
            prompts, n_messages = ["\n".join(lines)], [len(msgs)]
            meta["kind"] = "chat"
        elif isinstance(obj.get("prompt"), (str, list)) and obj.get("prompt") != []:
            p = obj["prompt"]
            if isinstance(p, str) or (isinstance(p, list) and all(isinstance(x, int) for x in p)):
                p = [p]  # one text, or one prompt of token ids
            prompts = [x if isinstance(x, str) else orjson.dumps(x).decode() for x in p]
            n_messages = [1] * len(prompts)
            meta["kind"] = "completion"
        else:
            raise fail(PROTOCOL, "request has neither 'messages' (role objects) nor 'prompt'", EXPECTED["request"])
        n = len(prompts)
        table: Table = {"prompt": prompts, "n_messages": n_messages, "prompt_chars": [len(p) for p in prompts]}
        for key in _SAMPLING:
            value = obj.get(key)
            if isinstance(value, (int, float)) and not (isinstance(value, bool) and key != "stream"):
                table[key] = [value] * n
        return Decoded(PROTOCOL, table, meta)

    def _response(self, obj: Any) -> Decoded:
        meta: dict[str, Any] = {}
        if isinstance(obj, list):
            obj = assemble_stream(obj)
        if not isinstance(obj, dict):
            raise fail(PROTOCOL, f"response is {describe(obj)}", EXPECTED["response"])
        if obj.get("object") == "error":
            raise fail(PROTOCOL, f"error response: {str(obj.get('message'))[:500]}")
        if "stream_chunks" in obj:
            meta["stream"] = True
            meta["stream_chunks"] = obj["stream_chunks"]
        if obj.get("object") == _CHUNK:
            obj = assemble_stream([obj])
        choices = obj.get("choices")
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise fail(PROTOCOL, "response has no 'choices' list of objects", EXPECTED["response"])
        for key, name in (("id", "id"), ("model", "model_name"), ("system_fingerprint", "system_fingerprint"),
                          ("error", "error")):
            if obj.get(key) is not None:
                meta[name] = obj[key]
        meta["kind"] = "chat" if obj.get("object", "").startswith("chat") or any("message" in c for c in choices) \
            else "completion"
        usage = obj.get("usage") if isinstance(obj.get("usage"), Mapping) else {}
        completions: list[str] = []
        reasons: list[Any] = []
        for c in sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c.get("index"), int) else 0):
            msg = c.get("message")
            if isinstance(msg, dict):
                text = _text(msg.get("content"))
                calls = _calls(msg.get("tool_calls"))
                text = "\n".join(t for t in (text, calls) if t)
            else:
                text = c.get("text") if isinstance(c.get("text"), str) else ""
            completions.append(text)
            reason = c.get("finish_reason")
            reasons.append(reason if isinstance(reason, str) else None)
        n = len(completions)
        table: Table = {"completion": completions, "finish_reason": reasons}
        for key in _USAGE:
            value = usage.get(key)
            table[key] = [value if isinstance(value, int) and not isinstance(value, bool) else None] * n
        table["completion_chars"] = [len(t) for t in completions]
        return Decoded(PROTOCOL, table, meta)

    def encode(self, table: Table, part: str, *, model: str = "model", chat: bool | None = None) -> dict[str, Any]:
        """This codec's own columns back to a body: ``prompt`` rows as a completion request's
        prompt list (``chat=True``: one user message); ``completion``/``finish_reason`` rows as
        choices of a chat completion (``chat=False``: a text completion)."""
        if part == "request":
            prompts = table.get("prompt")
            if prompts is None:
                raise fail(PROTOCOL, "cannot encode a request without a 'prompt' column")
            if chat:
                if len(prompts) != 1:
                    raise fail(PROTOCOL, "a chat request holds one prompt")
                return {"model": model, "messages": [{"role": "user", "content": prompts[0]}]}
            return {"model": model, "prompt": list(prompts)}
        texts = table.get("completion")
        if texts is None:
            raise fail(PROTOCOL, "cannot encode a response without a 'completion' column")
        texts = list(texts)
        # one choice per completion: a finish reason not given is None (never a dropped completion)
        given = table.get("finish_reason")
        reasons = [] if given is None else list(given)
        if len(reasons) > len(texts):
            raise fail(PROTOCOL, f"{len(reasons)} finish reasons for {len(texts)} completions",
                       "at most one finish_reason per completion")
        reasons += [None] * (len(texts) - len(reasons))
        if chat is not False:
            choices = [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": r}
                       for i, (t, r) in enumerate(zip(texts, reasons, strict=True))]
            return {"id": "enc", "object": "chat.completion", "model": model, "choices": choices}
        return {"id": "enc", "object": "text_completion", "model": model,
                "choices": [{"index": i, "text": t, "finish_reason": r}
                            for i, (t, r) in enumerate(zip(texts, reasons, strict=True))]}


CODEC = LLMCodec()


def exchange_fields(request: Any, response: Any, *, response_content_type: str | None = None,
                    latency_ms: float | None = None, ttft_ms: float | None = None) -> dict[str, Any]:
    """Record fields for one LLM exchange, as a collector that measured it hands them to ingest.

    ``request``/``response`` are the bodies as received (bytes, text or parsed JSON; an
    event-stream response is assembled). The raw bodies stay verbatim in ``request`` and
    ``response``; ``inputs``/``outputs`` are decoded here, with ``latency_ms`` and ``ttft_ms``
    columns added to the outputs when given. Raises :class:`DecodeError`.

    >>> f = exchange_fields(b'{"model": "m", "prompt": "2+2="}',
    ...                     b'{"id": "x", "object": "text_completion", "choices": [{"index": 0, "text": "4",'
    ...                     b' "finish_reason": "stop"}], "usage": {"prompt_tokens": 4, "completion_tokens": 1}}',
    ...                     latency_ms=12.5, ttft_ms=3.0)
    >>> f["outputs"]["completion"], f["outputs"]["completion_tokens"], f["outputs"]["ttft_ms"], f["protocol"]
    (['4'], [1], [3.0], 'openai')
    """
    req_obj = _json(request, "request")
    if is_event_stream(response_content_type) or (
            isinstance(response, (bytes, str)) and response.lstrip()[:5] in (b"data:", "data:")):
        resp_obj: Any = assemble_stream(response)
    else:
        resp_obj = _json(response, "response")
    inputs = CODEC.decode(req_obj, "request")
    outputs = CODEC.decode(resp_obj, "response")
    n = outputs.n_rows
    out = dict(outputs.table)
    if latency_ms is not None:
        out["latency_ms"] = [round(float(latency_ms), 3)] * n
    if ttft_ms is not None:
        out["ttft_ms"] = [round(float(ttft_ms), 3)] * n
    fields: dict[str, Any] = {"protocol": PROTOCOL, "inputs": inputs.table, "outputs": out,
                              "request": request, "response": response}
    model = inputs.meta.get("model_name") or outputs.meta.get("model_name")
    if model:
        fields["model"] = model
    if latency_ms is not None:
        fields["latency_ms"] = float(latency_ms)
    meta: dict[str, str] = {k: str(outputs.meta[k]) for k in ("stream", "stream_chunks", "error") if k in outputs.meta}
    if ttft_ms is not None:
        meta["ttft_ms"] = str(round(float(ttft_ms), 3))
    if meta:
        fields["meta"] = meta
    return fields


def _json(body: Any, part: str) -> Any:
    if isinstance(body, (bytes, bytearray, str)):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"{part} is not JSON: {exc}", protocol=PROTOCOL) from None
    return body


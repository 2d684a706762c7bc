"""The LLM codec's edges (inferwatch/codecs/llm.py): the cases `make mutation` showed no test
held. Expected tables are worked out by hand from the OpenAI API's documented shapes (chat and
text completions, their streamed chunks, server-sent events' framing rules); the response
bodies are built by the ``openai`` package's own types where it has them, so a body the codec
reads is one the real client library accepts."""

from __future__ import annotations

import orjson
import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from inferwatch.codecs import llm
from inferwatch.codecs.base import Decoded
from inferwatch.codecs.llm import CODEC, assemble_stream, exchange_fields, is_event_stream, parse_sse
from inferwatch.errors import DecodeError

REQ = llm.EXPECTED["request"]
RESP = llm.EXPECTED["response"]


def err(fn, *args, **kw):
    with pytest.raises(DecodeError) as info:
        fn(*args, **kw)
    return info.value.protocol, info.value.reason, info.value.expected


def sse(*events) -> bytes:
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"


# --- framing --------------------------------------------------------------------------------------

@pytest.mark.parametrize("ctype, yes", [
    ("text/event-stream", True), ("text/event-stream; charset=utf-8", True), ("TEXT/Event-Stream", True),
    (" text/event-stream ;x", True), ("application/json", False), ("text/event-streams", False),
    ("", False), (None, False)])
def test_is_event_stream(ctype, yes):
    assert is_event_stream(ctype) is yes


def test_parse_sse_framing():
    # CR, LF and CRLF line ends; several data lines of one event join with "\n"; a "data:" without the
    # space keeps its value whole; other fields and comments are dropped; "[DONE]" with spaces is the end mark
    body = 'data:{"a":1}\r\revent: e\rid: 3\rdata: ["x",\ndata: "y"]\n\n: c\r\ndata:  [DONE] \r\n\r\ndata: 2'
    assert parse_sse(body) == [{"a": 1}, ["x", "y"], 2]
    assert parse_sse(body.encode()) == [{"a": 1}, ["x", "y"], 2]
    assert parse_sse(b"") == []
    assert err(parse_sse, b"data:\n\n")[1].startswith("event 0 of the stream is not JSON: ")  # empty data
    assert err(parse_sse, b'data: {"a":1}\n\ndata: {oops\n\n')[:1] == ("openai",)
    _, reason, expected = err(parse_sse, b'data: {"a":1}\n\ndata: {oops\n\n')
    assert reason.startswith("event 1 of the stream is not JSON: ") and expected is None


def test_parse_sse_space_after_the_colon_is_one_space():
    # the SSE rule strips exactly one leading space; JSON ignores the rest, so a string split over
    # two data lines shows it: "a" + "\n" + " b" (one space kept of two)
    assert parse_sse('data: ["a",\ndata:  "b"]\n\n') == [["a", "b"]]
    assert parse_sse('data:"x"\n\n') == ["x"]


# --- assembling a stream --------------------------------------------------------------------------

def _chunk(**kw):
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return ChatCompletionChunk.model_validate({**base, **kw}).model_dump(mode="json", exclude_unset=True)


def test_assemble_chat_stream_with_tool_calls_refusal_and_reasoning():
    chunks = [
        _chunk(system_fingerprint="fp1", choices=[{"index": 0, "delta": {"role": "assistant", "content": "He"}}]),
        _chunk(id="c2", model="m2", system_fingerprint="fp2",
               choices=[{"index": 0, "delta": {"content": "y", "reasoning_content": "r1", "refusal": "no"}},
                        {"index": 1, "delta": {"role": "assistant", "tool_calls": [
                            {"index": 0, "id": "t1", "type": "function", "function": {"name": "f", "arguments": "{\"a\""}}]}}]),
        _chunk(choices=[{"index": 1, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}],
                                               "role": "tool"}},
                        {"index": 0, "delta": {"reasoning_content": "r2", "refusal": "pe"}, "finish_reason": "stop"}]),
        _chunk(choices=[{"index": 1, "delta": {}, "finish_reason": "tool_calls"}],
               usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),
    ]
    out = assemble_stream(sse(*chunks))
    assert out == {
        "id": "c1", "model": "m", "created": 1, "system_fingerprint": "fp1",
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        "object": "chat.completion", "stream_chunks": 4,
        "choices": [
            {"index": 0, "finish_reason": "stop",
             "message": {"role": "assistant", "content": "Hey", "reasoning_content": "r1r2", "refusal": "nope"}},
            {"index": 1, "finish_reason": "tool_calls",
             "message": {"role": "tool", "tool_calls": [
                 {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}},
        ]}
    d = CODEC.decode(out, "response")
    assert d.table == {"completion": ["Hey", "f({\"a\":1})"], "finish_reason": ["stop", "tool_calls"],
                       "prompt_tokens": [3, 3], "completion_tokens": [4, 4], "total_tokens": [7, 7],
                       "completion_chars": [3, 10]}
    assert d.meta == {"stream": True, "stream_chunks": 4, "id": "c1", "model_name": "m",
                      "system_fingerprint": "fp1", "kind": "chat"}


def test_assemble_tool_calls_without_index_append_and_odd_entries_are_skipped():
    out = assemble_stream([
        {"choices": [{"delta": {"tool_calls": [{"function": {"name": "a"}}, 7, {"function": {"name": "b"}},
                                               {"index": 0, "function": "not an object"},
                                               {"index": 0, "type": None, "function": {"arguments": None}}]}}]}])
    assert out["object"] == "chat.completion"
    assert out["choices"] == [{"index": 0, "message": {"tool_calls": [{"function": {"name": "a"}},
                                                                        {"function": {"name": "b"}}]}}]


def test_assemble_text_stream_and_usage_last_wins():
    out = assemble_stream([
        {"object": "text_completion", "id": "x", "choices": [{"index": 1, "text": "b"}, {"index": 0, "text": "a"}],
         "usage": {"completion_tokens": 1}},
        {"object": "text_completion", "id": "y", "created": None,
         "choices": [{"index": 0, "text": "c", "finish_reason": None}, {"index": 1, "text": None}],
         "usage": {"completion_tokens": 2}},
        {"choices": [{"index": 0, "finish_reason": "length"}], "usage": "not an object"},
    ])
    assert out == {"id": "x", "usage": {"completion_tokens": 2}, "object": "text_completion", "stream_chunks": 3,
                   "choices": [{"index": 0, "text": "ac", "finish_reason": "length"}, {"index": 1, "text": "b"}]}


def test_an_error_event_ends_every_choice():
    out = assemble_stream([{"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "a"}},
                                                                        {"index": 2, "delta": {}}]},
                           {"error": {"message": "overloaded", "code": 503}}])
    assert out["error"] == "overloaded" and out["object"] == "chat.completion"
    assert [c["finish_reason"] for c in out["choices"]] == ["error", "error"]
    assert assemble_stream([{"error": {"code": 1}}]) == {
        "error": {"code": 1}, "object": "text_completion", "stream_chunks": 1,
        "choices": [{"index": 0, "finish_reason": "error"}]}
    assert assemble_stream([{"error": "bad"}])["error"] == "bad"
    # an "error" key beside choices is not an error event
    assert "error" not in assemble_stream([{"error": "x", "choices": [{"index": 0, "text": "t"}]}])
    d = CODEC.decode(assemble_stream([{"error": {"message": "boom"}}]), "response")
    assert d.meta["error"] == "boom" and d.table["finish_reason"] == ["error"] and d.table["completion"] == [""]


@pytest.mark.parametrize("events, reason, expected", [
    ([5], "a stream event is a number", RESP),
    ([{"id": "x"}], "a stream chunk has no 'choices' list", RESP),
    ([{"choices": {"index": 0}}], "a stream chunk has no 'choices' list", RESP),
    ([{"choices": ["x"]}], "a streamed choice is a string", None),
    ([{"choices": [{"index": "0"}]}], "a streamed choice's index is a string", None),
])
def test_assemble_stream_errors(events, reason, expected):
    assert err(assemble_stream, events) == ("openai", reason, expected)


# --- requests -------------------------------------------------------------------------------------

def test_chat_request_with_content_parts_tool_calls_and_sampling():
    body = {"model": "m", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "be brief"}, {"type": "image_url", "image_url": {}},
                                       "raw", {"x": 1}, 3]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
            {"function": {"name": "g"}}, {"function": {"arguments": "1"}}, {"function": "x"}, "y"]},
        {"role": "assistant", "content": "ok", "tool_calls": [{"function": {"name": "h", "arguments": None}}]},
        {"role": "user", "content": {"k": [1]}},
        {"role": "user", "content": 5}],
        "max_tokens": 7, "temperature": 0.5, "top_p": "x", "n": True, "stream": True, "max_completion_tokens": 2.5}
    prompt = ("system: be brief\n[image_url]\nraw\nassistant: f({\"a\":1})\ng()\n(1)\nassistant: ok\nh()\n"
              "user: {\"k\":[1]}\nuser: 5")
    assert CODEC.decode(body, "request") == Decoded("openai", {
        "prompt": [prompt], "n_messages": [5], "prompt_chars": [len(prompt)], "max_tokens": [7],
        "max_completion_tokens": [2.5], "temperature": [0.5], "stream": [True]}, {"model_name": "m", "kind": "chat"})


@pytest.mark.parametrize("prompt, prompts", [
    ("2+2=", ["2+2="]), (["a", "bc"], ["a", "bc"]), ([1, 2], ["[1,2]"]), ([[1, 2], [3]], ["[1,2]", "[3]"]),
    (["a", [1]], ["a", "[1]"])])
def test_completion_requests(prompt, prompts):
    body = {"model": 7, "prompt": prompt, "n": 2, "stream": False, "temperature": None}
    assert CODEC.decode(body, "request") == Decoded("openai", {
        "prompt": prompts, "n_messages": [1] * len(prompts), "prompt_chars": [len(p) for p in prompts],
        "n": [2] * len(prompts), "stream": [False] * len(prompts)}, {"kind": "completion"})


@pytest.mark.parametrize("body, reason, expected", [
    ([1], "request is a list of 1", REQ),
    ({"model": "m"}, "request has neither 'messages' (role objects) nor 'prompt'", REQ),
    ({"model": "m", "prompt": []}, "request has neither 'messages' (role objects) nor 'prompt'", REQ),
    ({"model": "m", "messages": [{"content": "x"}]}, "request has neither 'messages' (role objects) nor 'prompt'", REQ),
])
def test_request_errors(body, reason, expected):
    assert err(CODEC.decode, body, "request") == ("openai", reason, expected)


@pytest.mark.parametrize("body, part, yes", [
    ({"messages": [{"role": "user", "content": "x"}]}, "request", True),
    ({"messages": []}, "request", True),
    ({"messages": [{"role": 1}]}, "request", False),
    ({"messages": [{"role": "user"}, "x"]}, "request", False),
    ({"messages": "x"}, "request", False),
    ({"model": "m", "prompt": "x"}, "request", True),
    ({"model": "m", "prompt": [1, "a", [2]]}, "request", True),
    ({"prompt": "x"}, "request", False),
    ({"model": "m", "prompt": []}, "request", False),
    ({"model": "m", "prompt": [True]}, "request", False),
    ({"model": "m", "prompt": [1.5]}, "request", False),
    ({"model": "m", "prompt": 3}, "request", False),
    ([{"model": "m", "prompt": "x"}], "request", False),
    ({"object": "chat.completion", "choices": []}, "response", True),
    ({"object": "text_completion", "choices": []}, "response", True),
    ({"object": "chat.completion.chunk", "choices": []}, "response", True),
    ({"object": "chat.completion", "choices": {}}, "response", False),
    ({"object": "other", "choices": []}, "response", False),
    ({"id": "x", "choices": [], "usage": None}, "response", True),
    ({"id": "x", "choices": []}, "response", False),
    ({"id": 1, "choices": [], "usage": {}}, "response", False),
    ({"id": "x", "choices": {}, "usage": {}}, "response", False),
    ([{"object": "chat.completion.chunk", "choices": []}, {"x": 1}], "response", True),
    ([{"object": "chat.completion.chunk", "choices": []}, 1], "response", False),
    ([{"object": "x", "choices": []}], "response", False),
    ([{"object": "text_completion", "choices": 1}], "response", False),
    ([], "response", False),
    ("x", "response", False),
])
def test_matches(body, part, yes):
    assert CODEC.matches(body, part) is yes


# --- responses ------------------------------------------------------------------------------------

def test_chat_completion_response_built_by_the_openai_types():
    body = ChatCompletion.model_validate({
        "id": "r1", "object": "chat.completion", "created": 1, "model": "m", "system_fingerprint": "fp",
        "choices": [
            {"index": 1, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}},
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}).model_dump(mode="json")
    assert CODEC.decode(body, "response") == Decoded("openai", {
        "completion": ["hi", "f({})"], "finish_reason": ["stop", "tool_calls"], "prompt_tokens": [5, 5],
        "completion_tokens": [2, 2], "total_tokens": [7, 7], "completion_chars": [2, 5]},
        {"id": "r1", "model_name": "m", "system_fingerprint": "fp", "kind": "chat"})


def test_text_completion_response_built_by_the_openai_types():
    body = Completion.model_validate({
        "id": "r2", "object": "text_completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "text": "4", "finish_reason": "length", "logprobs": None}]}).model_dump(mode="json")
    d = CODEC.decode(body, "response")
    assert d.table == {"completion": ["4"], "finish_reason": ["length"], "prompt_tokens": [None],
                       "completion_tokens": [None], "total_tokens": [None], "completion_chars": [1]}
    assert d.meta == {"id": "r2", "model_name": "m", "kind": "completion"}


def test_response_odd_values():
    body = {"id": "x", "usage": {"prompt_tokens": True, "completion_tokens": 2.0, "total_tokens": 3},
            "choices": [{"index": "b", "text": 5, "finish_reason": 1}, {"index": -1, "text": "t", "finish_reason": "stop"},
                        {"index": 0, "message": "not an object", "text": "u"}]}
    d = CODEC.decode(body, "response")
    assert d.table == {"completion": ["t", "", "u"], "finish_reason": ["stop", None, None],
                       "prompt_tokens": [None] * 3, "completion_tokens": [None] * 3, "total_tokens": [3] * 3,
                       "completion_chars": [1, 0, 1]}
    assert d.meta == {"id": "x", "kind": "chat"}  # a choice with a "message" (of any type) makes it a chat
    assert CODEC.decode({"id": "x", "choices": [{"text": "a"}]}, "response").meta == {"id": "x", "kind": "completion"}
    # a chat object without messages is still a chat
    assert CODEC.decode({"object": "chat.completion", "choices": []}, "response").meta == {"kind": "chat"}
    assert CODEC.decode({"choices": [{"message": {"content": "a"}}]}, "response").meta == {"kind": "chat"}
    assert CODEC.decode({"choices": [{"message": {"content": "a"}}]}, "response").table["completion"] == ["a"]


def test_a_single_chunk_and_a_list_of_chunks_are_streams():
    one = {"object": "chat.completion.chunk", "id": "c", "choices": [{"index": 0, "delta": {"content": "x"}}]}
    d = CODEC.decode(one, "response")
    assert d.table["completion"] == ["x"] and d.meta == {"id": "c", "kind": "chat"}
    d = CODEC.decode([one, one], "response")
    assert d.table["completion"] == ["xx"] and d.meta == {"stream": True, "stream_chunks": 2, "id": "c", "kind": "chat"}


@pytest.mark.parametrize("body, reason, expected", [
    ("x", "response is a string", RESP),
    ({"object": "error", "message": "m" * 600}, "error response: " + "m" * 500, None),
    ({"object": "error"}, "error response: None", None),
    ({"id": "x"}, "response has no 'choices' list of objects", RESP),
    ({"choices": [1]}, "response has no 'choices' list of objects", RESP),
])
def test_response_errors(body, reason, expected):
    assert err(CODEC.decode, body, "response") == ("openai", reason, expected)


# --- encoding -------------------------------------------------------------------------------------

def test_encode():
    assert CODEC.encode({"prompt": ["a", "b"]}, "request") == {"model": "model", "prompt": ["a", "b"]}
    assert CODEC.encode({"prompt": ["a"]}, "request", model="m", chat=True) == {
        "model": "m", "messages": [{"role": "user", "content": "a"}]}
    assert CODEC.encode({"completion": ["x", "y"]}, "response", model="m") == {
        "id": "enc", "object": "chat.completion", "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": None},
            {"index": 1, "message": {"role": "assistant", "content": "y"}, "finish_reason": None}]}
    assert CODEC.encode({"completion": ["x"], "finish_reason": ["stop"]}, "response", chat=False) == {
        "id": "enc", "object": "text_completion", "model": "model",
        "choices": [{"index": 0, "text": "x", "finish_reason": "stop"}]}
    assert err(CODEC.encode, {"x": [1]}, "request") == ("openai", "cannot encode a request without a 'prompt' column",
                                                        None)
    assert err(CODEC.encode, {"prompt": ["a", "b"]}, "request", chat=True) == (
        "openai", "a chat request holds one prompt", None)
    assert err(CODEC.encode, {"x": [1]}, "response") == (
        "openai", "cannot encode a response without a 'completion' column", None)


# --- exchanges ------------------------------------------------------------------------------------

def test_exchange_fields_of_a_stream_recognised_by_its_body():
    resp = b"\r\n\n" + sse({"object": "chat.completion.chunk", "model": "served",
                        "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]})
    f = exchange_fields(b'{"messages": [{"role": "user", "content": "x"}]}', resp, latency_ms=1.23456,
                        ttft_ms=0.5)
    assert f["model"] == "served" and f["latency_ms"] == 1.23456 and f["request"].startswith(b"{")
    assert f["outputs"]["latency_ms"] == [1.235] and f["outputs"]["ttft_ms"] == [0.5]
    assert f["meta"] == {"stream": "True", "stream_chunks": "1", "ttft_ms": "0.5"}
    assert f["inputs"]["prompt"] == ["user: x"] and f["outputs"]["completion"] == ["hi"]
    # the same body as text, and recognised by its content type instead
    g = exchange_fields('{"model": "m", "prompt": "x"}', resp.decode().strip(), response_content_type="text/event-stream")
    assert g["model"] == "m" and g["meta"] == {"stream": "True", "stream_chunks": "1"} and "latency_ms" not in g


def test_exchange_fields_plain_and_errors():
    f = exchange_fields({"prompt": "x", "model": 3}, {"id": "x", "choices": [{"text": "y"}], "usage": None})
    assert f == {"protocol": "openai", "inputs": {"prompt": ["x"], "n_messages": [1], "prompt_chars": [1]},
                 "outputs": {"completion": ["y"], "finish_reason": [None], "prompt_tokens": [None],
                             "completion_tokens": [None], "total_tokens": [None], "completion_chars": [1]},
                 "request": {"prompt": "x", "model": 3},
                 "response": {"id": "x", "choices": [{"text": "y"}], "usage": None}}
    f = exchange_fields(b'{"prompt": "x", "model": "m"}', b'{"choices": [], "object": "text_completion"}',
                        latency_ms=2, ttft_ms=None)
    assert f["outputs"]["latency_ms"] == [] and f["latency_ms"] == 2.0 and "meta" not in f
    p, reason, expected = err(exchange_fields, b"{", b"{}")
    assert (p, expected) == ("openai", None) and reason.startswith("request is not JSON: ")
    p, reason, expected = err(exchange_fields, b'{"prompt": "x", "model": "m"}', "nope")
    assert (p, expected) == ("openai", None) and reason.startswith("response is not JSON: ")
    e = err(exchange_fields, b'{"prompt": "x", "model": "m"}', b'{"object": "error", "message": "m"}')
    assert e == ("openai", "error response: m", None)


def test_tool_calls_arriving_out_of_order_keep_their_indices():
    out = assemble_stream([{"choices": [{"delta": {"tool_calls": [{"index": 2, "function": {"name": "c"}}]}}]},
                           {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "a"}},
                                                                  {"index": 1, "function": {"name": "b"}}]}}]}])
    calls = out["choices"][0]["message"]["tool_calls"]
    assert [c["function"] for c in calls] == [{"name": "a"}, {"name": "b"}, {"name": "c"}]
    assert CODEC.decode(out, "response").table["completion"] == ["a()\nb()\nc()"]


def test_media_type_parameters_and_undecodable_bytes():
    assert is_event_stream("text/event-stream;charset=utf-8;x=y")
    # bytes that are not UTF-8 are replaced (U+FFFD), not an exception
    assert parse_sse(b'data: "\xff"\n\n') == ["\ufffd"]
    # CRLF line ends inside a multi-line event: one event, not two
    assert parse_sse(b'data: [1,\r\ndata: 2]\r\n\r\n') == [[1, 2]]


def test_events_after_an_error_still_count():
    out = assemble_stream([{"error": "x"}, {"choices": [{"index": 0, "text": "a"}]}])
    assert out["choices"] == [{"index": 0, "finish_reason": "error", "text": "a"}]
    assert out["error"] == "x" and out["stream_chunks"] == 2


def test_a_chunk_object_makes_a_chat_even_without_deltas():
    assert assemble_stream([{"object": "chat.completion.chunk", "choices": []}])["object"] == "chat.completion"
    out = assemble_stream([{"object": "chat.completion.chunk", "choices": []},
                           {"choices": [{"index": 0, "text": "a"}]}])
    assert out["object"] == "chat.completion"
    assert assemble_stream([])["object"] == "text_completion"


def test_a_message_with_text_and_tool_calls():
    body = {"object": "chat.completion", "choices": [{"index": 0, "message": {
        "content": "hi", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}}]}
    assert CODEC.decode(body, "response").table["completion"] == ["hi\nf({})"]


def test_exchange_fields_stream_by_content_type_text_body_and_errors():
    resp = ': keep-alive\n\n' + sse({"object": "text_completion", "choices": [{"index": 0, "text": "a"}]}).decode()
    f = exchange_fields(b'{"model": "m", "prompt": "x"}', resp.encode(), response_content_type="text/event-stream",
                        ttft_ms=1.23456)
    assert f["outputs"]["completion"] == ["a"] and f["outputs"]["ttft_ms"] == [1.235]
    assert f["meta"] == {"stream": "True", "stream_chunks": "1", "ttft_ms": "1.235"}
    # a text body starting with "data:" is a stream without a content type
    g = exchange_fields('{"model": "m", "prompt": "x"}', sse({"choices": [{"index": 0, "text": "b"}]}).decode())
    assert g["outputs"]["completion"] == ["b"]
    h = exchange_fields(b'{"model": "m", "prompt": "x"}', sse({"error": {"message": "boom"}}))
    assert h["meta"] == {"stream": "True", "stream_chunks": "1", "error": "boom"}
    assert h["outputs"]["finish_reason"] == ["error"]

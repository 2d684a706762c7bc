"""The LLM codec against the real ``openai`` client calling a streaming OpenAI-compatible stand-in.

Oracles: what the ``openai`` client itself assembled from the stream (its typed chunks), and the
exact bytes the stand-in read and wrote; the codec sees only those bytes.
"""

from __future__ import annotations

import openai
import orjson
import pytest

from inferwatch.codecs import decode, detect_protocol
from inferwatch.codecs.llm import CODEC, assemble_stream, exchange_fields, parse_sse
from inferwatch.errors import DecodeError
from inferwatch.record import InferenceRecord
from tests.llm_standin import StandIn

PROMPT = "zebra quartz harbour lantern violet"


@pytest.fixture(scope="module")
def standin():
    s = StandIn()
    with s.serve() as url:
        s.client = openai.OpenAI(base_url=url + "/v1", api_key="not-needed", max_retries=0)  # type: ignore[attr-defined]
        yield s


def _last(s: StandIn):
    ex = s.exchanges[-1]
    return ex, exchange_fields(ex.request, ex.response, response_content_type=ex.content_type,
                               latency_ms=20.0, ttft_ms=5.0)


def test_streamed_chat_with_usage_is_one_record_equal_to_what_the_client_assembled(standin):
    stream = standin.client.chat.completions.create(
        model="standin", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": PROMPT}],
        stream=True, stream_options={"include_usage": True}, temperature=0.2)
    text, reason, usage, n_chunks = "", None, None, 0
    for chunk in stream:
        n_chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            reason = c.finish_reason or reason
    ex, f = _last(standin)
    assert ex.content_type == "text/event-stream" and f["response"] == ex.response  # raw kept verbatim
    out, inp = f["outputs"], f["inputs"]
    assert out["completion"] == [text] and text  # the client's own assembly
    assert out["finish_reason"] == [reason]
    assert (out["prompt_tokens"], out["completion_tokens"], out["total_tokens"]) == (
        [usage.prompt_tokens], [usage.completion_tokens], [usage.total_tokens])
    assert out["completion_chars"] == [len(text)]
    assert out["latency_ms"] == [20.0] and out["ttft_ms"] == [5.0]
    assert inp["prompt"] == [f"system: be brief\nuser: {PROMPT}"] and inp["n_messages"] == [2]
    assert inp["temperature"] == [0.2] and inp["stream"] == [True]
    assert f["meta"]["stream"] == "True" and int(f["meta"]["stream_chunks"]) == n_chunks
    assert f["model"] == "standin" and f["protocol"] == "openai"


def test_streamed_chat_without_usage_reports_no_token_counts(standin):
    for _ in standin.client.chat.completions.create(
            model="standin", messages=[{"role": "user", "content": PROMPT}], stream=True, max_tokens=2):
        pass
    _, f = _last(standin)
    assert f["outputs"]["completion_tokens"] == [None]  # never estimated
    assert f["outputs"]["finish_reason"] == ["length"]
    assert f["outputs"]["completion"] == [" ".join(PROMPT.split()[::-1][:2])]


def test_streamed_tool_call_arguments_are_joined(standin):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    args, name = "", None
    for chunk in standin.client.chat.completions.create(
            model="standin", messages=[{"role": "user", "content": "a b"}], tools=tools, stream=True):
        for c in chunk.choices:
            for tc in c.delta.tool_calls or ():
                name = tc.function.name or name
                args += tc.function.arguments or ""
    _, f = _last(standin)
    assert f["outputs"]["completion"] == [f"{name}({args})"]
    assert f["outputs"]["finish_reason"] == ["tool_calls"]
    assert orjson.loads(args) == {"q": "b a"}


def test_plain_chat_and_text_completions_stream_or_not(standin):
    resp = standin.client.chat.completions.create(model="standin", messages=[{"role": "user", "content": PROMPT}])
    ex, f = _last(standin)
    assert detect_protocol(ex.request, "request") == "openai" and detect_protocol(ex.response, "response") == "openai"
    assert f["outputs"]["completion"] == [resp.choices[0].message.content]
    assert f["outputs"]["completion_tokens"] == [resp.usage.completion_tokens]

    comp = standin.client.completions.create(model="standin", prompt=PROMPT, max_tokens=3)
    _, f = _last(standin)
    assert f["outputs"]["completion"] == [comp.choices[0].text] and f["outputs"]["finish_reason"] == ["length"]
    assert f["inputs"]["prompt"] == [PROMPT] and f["inputs"]["max_tokens"] == [3]

    text = ""
    for chunk in standin.client.completions.create(model="standin", prompt=PROMPT, stream=True):
        text += chunk.choices[0].text
    _, f = _last(standin)
    assert f["outputs"]["completion"] == [text] and f["outputs"]["finish_reason"] == ["stop"]


def test_an_error_answer_is_a_decode_error_not_a_completion(standin):
    with pytest.raises(openai.NotFoundError):
        standin.client.chat.completions.create(model="missing", messages=[{"role": "user", "content": "x"}])
    ex = standin.exchanges[-1]
    with pytest.raises(DecodeError, match="error response"):
        decode(ex.response, part="response", protocol="openai")
    with pytest.raises(DecodeError, match="error response"):
        decode(b'{"error": {"message": "bad key", "type": "invalid_request_error"}}', part="response")


def test_the_full_text_is_searchable_in_the_audit_store(standin, tmp_path):
    from inferwatch.audit import SearchQuery
    from sinks.sqlite_audit import SQLiteAuditStore

    for _ in standin.client.chat.completions.create(
            model="standin", messages=[{"role": "user", "content": "unusualword " + PROMPT}], stream=True):
        pass
    ex, f = _last(standin)
    rec = InferenceRecord(id="llm-1", model=f["model"], protocol="openai", inputs=f["inputs"], outputs=f["outputs"],
                          request=ex.request.decode(), response=ex.response.decode(), latency_ms=f["latency_ms"])
    store = SQLiteAuditStore(tmp_path / "audit.db")
    store.write_records([rec])
    hits = store.search(SearchQuery(text="unusualword"))
    assert [h["record_id"] for h in hits] == ["llm-1"]
    assert hits[0]["output"]["completion"].startswith("violet lantern")


def test_sse_framing_and_stream_errors():
    assert parse_sse(b"data: {\"a\":1}\r\rdata: [DONE]\r\r") == [{"a": 1}]
    with pytest.raises(DecodeError, match="not JSON"):
        parse_sse(b"data: {oops\n\n")
    done = assemble_stream(b'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
                           b'data: {"error":{"message":"engine died"}}\n\n')
    assert done["choices"][0]["finish_reason"] == "error" and done["error"] == "engine died"
    d = decode(orjson.dumps(parse_sse(b'data: {"object":"text_completion","id":"1","choices":[{"index":1,"text":"y"},'
                                      b'{"index":0,"text":"x"}]}\n\n')), part="response")
    assert d.protocol == "openai" and d.table["completion"] == ["x", "y"]


def test_detectors_run_on_the_features_of_llm_exchanges():
    """Completion length, latency and finish reason decoded from exchanges are what a drift test sees:
    a model that starts rambling (longer completions cut at max_tokens, slower) is flagged; the same
    traffic again is not."""
    import numpy as np

    from detectors.drift.chisquare import ChiSquareDrift
    from detectors.drift.ks import KSDrift
    from inferwatch.table import concat

    rng = np.random.default_rng(7)

    def exchanges(n: int, mean_tokens: float, ms_per_token: float, cap: int) -> dict:
        tables = []
        for _ in range(n):
            k = int(rng.poisson(mean_tokens))
            reason = "length" if k >= cap else "stop"
            k = min(k, cap)
            resp = {"id": "x", "object": "chat.completion", "model": "m",
                    "usage": {"prompt_tokens": 12, "completion_tokens": k, "total_tokens": 12 + k},
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "w " * k},
                                 "finish_reason": reason}]}
            f = exchange_fields({"model": "m", "messages": [{"role": "user", "content": "q"}]}, resp,
                                latency_ms=k * ms_per_token + float(rng.gamma(2.0, 5.0)), ttft_ms=20.0)
            tables.append(f["outputs"])
        return concat(tables)

    reference = exchanges(400, 40, 8.0, 120)
    same = exchanges(200, 40, 8.0, 120)
    rambling = exchanges(200, 110, 11.0, 120)
    numeric = ["completion_tokens", "latency_ms"]
    ks = KSDrift(p_val=0.01, features=numeric).fit(reference)
    assert ks.update(same).result().is_drift is False
    drifted = KSDrift(p_val=0.01, features=numeric).fit(reference).update(rambling).result()
    assert drifted.is_drift and set(drifted.drifted_features) == set(numeric)
    chi = ChiSquareDrift(p_val=0.01, features=["finish_reason"]).fit(reference)
    assert chi.update(rambling).result().is_drift is True


def _client_reading(body: bytes, content_type: str) -> openai.OpenAI:
    """The real ``openai`` client, answered ``body`` by an in-process transport (no server)."""
    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": content_type})

    return openai.OpenAI(base_url="http://llm.invalid/v1", api_key="x", max_retries=0,
                         http_client=httpx.Client(transport=httpx.MockTransport(answer)))


def _chunk(delta: dict, reason: str | None = None) -> bytes:
    return b"data: " + orjson.dumps({"id": "c9", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                     "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}) + b"\n\n"


def test_streamed_tool_calls_keep_only_the_indices_that_appeared():
    """Tool calls streamed at indices 1 and 3 (none at 0 or 2), arguments in pieces: two calls, in
    index order, as the openai client's own parsed chunks say; no empty ``()`` call is invented."""
    def call(i, **fields):
        return _chunk({"tool_calls": [{"index": i, **fields}]})

    sse = (_chunk({"role": "assistant", "content": None})
           + call(3, id="call_b", type="function", function={"name": "second", "arguments": ""})
           + call(1, id="call_a", type="function", function={"name": "first", "arguments": '{"q": '})
           + call(3, function={"arguments": '{"n": 2}'}) + call(1, function={"arguments": '"x"}'})
           + _chunk({}, "tool_calls") + b"data: [DONE]\n\n")
    client = _client_reading(sse, "text/event-stream")
    seen: dict[int, list[str]] = {}
    for chunk in client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}], stream=True):
        for c in chunk.choices:
            for tc in c.delta.tool_calls or ():
                name, args = seen.setdefault(tc.index, ["", ""])
                seen[tc.index] = [name + (tc.function.name or ""), args + (tc.function.arguments or "")]
    assert sorted(seen) == [1, 3]
    expected = "\n".join(f"{name}({args})" for _, (name, args) in sorted(seen.items()))
    d = CODEC.decode(assemble_stream(sse), "response")
    assert d.table["completion"] == [expected] == ['first({"q": "x"})\nsecond({"n": 2})']
    calls = assemble_stream(sse)["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"]) for c in calls] == [("call_a", "first"), ("call_b", "second")]
    with pytest.raises(DecodeError, match="tool call's index"):
        assemble_stream(_chunk({"tool_calls": [{"index": "1", "function": {"name": "f"}}]}))


def test_encode_keeps_every_completion_when_finish_reasons_are_fewer():
    """Three completions, one finish reason: three choices (the missing reasons None), as the openai
    client reads the encoded body back; and decoding it gives the table padded the same way."""
    table = {"completion": ["a", "bb", "ccc"], "finish_reason": ["stop"]}
    for chat in (True, False):
        body = orjson.dumps(CODEC.encode(table, "response", chat=chat))
        client = _client_reading(body, "application/json")
        if chat:
            got = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
            texts = [c.message.content for c in got.choices]
        else:
            got = client.completions.create(model="m", prompt="q")
            texts = [c.text for c in got.choices]
        assert texts == table["completion"] and [c.finish_reason for c in got.choices] == ["stop", None, None]
        assert decode(body, part="response").table["finish_reason"] == ["stop", None, None]
    assert [c["finish_reason"] for c in CODEC.encode({"completion": ["a", "b"]}, "response")["choices"]] == [None, None]
    with pytest.raises(DecodeError, match="2 finish reasons for 1 completions"):
        CODEC.encode({"completion": ["a"], "finish_reason": ["stop", "length"]}, "response")

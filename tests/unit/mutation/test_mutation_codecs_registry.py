"""The codec registry and the codecs' entry points (inferwatch/codecs/registry.py, __init__.py):
the cases `make mutation` showed no test held — error responses of each protocol as its servers
send them, names and aliases, detection order, the errors' protocol and ``expected`` as an
operator reads them. Expected values follow from the registry's documented rules, by hand."""

from __future__ import annotations

import pytest

from inferwatch.codecs import decode, detect_protocol, encode
from inferwatch.codecs.base import Decoded
from inferwatch.codecs.registry import REGISTRY, Registry, builtin_codecs, check_part, error_message
from inferwatch.errors import DecodeError


def err(fn, *args, **kw):
    with pytest.raises(DecodeError) as info:
        fn(*args, **kw)
    return info.value.protocol, info.value.reason, info.value.expected


@pytest.mark.parametrize("obj, text", [
    ({"error": "model not ready"}, "model not ready"),
    ({"error": {"code": 3}}, "{'code': 3}"),
    ({"error": "e" * 600, "code": 500}, "e" * 500),
    ({"error_code": "BAD", "message": "m" * 600, "stack_trace": "x"}, "BAD: " + "m" * 500),
    ({"error_code": "BAD", "message": None}, "BAD: None"),
    ({"status": {"status": "FAILURE", "code": 500, "info": "boom"}}, "500 boom"),
    ({"status": {"status": "FAILURE", "code": 400, "reason": "r" * 600}}, "400 " + "r" * 500),
    ({"status": {"status": "FAILURE", "info": "", "reason": "why"}, "meta": {}}, "None why"),
])
def test_error_message_of_each_protocol(obj, text):
    assert error_message(obj) == text


@pytest.mark.parametrize("obj", [
    None, [{"error": "x"}], {"error": 5}, {"error": None}, {"error": "x", "outputs": []},
    {"error_code": 5, "message": "m"}, {"error_code": "BAD"}, {"error_code": "BAD", "message": "m", "data": 1},
    {"status": {"status": "SUCCESS"}}, {"id": "x", "model_name": "m"}])
def test_not_error_messages(obj):
    assert error_message(obj) is None


def test_check_part():
    assert check_part("request") == "request" and check_part("response") == "response"
    assert err(check_part, "Request") == (None, "part is 'Request'", "'request' or 'response'")
    assert err(check_part, None) == (None, "part is None", "'request' or 'response'")


def test_builtin_names_aliases_and_order():
    assert REGISTRY.names() == ("oip-v2", "seldon-v1", "mlflow", "kserve-v1", "openai", "json")
    for alias, name in [("OIP", "oip-v2"), (" v2 ", "oip-v2"), ("kserve-v2", "oip-v2"), ("open-inference", "oip-v2"),
                        ("mlserver", "oip-v2"), ("triton", "oip-v2"), ("seldon", "seldon-v1"),
                        ("seldon-core", "seldon-v1"), ("KServe", "kserve-v1"), ("v1", "kserve-v1"),
                        ("tfserving", "kserve-v1"), ("tf-serving", "kserve-v1"), ("records", "json"), ("llm", "openai"),
                        ("vllm", "openai"), ("tgi", "openai"), ("openai-chat", "openai"),
                        ("openai-completions", "openai"), ("MLflow", "mlflow")]:
        assert REGISTRY.canonical(alias) == name
        assert REGISTRY.get(alias).name == name
    assert err(REGISTRY.canonical, "csv") == (None, "unknown protocol 'csv'",
                                              "one of oip-v2, seldon-v1, mlflow, kserve-v1, openai, json")
    assert [c.name for c in builtin_codecs()] == ["oip-v2", "seldon-v1", "mlflow", "kserve-v1", "json"]


class Lines:
    name, aliases, expected = "Lines", ("LN", "ln2"), {"request": "R", "response": "S"}

    def matches(self, obj, part):
        return isinstance(obj, dict) and "lines" in obj

    def decode(self, obj, part):
        return Decoded("Lines", {"line": obj["lines"]})

    def encode(self, table, part, **options):
        return {"lines": table["line"]}


def test_register_unregister_and_fallback_last():
    reg = Registry(fallback="json")
    assert reg.fallback == "json" and reg.names() == ()
    for c in builtin_codecs():
        assert reg.register(c) is c
    lines = Lines()
    assert reg.register(lines) is lines
    assert reg.names() == ("oip-v2", "seldon-v1", "mlflow", "kserve-v1", "lines", "json")
    assert reg.canonical("ln") == "lines" and reg.canonical("LN2") == "lines" and reg.get("Lines") is lines
    assert reg.detect({"lines": []}, "request") == "lines"
    assert reg.expected("response") == "one of: " + "; ".join(
        f"{c.name.lower()} {c.expected['response']}" for c in (*builtin_codecs()[:4], lines, builtin_codecs()[4]))
    with pytest.raises(ValueError, match=r"^codec 'Lines': lines, ln, ln2 already registered$"):
        reg.register(Lines())
    with pytest.raises(ValueError, match=r"^codec 'json': json, records already registered$"):
        reg.register(builtin_codecs()[4])
    other = Lines()
    assert reg.register(other, replace=True) is other and reg.get("ln") is other
    assert reg.unregister("LN") is other
    assert reg.names() == ("oip-v2", "seldon-v1", "mlflow", "kserve-v1", "json")
    assert err(reg.canonical, "ln")[1] == "unknown protocol 'ln'"
    assert reg.canonical("seldon") == "seldon-v1"  # other codecs' aliases stay
    # a registry without its fallback registered, or without one
    bare = Registry()
    assert bare.fallback is None
    bare.register(Lines())
    assert bare.names() == ("lines",)
    no_json = Registry(fallback="json")
    no_json.register(Lines())
    assert no_json.names() == ("lines",)


@pytest.mark.parametrize("codec, message", [
    (object(), "is not a Codec"),
    (type("NoName", (Lines,), {"name": ""})(), "is not a Codec"),
    (type("IntName", (Lines,), {"name": 5})(), "is not a Codec"),
    (type("HalfExpected", (Lines,), {"expected": {"request": "R"}})(), "expected must describe 'request' and 'response'"),
])
def test_register_refuses_what_is_not_a_codec(codec, message):
    with pytest.raises(TypeError, match=message):
        Registry().register(codec)


def test_detect_errors():
    assert err(REGISTRY.detect, {"error": "down"}, "response") == (None, "error response: down", None)
    p, reason, expected = err(REGISTRY.detect, 42, "request")
    assert (p, reason) == (None, "no protocol matches this request (a number)")
    assert expected == REGISTRY.expected("request") and expected.startswith("one of: oip-v2 ")
    assert "; openai " in expected and expected.split("; ")[-1].startswith("json ")


def test_decode_entry_point():
    # a forced protocol still refuses error responses, naming itself; the fallback reads them as data
    assert err(decode, {"error": "down"}, part="response", protocol="kserve") == ("kserve-v1", "error response: down",
                                                                                 None)
    assert decode({"error": "down"}, part="response", protocol="json").table == {"error": ["down"]}
    assert decode(b'{"a": 1}', part="request", protocol="").protocol == "json"
    assert decode(b'{"a": 1}', part="request", protocol="auto").protocol == "json"
    # a codec error without "expected" gets the codec's
    p, reason, expected = err(decode, {"dataframe_split": {"data": [[1], [1, 2]]}}, part="request")
    assert (p, reason) == ("mlflow", "dataframe_split.data rows have different lengths")
    assert expected == REGISTRY.get("mlflow").expected["request"]
    # one with its own "expected" keeps it
    assert err(decode, {"dataframe_split": [1]}, part="request", protocol="mlflow")[2] == '{"columns", "data"}'
    assert err(decode, {}, part="requests")[1] == "part is 'requests'"
    d = decode({"binData": "aGk="}, part="request")
    assert d.meta["encodings"] == {"binData": "utf-8"}
    assert "encodings" not in decode({"strData": "x"}, part="request").meta


def test_a_codec_bug_is_a_decode_error_naming_it(monkeypatch):
    def broken(obj, part):
        raise KeyError("k")
    monkeypatch.setattr(REGISTRY.get("kserve-v1"), "decode", broken)
    assert err(decode, {"instances": [1]}, part="request") == ("kserve-v1", "unexpected payload structure: KeyError: 'k'",
                                                               None)


def test_encode_entry_point():
    assert encode({"a": [1]}, "KServe", "response") == b'{"predictions":[{"a":1}]}'
    p, reason, expected = err(encode, {"a": [1]}, "kserve-v1", "request", colour="red")
    assert (p, expected) == ("kserve-v1", None) and reason.startswith("cannot encode: ")
    assert reason.endswith("got an unexpected keyword argument 'colour'")
    assert err(encode, {"a": [1]}, "kserve-v1", "both")[1] == "part is 'both'"


def test_detect_protocol_entry_point():
    assert detect_protocol(b'{"predictions": [1]}', "response") == "kserve-v1"
    assert detect_protocol('{"model": "m", "prompt": "x"}', "request") == "openai"
    assert detect_protocol(bytearray(b'{"a": 1}'), "request") == "json"
    assert err(detect_protocol, {}, "x")[1] == "part is 'x'"

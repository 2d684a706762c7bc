"""The codec contract, run over every registered codec, and the recipe for a new protocol:
one class plus one ``REGISTRY.register`` call is all ``decode``/``encode``/detection need."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from inferwatch.codecs import REGISTRY, Codec, Decoded, decode, detect_protocol, encode
from inferwatch.errors import DecodeError

TABLE = {"a": [1, 2, 3], "b": [0.5, 1.5, -2.0], "c": ["x", "y", "z"], "d": [True, False, True]}
GARBAGE: list[Any] = [42, "text", None, [1, [2]], {"nothing": "known"}, [{"a": 1}, 2]]


def _tabular(name: str) -> bool:
    """Whether a codec carries any table (``tabular = False`` declares a protocol with fixed
    columns, such as LLM chat: those round-trip their own tables, below)."""
    return getattr(REGISTRY.get(name), "tabular", True) is not False


TABULAR = [n for n in REGISTRY.names() if _tabular(n)]
NON_TABULAR = [n for n in REGISTRY.names() if not _tabular(n)]


@pytest.fixture(params=REGISTRY.names())
def codec(request) -> Codec:
    return REGISTRY.get(request.param)


@pytest.fixture(params=TABULAR)
def tabular(request) -> Codec:
    return REGISTRY.get(request.param)


#: a table each non-tabular codec must carry through its own encoding
OWN_TABLES: dict[str, dict[str, Any]] = {
    "openai": {"request": {"prompt": ["user: hello"], "n_messages": [1], "prompt_chars": [11]},
               "response": {"completion": ["hi", "yo"], "finish_reason": ["stop", "length"],
                            "prompt_tokens": [None, None], "completion_tokens": [None, None],
                            "total_tokens": [None, None], "completion_chars": [2, 2]}},
}


def test_every_codec_is_in_one_round_trip():
    """A codec that declares fixed columns brings its own tables here (else no round trip covers it)."""
    assert TABULAR and sorted(NON_TABULAR) == sorted(OWN_TABLES)


@pytest.mark.parametrize("part", ["request", "response"])
@pytest.mark.parametrize("name", NON_TABULAR)
def test_non_tabular_codecs_round_trip_their_own_tables(name, part):
    codec = REGISTRY.get(name)
    table = OWN_TABLES[codec.name][part]
    body = encode(table, codec.name, part)
    assert decode(body, part=part, protocol=codec.name).table == table
    assert detect_protocol(body, part) == codec.name


@pytest.mark.parametrize("part", ["request", "response"])
def test_round_trip_through_its_own_encoding(tabular, part):
    codec = tabular
    body = encode(TABLE, codec.name, part)
    d = decode(body, part=part, protocol=codec.name)
    assert d.protocol == codec.name and d.table == TABLE


@pytest.mark.parametrize("part", ["request", "response"])
def test_its_encoding_is_detected_as_a_protocol_that_reads_the_same_table(tabular, part):
    codec = tabular
    body = encode(TABLE, codec.name, part)
    detected = detect_protocol(body, part)
    assert decode(body, part=part, protocol=detected).table == TABLE


@pytest.mark.parametrize("part", ["request", "response"])
@pytest.mark.parametrize("body", GARBAGE, ids=repr)
def test_bad_input_is_a_decode_error_or_a_valid_table(codec, part, body):
    try:
        d = codec.decode(body, part)
    except DecodeError as exc:
        assert exc.reason
    else:
        assert isinstance(d, Decoded) and all(isinstance(v, list) for v in d.table.values())
        orjson.dumps(d.table)


def test_declares_what_it_expects_and_is_a_codec(codec):
    assert isinstance(codec, Codec)
    assert codec.expected["request"] and codec.expected["response"]
    assert REGISTRY.canonical(codec.name.upper()) == codec.name
    assert all(REGISTRY.canonical(a) == codec.name for a in codec.aliases)


class Pipes:
    """A toy protocol: ``{"pipes": "a=1|b=2"}``, one row per body."""

    name = "pipes"
    aliases: tuple[str, ...] = ("pipe-text",)
    expected = {"request": '{"pipes": "k=v|..."}', "response": '{"pipes": "k=v|..."}'}

    def matches(self, obj: Any, part: str) -> bool:
        return isinstance(obj, dict) and isinstance(obj.get("pipes"), str)

    def decode(self, obj: Any, part: str) -> Decoded:
        pairs = [kv.split("=", 1) for kv in obj["pipes"].split("|")]
        if any(len(p) != 2 for p in pairs):
            raise DecodeError("a pipe field is not k=v", protocol=self.name)
        return Decoded(self.name, {k: [v] for k, v in pairs})

    def encode(self, table: dict[str, list[Any]], part: str) -> dict[str, Any]:
        return {"pipes": "|".join(f"{k}={v[0]}" for k, v in table.items())}


@pytest.fixture
def pipes():
    REGISTRY.register(Pipes())
    yield
    REGISTRY.unregister("pipes")


def test_recipe_a_new_protocol_is_one_class_and_one_registration(pipes):
    assert REGISTRY.names()[-2:] == ("pipes", "json")  # before the fallback
    assert detect_protocol(b'{"pipes": "a=1|b=2"}', "request") == "pipes"
    assert decode(b'{"pipes": "a=1|b=2"}', part="request").table == {"a": ["1"], "b": ["2"]}
    assert encode({"a": ["1"]}, "pipe-text", "response") == b'{"pipes":"a=1"}'
    with pytest.raises(DecodeError, match="not k=v") as err:
        decode(b'{"pipes": "oops"}', part="request")
    assert err.value.expected == Pipes.expected["request"]


def test_one_name_cannot_be_registered_twice(pipes):
    with pytest.raises(ValueError, match="already registered"):
        REGISTRY.register(Pipes())
    with pytest.raises(TypeError, match="not a Codec"):
        REGISTRY.register(object())  # type: ignore[arg-type]

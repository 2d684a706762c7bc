"""Bodies to JSON values and the budget around a decode (inferwatch/codecs/_parse.py, limits.py,
registry.py, codecs/__init__.py): the cases `make mutation` showed no test held. The oracles are
the libraries the code hands the work to (orjson's own error for a bad line, Python's codec for a
charset), HTTP's status semantics (413 is for a body too large; nesting beyond what a parser takes
is a malformed request, 400) and the documented shapes of error responses."""

from __future__ import annotations

import orjson
import pytest

from inferwatch.codecs import decode
from inferwatch.codecs._parse import parse
from inferwatch.codecs.limits import Budget, BudgetExceeded, charge_columns, session
from inferwatch.codecs.registry import _ERROR_KEYS, error_message
from inferwatch.errors import DecodeError

DEEP = b"[" * 2000 + b"]" * 2000  # orjson parses at most 1024 levels


@pytest.mark.parametrize(("body", "content_type", "what"), [
    (DEEP, None, "invalid JSON"),
    (b'{"a": 1}\n' + DEEP + b"\n", "application/x-ndjson", "invalid JSON line"),
])
def test_json_nested_beyond_what_the_parser_takes_is_a_bad_request(body, content_type, what) -> None:
    with pytest.raises(BudgetExceeded) as info:
        parse(body, content_type)
    assert info.value.limit == "max_depth"
    assert info.value.status == 400  # malformed for the parser, not too large (413)
    assert info.value.reason.startswith(f"{what}: nested deeper than JSON parsing allows (")


def test_an_invalid_json_line_says_what_the_parser_said_about_that_line() -> None:
    bad = b'{"a": }'
    with pytest.raises(orjson.JSONDecodeError) as parser:
        orjson.loads(bad)
    with pytest.raises(DecodeError) as info:
        parse(b'{"a": 1}\n' + bad + b"\n", "application/x-ndjson")
    assert not isinstance(info.value, BudgetExceeded)
    assert info.value.reason == f"invalid JSON line: {parser.value}"


def test_a_charset_label_is_case_insensitive_also_when_it_starts_with_x() -> None:
    """RFC 2046: charset labels are case-insensitive (quoted or not). Python's codec for the
    label is the oracle: the body it encodes parses back to the value."""
    value = {"greeting": "안녕하세요"}
    body = orjson.dumps(value).decode().encode("x-mac-korean")
    assert parse(body, 'application/json; charset="X-MAC-KOREAN"') == value
    assert parse(body, "application/json; charset=X-Mac-Korean") == value


def test_payload_metadata_nested_deeper_than_the_budget_is_refused_naming_protocol_and_part() -> None:
    body = orjson.dumps({"inputs": [{"name": "a", "shape": [1], "datatype": "INT64", "data": [1]}],
                         "parameters": {"x": {"y": {"z": {"w": 1}}}}})
    # the metadata kept: {"parameters": {"x": {"y": {"z": {...}}}}}: five levels of objects
    with session(Budget(max_depth=5)):
        assert decode(body, part="request", protocol="oip-v2").meta["parameters"] == {"x": {"y": {"z": {"w": 1}}}}
    with session(Budget(max_depth=4)), pytest.raises(BudgetExceeded) as info:
        decode(body, part="request", protocol="oip-v2")
    assert (info.value.protocol, info.value.limit, info.value.status) == ("oip-v2", "max_depth", 400)
    assert info.value.reason == "payload metadata is nested deeper than 4 levels (limit max_depth)"


def test_the_time_budget_checked_while_charging_columns_names_the_protocol() -> None:
    with session(Budget(max_seconds=0.0)), pytest.raises(BudgetExceeded) as info:
        charge_columns(1, "oip-v2")
    assert (info.value.protocol, info.value.limit, info.value.status) == ("oip-v2", "max_seconds", 413)


def test_an_error_response_with_every_error_field_at_once_is_still_one() -> None:
    """Any object of error fields only (all of them included) with an ``error`` text is an error."""
    obj = dict.fromkeys(_ERROR_KEYS, "x") | {"error": "model exploded"}
    assert error_message(obj) == "model exploded"
    assert error_message(obj | {"outputs": []}) is None  # a field no error response has: not one


@pytest.mark.parametrize("number", [b"-9223372036854775808", b"-9223372036854775809", b"18446744073709551615",
                                    b"18446744073709551614", b"18446744073709551616", b"1.5", b"-0.0", b"1e308"])
@pytest.mark.parametrize("raw", [False, True])
def test_a_body_with_python_json_nan_reads_its_numbers_as_orjson_does(number, raw) -> None:
    """Python's json writes a float NaN as a bare NaN (not JSON); such a body is still read, NaN
    as a missing cell, and every other number exactly as orjson reads it without the NaN (orjson
    is the oracle: int64/uint64 stay ints, larger integers become floats)."""
    body = b"[NaN, " + number + b", Infinity, -Infinity]"
    got = parse(body if raw else body.decode())
    want = orjson.loads(b"[" + number + b"]")[0]
    assert got[0] is None and got[2:] == [float("inf"), float("-inf")]
    assert got[1] == want and type(got[1]) is type(want)


def test_a_body_with_nan_and_a_number_beyond_double_is_refused_like_orjson_refuses_it() -> None:
    with pytest.raises(orjson.JSONDecodeError) as parser:
        orjson.loads(b"[1e400]")
    with pytest.raises(DecodeError) as info:
        parse(b"[NaN, 1e400]")
    assert info.value.reason.startswith("invalid JSON: ") and not isinstance(info.value, BudgetExceeded)
    assert str(parser.value)  # orjson refuses it too


@pytest.mark.parametrize("raw", [False, True])
def test_a_body_with_nan_nested_beyond_the_parser_is_a_bad_request(raw) -> None:
    body = b"[NaN, " + b"[" * 5000 + b"]" * 5000 + b"]"
    with pytest.raises(BudgetExceeded) as info:
        parse(body if raw else body.decode())
    assert (info.value.limit, info.value.status) == ("max_depth", 400)
    assert info.value.reason == "invalid JSON: nested deeper than JSON parsing allows (limit max_depth)"


@pytest.mark.parametrize("body", [b"[NaN, 1]", b"[Infinity, 1]", b"[-Infinity, 1]"])
@pytest.mark.parametrize("raw", [False, True])
def test_each_python_json_literal_alone_is_read(body, raw) -> None:
    want = {b"N": None, b"I": float("inf"), b"-": float("-inf")}[body[1:2]]
    assert parse(body if raw else body.decode()) == [want, 1]


@pytest.mark.parametrize("raw", [False, True])
def test_a_body_with_nan_and_a_lone_surrogate_is_refused_as_orjson_refuses_it(raw) -> None:
    """orjson refuses a lone surrogate (not Unicode text); the NaN fallback refuses what orjson
    would not have read."""
    body = b'[NaN, "\\ud800"]'
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(b'["\\ud800"]')
    with pytest.raises(DecodeError):
        parse(body if raw else body.decode())

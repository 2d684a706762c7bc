"""The codecs' shared helpers (inferwatch/codecs/base.py, _values.py, _encode.py, _json.py): the
cases `make mutation` showed no test held — the three parts of every DecodeError (the protocol
it names, the reason, what was expected: what an operator reads in a dead letter), base64's
URL-safe fallback, the plain-JSON codec's ``kind``. Expected values are worked out by hand from
the formats' definitions (RFC 4648 base64 alphabets, ISO 8601) and the messages' documented
wording; where a library is the oracle it is the standard library's own decoder."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from inferwatch.codecs import _encode, _values
from inferwatch.codecs._json import CODEC as JSON
from inferwatch.codecs.base import Decoded, describe
from inferwatch.errors import DecodeError


def err(fn, *args, **kw) -> tuple[str | None, str, str | None]:
    """(protocol, reason, expected) of the DecodeError ``fn(*args)`` raises."""
    with pytest.raises(DecodeError) as info:
        fn(*args, **kw)
    e = info.value
    return e.protocol, e.reason, e.expected


# --- describe -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [
    (True, "a boolean"), (False, "a boolean"), (0, "a number"), (1.5, "a number"), ("", "a string"),
    (None, "null"), ([], "a list of 0"), ([1, 2, 3], "a list of 3"), ({}, "an empty object"),
    ({"a": 1}, "an object with keys ['a']"),
    ({k: 0 for k in "abcdef"}, "an object with keys ['a', 'b', 'c', 'd', 'e']"),  # five keys at most
    (b"x", "bytes"), (1j, "complex"),
])
def test_describe(value, text):
    assert describe(value) == text


# --- base64 and datetimes -------------------------------------------------------------------------

def test_b64_bytes_standard_and_url_safe():
    # RFC 4648: "aGk=" is "hi"; '_' (63) and 'w' (48) in the URL-safe alphabet are 111111 110000: 0xFF
    assert _values.b64_bytes("aGk=", "p") == b"hi"
    assert _values.b64_bytes("_w==", "p") == b"\xff"
    assert _values.b64_bytes("_w", "p") == b"\xff"
    assert _values.b64_bytes("_wA", "p") == b"\xff\x00"
    # four URL-safe characters are a whole quantum: 'a'=26 'b'=27 '-'=62 '_'=63 -> 011010 011011 111110 111111
    assert _values.b64_bytes("ab-_", "p") == bytes([0b01101001, 0b10111111, 0b10111111])
    # a trailing 'X' is data, not padding
    assert _values.b64_bytes("_wX", "p") == base64.urlsafe_b64decode("_wX=")
    # ten characters need two '=' to make whole quanta
    assert _values.b64_bytes("__________", "p") == base64.urlsafe_b64decode("__________==")
    assert _values.b64_bytes("__________", "p") == b"\xff" * 7


@pytest.mark.parametrize("text", ["abcd-", "_", "a b=", "@@@@", "ab=c"])
def test_b64_bytes_refuses_what_is_not_base64(text):
    assert err(_values.b64_bytes, text, "oip-v2", "input x") == ("oip-v2", "input x is not valid base64", None)
    assert err(_values.b64_bytes, text, "oip-v2")[1] == "base64 value is not valid base64"


def test_b64_bytes_refuses_non_strings():
    assert err(_values.b64_bytes, 5, "oip-v2", "input x") == ("oip-v2", "input x is a number", "a base64 string")
    assert err(_values.b64_bytes, None, "tfserving") == ("tfserving", "base64 value is null", "a base64 string")


def test_b64_values_decide_the_whole_column():
    assert _values.b64_values([None, "aGk=", None], "p") == ([None, "hi", None], "utf-8")
    assert _values.b64_values([None, "_w==", "aGk="], "p") == ([None, "/w==", "aGk="], "base64")
    assert _values.b64_values([], "p") == ([], "utf-8")
    assert err(_values.b64_values, ["aGk=", 3], "seldon", "binData") == ("seldon", "binData is a number",
                                                                         "a base64 string")
    assert err(_values.b64_values, ["%%"], "seldon") == ("seldon", "base64 value is not valid base64", None)


def test_bytes_to_value():
    assert _values.bytes_to_value("é".encode()) == "é"
    assert _values.bytes_to_value(b"\xff\x00") == "/wA="


def test_check_datetime():
    assert _values.check_datetime(None, "p") is None
    assert _values.check_datetime("2024-02-29T23:59:59Z", "p") == "2024-02-29T23:59:59Z"
    assert _values.check_datetime("2024-02-29", "p") == "2024-02-29"
    assert err(_values.check_datetime, 3, "mlserver") == ("mlserver", "datetime value is a number",
                                                           "an ISO-8601 string")
    bad = "2023-02-29T00:00:00" + "x" * 30  # no 29 February in 2023; longer than the 40 quoted
    assert err(_values.check_datetime, bad, "mlserver") == (
        "mlserver", f"{bad[:40]!r} is not an ISO-8601 datetime", None)


def test_scalar_leaves():
    _values.scalar_leaves([1, 2.0, "a", None, True], "p", "x")
    assert err(_values.scalar_leaves, [1, {"a": 1}, [2]], "p", "input x") == (
        "p", "input x holds an object with keys ['a'] where a scalar was expected", None)


# --- tables to payloads ---------------------------------------------------------------------------

def test_table_columns():
    assert _encode.table_columns({}, "json") == ([], [], 0)
    assert _encode.table_columns({"a": (1, 2), 3: np.array([4, 5])}, "json") == (["a", "3"], [[1, 2], [4, 5]], 2)
    # numpy scalars as numpy serialises them: float32 0.1 is written as the shortest float32 repr
    assert _encode.table_columns({"a": [np.float32(0.1), np.int64(3)]}, "json") == (["a"], [[0.1, 3]], 2)
    assert _encode.table_columns({"a": [b"hi", {"x"}]}, "json")[1] == [["hi", ["x"]]]


def test_table_columns_errors():
    assert err(_encode.table_columns, [1], "json") == ("json", "cannot encode list",
                                                       "a table: dict of column -> list")
    assert err(_encode.table_columns, {"a": 5}, "mlflow") == ("mlflow", "column 'a' is int", "a list per column")
    p, reason, expected = err(_encode.table_columns, {"a": [object()]}, "json")
    assert (p, expected) == ("json", None)
    assert reason.startswith("column 'a' holds values that are not JSON: ")
    assert err(_encode.table_columns, {"a": [1], "b": [1, 2]}, "json") == (
        "json", "columns of unequal length: {'a': 1, 'b': 2}", None)


def test_table_records_and_rows():
    assert _encode.table_records(["a", "b"], [[1, 2], ["x", "y"]], 2) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert _encode.table_records([], [], 0) == []
    assert _encode.table_rows([[1, 2], ["x", "y"]]) == [[1, "x"], [2, "y"]]


# --- plain JSON -----------------------------------------------------------------------------------

@pytest.mark.parametrize("body, table, kind", [
    ({}, {}, "record"),
    ({"a": 1, "b": {"c": 2}}, {"a": [1], "b.c": [2]}, "record"),
    ([], {}, "array"),
    ([1, 2], {"f0": [1, 2]}, "array"),
    ([[1, 2], [3, 4]], {"f0": [1, 3], "f1": [2, 4]}, "array"),
    ([{"a": 1}, {"a": 2}], {"a": [1, 2]}, "records"),
])
def test_plain_json_decode(body, table, kind):
    for part in ("request", "response"):
        assert JSON.decode(body, part) == Decoded("json", table, {"kind": kind})


def test_plain_json_errors():
    expected = "a record object {...} or a list of record objects [{...}, ...]"
    assert err(JSON.decode, "x", "request") == ("json", "request is a string", expected)
    assert err(JSON.decode, 5, "response") == ("json", "response is a number", expected)
    assert err(JSON.decode, [{"a": 1}, 2], "response") == (
        "json", "response mixes objects with other values", "all objects or no objects")
    assert err(JSON.decode, [1, [2]], "request") == ("json", "request is ragged: nested lists mixed with scalars", None)
    assert err(JSON.encode, [1], "request") == ("json", "cannot encode list", "a table: dict of column -> list")


def test_plain_json_encode():
    assert JSON.encode({"a": [1, 2], "b": ["x", "y"]}, "response") == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert JSON.encode({}, "request") == []


def test_plain_json_depth_errors_name_json():
    from inferwatch.codecs.limits import Budget, BudgetExceeded, session
    with session(Budget(max_depth=2)), pytest.raises(BudgetExceeded) as info:
        JSON.decode({"a": {"b": {"c": 1}}}, "request")
    assert info.value.protocol == "json"


def test_plain_json_b64_objects_are_plain_records():
    # the {"b64": ...} binary convention is TF Serving's: a plain JSON record keeps it as a nested object
    assert JSON.decode({"img": {"b64": "aGk="}}, "request").table == {"img.b64": ["aGk="]}
    assert JSON.decode([{"img": {"b64": "aGk="}}], "request").table == {"img.b64": ["aGk="]}

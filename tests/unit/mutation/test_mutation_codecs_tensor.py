"""Tensor and body helpers of the codecs (inferwatch/codecs/_tensor.py, _parse.py): shapes,
nesting, datatype ranges and the slow paths `make mutation` showed no test held. Expected
values come from the datatypes' definitions (the Open Inference Protocol's tensor datatypes:
two's-complement ranges, IEEE floats) and row-major order, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inferwatch.codecs import _parse, _tensor
from inferwatch.codecs._tensor import check_shape, coerce, flatten, nest, tensor_columns, typed_flat
from inferwatch.codecs.limits import BudgetExceeded
from inferwatch.errors import DecodeError

P = "oip-v2"


def _err(fn, *args, match, **kw):
    """The DecodeError ``fn`` raises; it names the protocol it was given (``P``), or none."""
    with pytest.raises(DecodeError, match=match) as info:
        fn(*args, **kw)
    assert info.value.protocol == (P if P in args else None)
    return info.value


# --- shapes --------------------------------------------------------------------------------------

def test_check_shape_accepts_ints_and_int64_strings():
    assert check_shape([2, "3", 0], P, "x") == [2, 3, 0]
    assert check_shape([], P, "x") == []
    assert check_shape([1] * 32, P, "x") == [1] * 32


@pytest.mark.parametrize("shape", [[-1], [True], [1.0], ["a"], ["-1"], ["1" * 21], ["٣"], [None]])
def test_check_shape_refuses_invalid_dimensions(shape):
    e = _err(check_shape, shape, P, "input x", match="has an invalid dimension")
    assert e.reason == f"input x shape {shape!r} has an invalid dimension"
    assert e.protocol == P and e.expected == "non-negative integers"


def test_check_shape_limits():
    e = _err(check_shape, "2", P, "x", match="shape is a string")
    assert e.expected == "a list of non-negative integers"
    e = _err(check_shape, [1] * 33, P, "x", match=r"^oip-v2: x has rank 33 \(at most 32\)$")
    assert check_shape([10_000, 10_000], P, "x") == [10_000, 10_000]  # exactly 10^8 cells
    _err(check_shape, [10_000, 10_001], P, "x", match=r"^oip-v2: x shape \[10000, 10001\] has more than 100000000 "
                                                      r"elements$")
    assert check_shape([0, 1000, 1000], P, "x") == [0, 1000, 1000]  # 10^6 empty lists: the limit
    _err(check_shape, [0, 1000, 1001], P, "x", match=r"is empty but would still build 1000000\+ nested lists$")
    assert check_shape(["00000000000000000002"], P, "x") == [2]  # 20 digits: still an int64 string


def test_flatten_row_major_and_ragged():
    assert flatten(5, P, "x") == ([], [5])
    assert flatten([], P, "x") == ([0], [])
    assert flatten([[1, 2, 3], [4, 5, 6]], P, "x") == ([2, 3], [1, 2, 3, 4, 5, 6])
    assert flatten([[[1], [2]], [[3], [4]]], P, "x") == ([2, 2, 1], [1, 2, 3, 4])
    assert flatten([[], []], P, "x") == ([2, 0], [])
    _err(flatten, [[1, 2], [3]], P, "x", match=r"^oip-v2: x is ragged: nested lists of different lengths or mixed "
                                               r"with scalars$")
    _err(flatten, [[1], 2], P, "x", match="ragged: nested lists of different lengths")
    _err(flatten, [1, [2]], P, "x", match=r"^oip-v2: x is ragged: nested lists mixed with scalars$")
    deep = 1
    for _ in range(32):
        deep = [deep]
    assert flatten(deep, P, "x") == ([1] * 32, [1])
    _err(flatten, [deep], P, "x", match=r"^oip-v2: x is nested deeper than 32 levels$")


def test_typed_flat_checks_the_element_count():
    assert typed_flat([[1, 2], [3, 4]], [4], P, "x") == [1, 2, 3, 4]
    assert typed_flat([1, 2, 3, 4], [2, 2], P, "x") == [1, 2, 3, 4]
    _err(typed_flat, [1, 2, 3], [2, 2], P, "x", match=r"^oip-v2: x has 3 elements but shape \[2, 2\] needs 4$")
    e = _err(typed_flat, "abc", [3], P, "x", match=r"x data is a string")
    assert e.expected == "a list"


def test_nest_is_the_inverse_of_flatten():
    assert nest([1, 2, 3, 4, 5, 6], [2, 3]) == [[1, 2, 3], [4, 5, 6]]
    assert nest([1, 2, 3, 4, 5, 6], [3, 2]) == [[1, 2], [3, 4], [5, 6]]
    assert nest(list(range(8)), [2, 2, 2]) == [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
    assert nest([7], []) == [7] and nest([1, 2], [2]) == [1, 2]
    for shape in ([2, 3, 4], [1, 5], [4, 1, 2]):
        flat = list(range(math.prod(shape)))
        assert flatten(nest(flat, shape), P, "x") == (shape, flat)


# --- datatypes -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("dt", "lo", "hi"), [
    ("INT8", -128, 127), ("INT16", -32768, 32767), ("INT32", -2147483648, 2147483647),
    ("INT64", -9223372036854775808, 9223372036854775807),
    ("UINT8", 0, 255), ("UINT16", 0, 65535), ("UINT32", 0, 4294967295), ("UINT64", 0, 18446744073709551615),
])
def test_integer_ranges_are_twos_complement_exactly(dt, lo, hi):
    assert coerce([lo, hi], dt, P, "x") == [lo, hi]
    for bad in (lo - 1, hi + 1):
        _err(coerce, [bad], dt, P, "x", match=rf"^oip-v2: {dt} x holds values outside \[{lo}, {hi}\]$")
    # the same bounds on the numpy path (integral floats) and the slow path (with None)
    if hi < 2**53:
        assert coerce([float(lo), float(hi)], dt, P, "x") == [lo, hi]
        _err(coerce, [float(hi + 1)], dt, P, "x", match="holds values outside")
        _err(coerce, [float(lo - 1)], dt, P, "x", match="holds values outside")
    assert coerce([None, lo, hi], dt, P, "x") == [None, lo, hi]
    e = _err(coerce, [None, hi + 1], dt, P, "x", match=rf"^oip-v2: {dt} x holds {hi + 1} \(expected integers in "
                                                        rf"\[{lo}, {hi}\]\)$")
    assert e.expected == f"integers in [{lo}, {hi}]"
    _err(coerce, [None, lo - 1], dt, P, "x", match="holds")


def test_datatypes_list():
    assert _tensor.DATATYPES == ("BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64",
                                 "FP16", "FP32", "FP64", "BF16", "BYTES")
    assert _tensor.FLOAT_TYPES == ("FP16", "FP32", "FP64", "BF16")


def test_integer_numpy_path():
    out = coerce([1.0, 2, 3.0], "INT32", P, "x")
    assert out == [1, 2, 3] and all(type(v) is int for v in out)
    _err(coerce, [1.5, 2], "INT32", P, "x", match=r"^oip-v2: INT32 x holds non-integral numbers$")
    _err(coerce, [math.inf, 2], "INT64", P, "x", match="non-integral")
    _err(coerce, [math.nan, 2], "INT64", P, "x", match="non-integral")
    # big integers mixed with an integral float keep every digit, and the range is exact
    # (a float64 check rounds -2**63 - 1 up to -2**63 and 2**63 - 1 up to 2**63)
    assert coerce([2**63 - 1, 1.0], "INT64", P, "x") == [2**63 - 1, 1]
    assert coerce([2**64 - 1, 0.0], "UINT64", P, "x") == [2**64 - 1, 0]
    _err(coerce, [-(2**63) - 1, 1.0], "INT64", P, "x", match="holds -9223372036854775809")
    _err(coerce, [2**64, 1.0], "UINT64", P, "x", match="holds 18446744073709551616")
    # proto3 JSON's int64 as strings
    out = coerce(["5", "-7"], "INT64", P, "x", numeric_strings=True)
    assert out == [5, -7] and all(type(v) is int for v in out)


def test_bool_paths():
    assert coerce([True, False], "BOOL", P, "x") == [True, False]
    out = coerce([1, 0, 1], "BOOL", P, "x")
    assert out == [True, False, True] and all(type(v) is bool for v in out)
    _err(coerce, [2, 0], "BOOL", P, "x", match=r"^oip-v2: BOOL x holds values other than true/false/0/1$")
    _err(coerce, [1.0, 0.0], "BOOL", P, "x", match="values other than")
    assert coerce([None, True, 1, 0], "BOOL", P, "x") == [None, True, True, False]
    _err(coerce, [None, 2], "BOOL", P, "x", match=r"^oip-v2: BOOL x holds a number$")
    _err(coerce, [None, "true"], "BOOL", P, "x", match=r"^oip-v2: BOOL x holds a string$")


def test_float_paths():
    assert coerce([1.5, 2.5], "FP32", P, "x") == [1.5, 2.5]
    out = coerce([1, 2.5, True], "FP64", P, "x")
    assert out == [1.0, 2.5, 1.0] and all(type(v) is float for v in out)
    assert coerce([1, math.nan], "FP64", P, "x") == [1.0, None]
    assert coerce([math.nan, math.inf], "FP64", P, "x")[1] == math.inf
    # all floats (the fast path: what decoded bytes give): a NaN is missing there too
    for dt in _tensor.FLOAT_TYPES:
        assert coerce([math.nan, 2.5, math.nan], dt, P, "x") == [None, 2.5, None]
    assert coerce([math.inf, -math.inf, 1.0], "FP32", P, "x") == [math.inf, -math.inf, 1.0]  # sum is NaN, no cell is
    assert coerce([None, math.nan, 2.5], "FP64", P, "x") == [None, None, 2.5]  # the slow path
    assert coerce([None, 1, 2.5], "FP16", P, "x") == [None, 1.0, 2.5]
    assert all(type(v) is float for v in coerce([None, 1], "BF16", P, "x")[1:])
    _err(coerce, [None, 10**400], "FP64", P, "x", match=r"^oip-v2: FP64 x holds a number too large for a float$")
    _err(coerce, [None, "a"], "FP64", P, "x", match=r"^oip-v2: FP64 x holds a string \(expected numbers\)$")
    _err(coerce, ["a", "b"], "FP64", P, "x", match=r"^oip-v2: FP64 x holds non-numeric values \(expected numbers\)$")
    assert coerce(["1.5", "NaN"], "FP64", P, "x", numeric_strings=True) == [1.5, None]
    _err(coerce, ["1.5", "z"], "FP64", P, "x", numeric_strings=True, match=r"^oip-v2: FP64 x holds non-numeric "
                                                                           r"strings$")
    assert coerce([None, "2.5", "NaN"], "FP64", P, "x", numeric_strings=True) == [None, 2.5, None]
    assert coerce([None, "3"], "INT32", P, "x", numeric_strings=True) == [None, 3]
    _err(coerce, [None, "q"], "INT32", P, "x", numeric_strings=True, match="non-numeric strings")
    # without numeric_strings a string among numbers is refused
    _err(coerce, [None, "3"], "INT32", P, "x", match="holds '3'")


def test_bytes_and_non_scalars():
    assert coerce(["a", None], "BYTES", P, "x") == ["a", None]
    assert coerce([], "FP64", P, "x") == []
    _err(coerce, ["a", 1], "BYTES", P, "x", match=r"^oip-v2: BYTES x holds a number \(expected strings\)$")
    _err(coerce, [1, [2]], "FP64", P, "x", match=r"^oip-v2: x holds a list of 1 where a scalar was expected$")
    _err(coerce, [{"a": 1}], "BYTES", P, "x", match="holds an object with keys")


# --- the column-naming rule ---------------------------------------------------------------------

def test_tensor_columns_by_rank():
    assert tensor_columns("t", [], [7], P) == [("t", [7], True)]
    assert tensor_columns(None, [3], [1, 2, 3], P) == [("f0", [1, 2, 3], False)]
    assert tensor_columns("t", [2, 1], [1, 2], P) == [("t", [1, 2], False)]
    assert tensor_columns("t", [2, 3], [1, 2, 3, 4, 5, 6], P) == [("t_0", [1, 4], False), ("t_1", [2, 5], False),
                                                                   ("t_2", [3, 6], False)]
    assert tensor_columns(None, [2, 2], [1, 2, 3, 4], P) == [("f0", [1, 3], False), ("f1", [2, 4], False)]
    assert tensor_columns("t", [2, 2], [1, 2, 3, 4], P, names=["a", 5]) == [("a", [1, 3], False),
                                                                            ("5", [2, 4], False)]
    assert tensor_columns("t", [2, 2], [1, 2, 3, 4], P, one_column=True) == [("t", [[1, 2], [3, 4]], False)]
    assert tensor_columns("t", [1, 2, 2], [1, 2, 3, 4], P) == [("t", [[[1, 2], [3, 4]]], False)]
    wide = 10_001
    assert tensor_columns("t", [1, wide], list(range(wide)), P) == [("t", [list(range(wide))], False)]
    assert len(tensor_columns("t", [1, 10_000], list(range(10_000)), P)) == 10_000
    _err(tensor_columns, "t", [2, 2], [1, 2, 3, 4], P, names=["a"], match=r"^oip-v2: 1 names given for 2 columns "
                                                                         r"\(expected one name per column\)$")
    assert tensor_columns(None, [], [1, 2], P, names=["n"]) == [("n", [1], True)]


def test_names_given_with_a_tensor_name_its_one_column_at_every_rank():
    """Names given with a tensor (Seldon's ``names``) are one per column, whatever the rank: a
    vector or an (n, 1) matrix is one column, so is a tensor of rank 3 (one nested list per row)."""
    assert tensor_columns("t", [2], [1, 2], P, names=["x"]) == [("x", [1, 2], False)]
    assert tensor_columns("t", [2, 1], [1, 2], P, names=["x"]) == [("x", [1, 2], False)]
    assert tensor_columns("t", [1, 2, 2], [1, 2, 3, 4], P, names=["x"]) == [("x", [[[1, 2], [3, 4]]], False)]
    for shape, flat in (([], [7]), ([2], [1, 2]), ([2, 1], [1, 2]), ([1, 2, 2], [1, 2, 3, 4])):
        _err(tensor_columns, "t", shape, flat, P, names=["a", "b"],
             match=r"^oip-v2: 2 names given for 1 columns \(expected one name per column\)$")


def test_integral_numeric_strings_are_read_as_the_numbers_they_spell():
    """proto3 JSON writes integers as strings; a string spelling an integral number in any JSON
    number form ("7.0", "1e2") is that integer."""
    out = coerce(["7", "7.0", "1e2"], "UINT16", P, "x", numeric_strings=True)
    assert out == [7, 7, 100] and all(type(v) is int for v in out)


# --- bodies --------------------------------------------------------------------------------------

def test_parse_bodies_and_content_types():
    assert _parse.parse(b'{"a": 1}') == {"a": 1}
    assert _parse.parse('{"a": 1}') == {"a": 1}
    assert _parse.parse(bytearray(b"[1]")) == [1] and _parse.parse(memoryview(b"[2]")) == [2]
    assert _parse.parse(b"\xef\xbb\xbf[1]") == [1] and _parse.parse("\ufeff[1]") == [1]
    assert _parse.parse('{"a": "\u00e9"}'.encode("latin-1"), "application/json; charset=ISO-8859-1") == {"a": "é"}
    assert _parse.parse(b'"x"', 'application/json; charset="UTF-8"') == "x"
    assert _parse.parse(b"[1]", "application/json; charset=") == [1]
    assert _parse.parse(b'{"a":1}\n\n{"a":2}\n', "application/x-ndjson") == [{"a": 1}, {"a": 2}]
    for media in ("application/ndjson", "application/jsonl", "application/jsonlines", "Application/X-JSONLines"):
        assert _parse.parse(b"1\n2", media) == [1, 2]
    for media in ("application/x-protobuf", "application/protobuf", "application/grpc",
                  "application/vnd.google.protobuf", "APPLICATION/GRPC; charset=utf-8"):
        e = _err(_parse.parse, b"\x08\x01", media, match="binary body of content type")
        assert e.expected == "a JSON body" and e.protocol is None
    _err(_parse.parse, b"  \n", match=r"^empty body \(expected a JSON body\)$")
    _err(_parse.parse, b"\xef\xbb\xbf", match="empty body")
    _err(_parse.parse, b"[1", match=r"^invalid JSON: ")
    _err(_parse.parse, b"1\n[", "application/x-ndjson", match=r"^invalid JSON line: ")
    _err(_parse.parse, b"[1]", "application/json; charset=nope", match=r"^cannot decode body as nope: ")
    _err(_parse.parse, b"\xff\xfe[", "application/json; charset=ascii", match="cannot decode body as ascii")
    # a str body with a charset is already text
    assert _parse.parse("[3]", "application/json; charset=latin-1") == [3]


def test_parse_python_objects_through_json():
    assert _parse.parse({"t": (1, 2), "b": b"hi", "raw": b"\xff", "n": np.float32(1.5), "s": {3}}) == {
        "t": [1, 2], "b": "hi", "raw": "/w==", "n": 1.5, "s": [3]}
    assert _parse.parse({1: np.arange(3)}) == {"1": [0, 1, 2]}
    e = _err(_parse.parse, {"x": object()}, match=r"^not JSON-serialisable: ")
    assert e.reason.endswith("object")
    assert _parse.json_default(np.int8(3)) == 3
    assert _parse.json_default(bytearray(b"a")) == "a" and _parse.json_default(memoryview(b"b")) == "b"
    assert _parse.json_default(frozenset({1})) == [1]
    with pytest.raises(TypeError, match=r"^complex is not JSON serialisable$"):
        _parse.json_default(1j)


def test_loads_and_depth():
    assert _parse.loads(b"[1]") == [1]
    _err(_parse.loads, b"[", match=r"^invalid JSON: ")
    e = _err(_parse.loads, b"[", "bad body", match=r"^bad body: ")
    assert not isinstance(e, BudgetExceeded)
    with pytest.raises(BudgetExceeded) as info:
        _parse.loads(b"[" * 2000 + b"]" * 2000)
    assert info.value.limit == "max_depth" and "nested deeper than JSON parsing allows" in str(info.value)
    with pytest.raises(BudgetExceeded):
        _parse.parse(b"[" * 2000 + b"]" * 2000)
    assert _parse.dumps({"a": np.int64(1), 2: "b"}) == b'{"a":1,"2":"b"}'


def test_media_type_parsing():
    assert _parse._media(None) == ("", None)
    assert _parse._media("") == ("", None)
    assert _parse._media(" Application/JSON ; Charset = x ") == ("application/json", None)
    assert _parse._media('text/plain; q=1; CHARSET="Latin-1"') == ("text/plain", "latin-1")
    assert _parse._media("a/b; charset=x=y") == ("a/b", "x=y")

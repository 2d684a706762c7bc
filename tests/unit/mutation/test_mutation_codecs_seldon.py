"""The Seldon Core v1 codec's edges (inferwatch/codecs/_seldon.py): the cases `make mutation`
showed no test held. The TensorProto bodies are built by seldon-core's own generated protobuf
messages (``seldon_core.proto``, TensorFlow's ``TensorProto``) and written as JSON by protobuf's
``json_format``, the way a Seldon client sends them; the expected values are the numpy arrays
the messages were filled from, and the error texts the codec's documented wording."""

from __future__ import annotations

import base64

import numpy as np
import pytest

# seldon-core's generated messages (the clients extra, installed by make venv; tests/realclients.py)
from google.protobuf import json_format
from seldon_core.proto import prediction_pb2
from seldon_core.proto.tensorflow.core.framework import types_pb2

from inferwatch.codecs._seldon import CODEC, is_error
from inferwatch.codecs.base import Decoded
from inferwatch.errors import DecodeError

P = "seldon-v1"
EXP = ('{"data": {"names"?, "ndarray" | "tensor": {"shape", "values"} | "tftensor"}} '
       'or {"jsonData": ...} | {"strData": "..."} | {"binData": "<base64>"}')
DTYPES = ("DT_FLOAT, DT_DOUBLE, DT_INT32, DT_UINT8, DT_INT16, DT_INT8, DT_UINT16, DT_STRING, DT_INT64, DT_BOOL, "
          "DT_HALF, DT_BFLOAT16, DT_UINT32, DT_UINT64")


def err(fn, *args, **kw):
    with pytest.raises(DecodeError) as info:
        fn(*args, **kw)
    return info.value.protocol, info.value.reason, info.value.expected


def tf_message(dtype: str, dims, *, names=(), content: bytes | None = None, **values) -> prediction_pb2.SeldonMessage:
    m = prediction_pb2.SeldonMessage()
    t = m.data.tftensor
    t.dtype = types_pb2.DataType.Value(dtype)
    for d in dims:
        t.tensor_shape.dim.add(size=d)
    if content is not None:
        t.tensor_content = content
    for field, vals in values.items():
        getattr(t, field).extend(vals)
    m.data.names.extend(names)
    return m


def as_json(m, **kw):
    return json_format.MessageToDict(m, **kw)


# (dtype, value field, numpy dtype of the content, values)
NUMERIC = [
    ("DT_FLOAT", "float_val", "<f4", [1.5, -2.25, 0.0, 3.0]),
    ("DT_DOUBLE", "double_val", "<f8", [1e300, -2.5, 0.125, 7.0]),
    ("DT_INT32", "int_val", "<i4", [2**31 - 1, -(2**31), 0, 5]),
    ("DT_UINT8", "int_val", "u1", [255, 0, 1, 128]),
    ("DT_INT16", "int_val", "<i2", [-32768, 32767, 0, -1]),
    ("DT_INT8", "int_val", "i1", [-128, 127, 0, -1]),
    ("DT_UINT16", "int_val", "<u2", [65535, 0, 1, 2]),
    ("DT_INT64", "int64_val", "<i8", [2**62, -(2**63), 0, 9007199254740993]),
    ("DT_UINT32", "uint32_val", "<u4", [2**32 - 1, 0, 1, 2]),
    ("DT_UINT64", "uint64_val", "<u8", [2**64 - 1, 0, 1, 2**63]),
    ("DT_BOOL", "bool_val", "?", [True, False, False, True]),
]
DATATYPE = {"DT_FLOAT": "FP32", "DT_DOUBLE": "FP64", "DT_INT32": "INT32", "DT_UINT8": "UINT8", "DT_INT16": "INT16",
            "DT_INT8": "INT8", "DT_UINT16": "UINT16", "DT_INT64": "INT64", "DT_UINT32": "UINT32",
            "DT_UINT64": "UINT64", "DT_BOOL": "BOOL", "DT_HALF": "FP16", "DT_BFLOAT16": "BF16", "DT_STRING": "BYTES"}


@pytest.mark.parametrize("dtype, field, np_dtype, values", NUMERIC)
@pytest.mark.parametrize("form", ["values", "content", "snake", "enum-number"])
def test_tftensor_every_dtype_from_protobuf_json(dtype, field, np_dtype, values, form):
    if form == "content":
        m = tf_message(dtype, [2, 2], names=["a", "b"], content=np.array(values, dtype=np_dtype).tobytes())
    else:
        m = tf_message(dtype, [2, 2], names=["a", "b"], **{field: values})
    body = as_json(m, preserving_proto_field_name=form == "snake", use_integers_for_enums=form == "enum-number")
    d = CODEC.decode(body, "request")
    assert d == Decoded(P, {"a": [values[0], values[2]], "b": [values[1], values[3]]}, {
        "kind": "tftensor", "names": ["a", "b"],
        "tensors": [{"kind": "tftensor", "datatype": DATATYPE[dtype], "shape": [2, 2]}]})


@pytest.mark.parametrize("form", ["values", "content"])
def test_tftensor_half_and_bfloat16(form):
    half = np.array([1.5, -2.0, 65504.0], dtype=np.float16)
    # bfloat16 is the top half of a float32: 1.5 = 0x3FC00000 -> 0x3FC0, -0.5 = 0xBF000000 -> 0xBF00, 2 -> 0x4000
    bf16 = [0x3FC0, 0xBF00, 0x4000]
    if form == "values":
        h = tf_message("DT_HALF", [3], half_val=half.view(np.uint16).tolist())
        b = tf_message("DT_BFLOAT16", [3], half_val=bf16)
    else:
        h = tf_message("DT_HALF", [3], content=half.tobytes())
        b = tf_message("DT_BFLOAT16", [3], content=np.array(bf16, dtype="<u2").tobytes())
    assert CODEC.decode(as_json(h), "response").table == {"f0": [1.5, -2.0, 65504.0]}
    d = CODEC.decode(as_json(b), "response")
    assert d.table == {"f0": [1.5, -0.5, 2.0]}
    assert d.meta["tensors"] == [{"kind": "tftensor", "datatype": "BF16", "shape": [3]}]


def test_tftensor_strings():
    m = tf_message("DT_STRING", [2], string_val=[b"cat", "dög".encode()])
    d = CODEC.decode(as_json(m), "request")
    assert d.table == {"f0": ["cat", "dög"]}
    assert d.meta["tensors"] == [{"kind": "tftensor", "datatype": "BYTES", "shape": [2], "encoding": "utf-8"}]
    m = tf_message("DT_STRING", [1], string_val=[b"\xff\x00"])
    d = CODEC.decode(as_json(m), "request")
    assert d.table == {"f0": ["/wA="]} and d.meta["tensors"][0]["encoding"] == "base64"


def test_tftensor_int_strings_and_scalars():
    # proto3 JSON writes 64-bit ints as strings; a scalar has no dims (one element)
    assert CODEC.decode({"data": {"tftensor": {"dtype": "DT_INT32", "intVal": ["7"]}}}, "request").table == {"f0": [7]}
    assert CODEC.decode({"data": {"tftensor": {"dtype": "DT_FLOAT", "floatVal": ["1.5"]}}}, "request").table == {
        "f0": [1.5]}
    assert CODEC.decode({"data": {"tftensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{}]}}}},
                        "request").table == {"f0": []}


def _tf(**proto):
    return {"data": {"tftensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "2"}]}, **proto}}}


@pytest.mark.parametrize("body, reason, expected", [
    ({"data": {"tftensor": 5}}, "data.tftensor is a number", "a TensorProto object"),
    ({"data": {"tftensor": {"dtype": "DT_COMPLEX64"}}}, "data.tftensor has dtype 'DT_COMPLEX64'", f"one of {DTYPES}"),
    ({"data": {"tftensor": {"dtype": 8}}}, "data.tftensor has dtype 8", f"one of {DTYPES}"),
    ({"data": {"tftensor": {"dtype": True}}}, "data.tftensor has dtype True", f"one of {DTYPES}"),
    ({"data": {"tftensor": {"dtype": "x" * 60}}}, f"data.tftensor has dtype {('x' * 60)!r:.40}", f"one of {DTYPES}"),
    ({"data": {"tftensor": {"dtype": "DT_FLOAT", "tensorShape": [1]}}}, "data.tftensor.tensorShape is a list of 1",
     '{"dim": [{"size"}]}'),
    ({"data": {"tftensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [1]}}}},
     "data.tftensor.tensorShape.dim is not a list of objects", '[{"size": n}]'),
    ({"data": {"tftensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": {"size": 1}}}}},
     "data.tftensor.tensorShape.dim is not a list of objects", '[{"size": n}]'),
    ({"data": {"tftensor": {"dtype": "DT_STRING", "tensorContent": "AAAA"}}},
     "data.tftensor.tensorContent is not supported for DT_STRING", None),
    (_tf(tensorContent=5), "data.tftensor.tensorContent is a number", "base64"),
    (_tf(tensorContent="!!!"), "data.tftensor.tensorContent is not valid base64", None),
    (_tf(tensorContent=base64.b64encode(bytes(4)).decode()), "data.tftensor.tensorContent has 4 bytes but shape [2] "
                                                            "needs 8", None),
    (_tf(floatVal=1.0), "data.tftensor.floatVal is a number", "a list"),
    (_tf(floatVal=[1.0]), "data.tftensor has 1 floatVal elements but shape [2] needs 2", None),
    (_tf(), "data.tftensor has 0 floatVal elements but shape [2] needs 2", None),
    (_tf(floatVal=[1.0, [2.0]]), "data.tftensor.floatVal holds a list of 1 where a scalar was expected", None),
    ({"data": {"tftensor": {"dtype": "DT_HALF", "tensorShape": {"dim": [{"size": "1"}]}, "halfVal": [None]}}},
     "data.tftensor.halfVal holds null", None),
    ({"data": {"tftensor": {"dtype": "DT_INT64", "tensorShape": {"dim": [{"size": "1"}]}, "int64Val": ["1.5"]}}},
     "data.tftensor.int64Val holds non-integer strings", None),
])
def test_tftensor_errors(body, reason, expected):
    assert err(CODEC.decode, body, "request") == (P, reason, expected)


@pytest.mark.parametrize("body, reason, expected", [
    ([1], "request is a list of 1", EXP),
    ({"meta": {}}, "request has no data", EXP),
    ({"data": {"ndarray": [1]}, "strData": "x"}, "request has several data fields ['data', 'strData']", EXP),
    ({"data": 3}, "data is a number", EXP),
    ({"data": {"names": "a", "ndarray": [1]}}, "data.names is not a list of strings", "a list of column names"),
    ({"data": {"names": [None], "ndarray": [1]}}, "data.names is not a list of strings", "a list of column names"),
    ({"data": {"names": ["a"]}}, "data has none of ndarray, tensor, tftensor", EXP),
    ({"data": {"ndarray": [1], "tensor": {}}}, "data has several of ndarray, tensor, tftensor", EXP),
    ({"data": {"ndarray": [{"a": 1}, 2]}}, "data.ndarray mixes objects with other values", "all objects or no objects"),
    ({"data": {"names": ["a"], "ndarray": [{"a": 1}]}}, "data.names given for an ndarray of objects",
     "names from the objects' keys"),
    ({"data": {"ndarray": [[1, {"a": 2}]]}}, "data.ndarray holds an object with keys ['a'] where a scalar was expected",
     None),
    ({"data": {"tensor": [1]}}, "data.tensor is a list of 1", '{"shape", "values"}'),
    ({"strData": 5}, "strData is a number", "a string"),
    ({"binData": 5}, "binData is a number", "a base64 string"),
    ({"jsonData": [{"a": 1}, 2]}, "jsonData: request mixes objects with other values", None),
    ({"status": {"status": "FAILURE", "code": 500, "info": "boom"}}, "error response: 500 boom", None),
    ({"status": {"status": "FAILURE", "code": 400, "reason": "r" * 600}}, "error response: 400 " + "r" * 500, None),
    ({"status": {"status": "FAILURE"}}, "error response: None None", None),
])
def test_decode_errors(body, reason, expected):
    assert err(CODEC.decode, body, "request") == (P, reason, expected)


def test_is_error():
    assert is_error({"status": {"status": "FAILURE"}})
    assert not is_error({"status": {"status": "SUCCESS"}})
    assert not is_error({"status": "FAILURE"})
    assert not is_error([{"status": {"status": "FAILURE"}}])
    for k in ("data", "jsonData", "strData", "binData"):
        assert not is_error({"status": {"status": "FAILURE"}, k: None})


def test_meta_status_kind_and_names():
    body = {"meta": {"puid": "p1", "tags": {"t": 1}}, "status": {"code": 200, "status": "SUCCESS"},
            "data": {"names": [], "ndarray": [[1, 2]]}}
    assert CODEC.decode(body, "response") == Decoded(P, {"f0": [1], "f1": [2]}, {
        "meta": {"puid": "p1", "tags": {"t": 1}}, "id": "p1", "status": {"code": 200, "status": "SUCCESS"},
        "kind": "ndarray", "names": [], "tensors": [{"kind": "ndarray", "shape": [1, 2]}]})
    body = {"meta": {"puid": ""}, "status": "ok", "data": {"ndarray": [{"a": 1}, {"a": 2}]}}
    assert CODEC.decode(body, "response") == Decoded(P, {"a": [1, 2]}, {
        "meta": {"puid": ""}, "kind": "ndarray", "tensors": [{"kind": "ndarray", "shape": [2]}]})
    body = {"meta": "x", "data": {"names": ["a", "b"], "tensor": {"shape": [1, 2], "values": [1, 2]}}}
    assert CODEC.decode(body, "request") == Decoded(P, {"a": [1.0], "b": [2.0]}, {
        "kind": "tensor", "names": ["a", "b"], "tensors": [{"kind": "tensor", "datatype": "FP64", "shape": [1, 2]}]})


def test_json_str_and_bin_data_meta():
    assert CODEC.decode({"jsonData": {"a": 1}}, "request") == Decoded(P, {"a": [1]}, {"kind": "jsonData"})
    assert CODEC.decode({"jsonData": "s"}, "request") == Decoded(P, {"jsonData": ["s"]}, {"kind": "jsonData"})
    assert CODEC.decode({"strData": "s"}, "request") == Decoded(P, {"strData": ["s"]}, {"kind": "strData"})
    d = CODEC.decode({"binData": "aGk="}, "request")
    assert d.table == {"binData": ["hi"]} and d.meta["kind"] == "binData"


@pytest.mark.parametrize("body, yes", [
    ({"data": {"ndarray": []}}, True), ({"data": {"tensor": {}}}, True), ({"data": {"tftensor": {}}}, True),
    ({"data": {"names": []}}, True), ({"data": {"x": 1}}, False), ({"data": [1]}, False),
    ({"jsonData": 1}, True), ({"strData": 1}, True), ({"binData": 1}, True), ({"meta": {}}, False),
    ([{"jsonData": 1}], False)])
def test_matches(body, yes):
    assert CODEC.matches(body, "request") is yes


def test_encode_every_kind():
    table = {"a": [1, 2], "b": [3.5, 4]}
    assert CODEC.encode(table, "request") == {"data": {"names": ["a", "b"], "ndarray": [[1, 3.5], [2, 4]]}}
    assert CODEC.encode(table, "request", kind="tensor", meta={"puid": "x"}) == {
        "meta": {"puid": "x"}, "data": {"names": ["a", "b"], "tensor": {"shape": [2, 2], "values": [1, 3.5, 2, 4]}}}
    assert CODEC.encode(table, "response", kind="jsonData") == {"jsonData": [{"a": 1, "b": 3.5}, {"a": 2, "b": 4}]}
    assert err(CODEC.encode, {"a": [True]}, "request", kind="tensor") == (
        P, "a Seldon tensor holds numbers only", "numeric columns")
    assert err(CODEC.encode, {"a": ["x"]}, "request", kind="tensor")[1] == "a Seldon tensor holds numbers only"
    assert err(CODEC.encode, table, "request", kind="csv") == (P, "unknown kind 'csv'", "ndarray, tensor or jsonData")
    assert err(CODEC.encode, [1], "request") == (P, "cannot encode list", "a table: dict of column -> list")


@pytest.mark.parametrize("body, fragment", [
    ({"data": {"ndarray": [[1], [1, 2]]}}, "data.ndarray"),
    ({"data": {"tensor": {"shape": [-1], "values": []}}}, "data.tensor shape [-1] has an invalid dimension"),
    ({"data": {"tensor": {"shape": [2], "values": [1]}}}, "data.tensor"),
    ({"data": {"tensor": {"shape": [1], "values": ["x"]}}}, "data.tensor values"),
    ({"data": {"tftensor": {"dtype": "DT_STRING", "tensorShape": {"dim": [{"size": "1"}]}, "stringVal": ["%%"]}}},
     "data.tftensor.stringVal is not valid base64"),
    ({"data": {"tftensor": {"dtype": "DT_HALF", "tensorShape": {"dim": [{"size": "1"}]}, "halfVal": [70000]}}},
     "data.tftensor.halfVal"),
    ({"data": {"tftensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "-1"}]}}}}, "data.tftensor shape"),
    ({"data": {"tftensor": {"dtype": "DT_INT8", "tensorShape": {"dim": [{"size": "1"}]}, "intVal": [300]}}},
     "data.tftensor.intVal"),
])
def test_errors_of_the_helpers_name_seldon_and_the_field(body, fragment):
    p, reason, _ = err(CODEC.decode, body, "request")
    assert p == P and fragment in reason, reason


def test_half_values_may_be_numeric_strings():
    body = {"data": {"tftensor": {"dtype": "DT_HALF", "tensorShape": {"dim": [{"size": "1"}]}, "halfVal": ["15360"]}}}
    assert CODEC.decode(body, "request").table == {"f0": [1.0]}  # 0x3C00 is 1.0 in IEEE half precision


def test_records_in_an_ndarray_name_seldon_in_depth_errors():
    from inferwatch.codecs.limits import Budget, BudgetExceeded, session
    with session(Budget(max_depth=2)), pytest.raises(BudgetExceeded) as info:
        CODEC.decode({"data": {"ndarray": [{"a": {"b": {"c": 1}}}]}}, "request")
    assert info.value.protocol == P


def test_ragged_ndarray_error_starts_with_the_field_and_int_fields_refuse_fractions():
    assert err(CODEC.decode, {"data": {"ndarray": [[1], [1, 2]]}}, "request")[1].startswith("data.ndarray ")
    body = {"data": {"tftensor": {"dtype": "DT_INT64", "tensorShape": {"dim": [{"size": "2"}]}, "int64Val": ["1", 1.5]}}}
    p, reason, _ = err(CODEC.decode, body, "request")
    assert p == P and "data.tftensor.int64Val" in reason


@pytest.mark.parametrize(("data", "reason", "expected"), [
    # Seldon's Tensor message is {shape, values: repeated double}: its values are FP64, which
    # proto3 JSON may write as strings ("NaN", "1.5"): a string that spells no number is refused
    ({"tensor": {"shape": [3], "values": [1, 2]}}, "data.tensor has 2 elements but shape [3] needs 3", None),
    ({"tensor": {"shape": [2], "values": ["x", "y"]}}, "FP64 data.tensor values holds non-numeric strings", None),
    ({"names": ["a"], "ndarray": [[1, 2]]}, "1 names given for 2 columns", "one name per column"),
])
def test_bad_data_is_refused_naming_the_protocol_and_the_field(data, reason, expected):
    assert err(CODEC.decode, {"data": data}, "request") == (P, reason, expected)


def test_data_over_the_column_budget_names_the_protocol():
    from inferwatch.codecs.limits import Budget, BudgetExceeded, session

    with session(Budget(max_columns=1)), pytest.raises(BudgetExceeded) as info:
        CODEC.decode({"data": {"ndarray": [[1, 2]]}}, "request")
    assert (info.value.protocol, info.value.limit) == (P, "max_columns")


def test_a_bindata_message_is_decoded_as_seldon():
    d = CODEC.decode({"binData": base64.b64encode(b"hi").decode()}, "request")
    assert d.protocol == P and d.table == {"binData": ["hi"]}

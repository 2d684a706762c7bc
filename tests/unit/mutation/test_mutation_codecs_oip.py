"""The Open Inference Protocol codec's edges (inferwatch/codecs/_oip.py): the cases `make
mutation` showed no test held. Request bodies are built by the real client libraries —
MLServer's codecs (``PandasCodec``, ``Base64Codec``, ``DatetimeCodec``, ``StringCodec``) and
tritonclient's HTTP request builder — and written as JSON the way they send it; expected tables
follow from the protocol's row-major tensors and MLServer's content types, by hand."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pandas as pd
import pytest

from inferwatch.codecs._oip import CODEC, EXPECTED
from inferwatch.codecs.base import Decoded
from inferwatch.errors import DecodeError
from tests import realclients

P = "oip-v2"
ALL_TYPES = "BOOL, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64, FP16, FP32, FP64, BF16, BYTES"
TENSOR = "an object {name, shape, datatype, data}"


def err(fn, *args, **kw):
    with pytest.raises(DecodeError) as info:
        fn(*args, **kw)
    return info.value.protocol, info.value.reason, info.value.expected


def mlserver_json(request) -> dict:
    return json.loads(request.model_dump_json(exclude_none=True))


def test_mlserver_pandas_request_keeps_one_column_per_tensor():
    codecs, _ = realclients.mlserver()
    body = mlserver_json(codecs.PandasCodec.encode_request(pd.DataFrame({"a": [1, 2], "s": ["x", "y"]})))
    assert CODEC.decode(body, "request") == Decoded(P, {"a": [1, 2], "s": ["x", "y"]}, {
        "parameters": {"content_type": "pd"},
        "tensors": [{"name": "a", "datatype": "INT64", "shape": [2, 1]},
                    {"name": "s", "datatype": "BYTES", "shape": [2, 1], "parameters": {"content_type": "str"}}]})


def test_mlserver_content_types_base64_datetime_str():
    codecs, types = realclients.mlserver()
    request = types.InferenceRequest(id="q", inputs=[
        codecs.Base64Codec.encode_input("img", [b"\xff\x00", b"hi"]),
        codecs.DatetimeCodec.encode_input("t", [datetime.datetime(2024, 1, 2, 3, 4, 5), datetime.datetime(2024, 2, 29)]),
        codecs.StringCodec.encode_input("s", ["a", "b"])], outputs=[{"name": "o"}])
    d = CODEC.decode(mlserver_json(request), "request")
    assert d.table == {"img": ["/wA=", "aGk="], "t": ["2024-01-02T03:04:05", "2024-02-29T00:00:00"], "s": ["a", "b"]}
    assert d.meta["id"] == "q" and d.meta["requested_outputs"] == ["o"]
    assert d.meta["tensors"][0] == {"name": "img", "datatype": "BYTES", "shape": [2, 1],
                                    "parameters": {"content_type": "base64"}, "encoding": "base64"}


def test_request_level_content_type_applies_to_tensors_without_their_own():
    body = {"parameters": {"content_type": "base64"}, "inputs": [
        {"name": "a", "shape": [1], "datatype": "BYTES", "data": ["aGk="]},
        {"name": "b", "shape": [1], "datatype": "BYTES", "parameters": {"content_type": "str"}, "data": ["aGk="]}]}
    d = CODEC.decode(body, "request")
    assert d.table == {"a": ["hi"], "b": ["aGk="]}
    assert d.meta["tensors"][0] == {"name": "a", "datatype": "BYTES", "shape": [1], "encoding": "utf-8"}
    body = {"parameters": {"content_type": "datetime"},
            "inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": ["2024-13-01"]}]}
    assert err(CODEC.decode, body, "request") == (P, "'2024-13-01' is not an ISO-8601 datetime", None)
    # a request-level content type other than str/base64/datetime says nothing about the elements
    body = {"parameters": {"content_type": "np"},
            "inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": ["aGk="]}]}
    assert CODEC.decode(body, "request").table == {"a": ["aGk="]}
    # pd keeps a [2, 2] tensor as one column of rows; without it, two columns
    tensor = {"name": "v", "shape": [2, 2], "datatype": "INT32", "data": [1, 2, 3, 4]}
    assert CODEC.decode({"parameters": {"content_type": "pd"}, "inputs": [tensor]}, "request").table == {
        "v": [[1, 2], [3, 4]]}
    assert CODEC.decode({"inputs": [tensor]}, "request").table == {"v_0": [1, 3], "v_1": [2, 4]}


def test_triton_request_and_lowercase_datatypes():
    body = json.loads(realclients.triton_request([("x", np.array([[1, 2], [3, 4]], dtype=np.int32), "INT32"),
                                                  ("y", np.array([b"a", b"bc"], dtype=object), "BYTES")], "r1"))
    assert CODEC.decode(body, "request") == Decoded(P, {"x_0": [1, 3], "x_1": [2, 4], "y": ["a", "bc"]}, {
        "id": "r1", "parameters": {"binary_data_output": True},
        "tensors": [{"name": "x", "datatype": "INT32", "shape": [2, 2]}, {"name": "y", "datatype": "BYTES", "shape": [2]}]})
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "fp32", "data": [0.5], "parameters": {}}]}
    assert CODEC.decode(body, "request").meta["tensors"] == [{"name": "x", "datatype": "FP32", "shape": [1]}]


def test_response_meta():
    body = {"model_name": "m", "model_version": "2", "id": "i", "parameters": {"p": 1}, "error": "ignored",
            "outputs": [{"name": "y", "shape": [1], "datatype": "FP64", "data": [1.5]}]}
    assert CODEC.decode(body, "response") == Decoded(P, {"y": [1.5]}, {
        "id": "i", "model_name": "m", "model_version": "2", "parameters": {"p": 1},
        "tensors": [{"name": "y", "datatype": "FP64", "shape": [1]}]})
    # a response's "outputs" are its tensors, never requested outputs
    assert "requested_outputs" not in CODEC.decode(body, "response").meta
    body = {"inputs": [], "outputs": [{"name": "a"}, 5, {"x": 1}], "model_version": None}
    assert CODEC.decode(body, "request") == Decoded(P, {}, {"requested_outputs": ["a", None], "tensors": []})


def _t(**kw):
    return {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1], **kw}]}


@pytest.mark.parametrize("body, part, reason, expected", [
    ([1], "request", "request is a list of 1", EXPECTED["request"]),
    ("x", "response", "response is a string", EXPECTED["response"]),
    ({"error": "e" * 600}, "response", "error response: " + "e" * 500, None),
    ({"inputs": 5}, "request", "'inputs' is a number", EXPECTED["request"]),
    ({"outputs": None, "model_name": "m"}, "response", "'outputs' is null", EXPECTED["response"]),
    ({"inputs": [], "parameters": 5}, "request", "request parameters is a number", "an object"),
    ({"inputs": [], "parameters": {"content_type": 5}}, "request", "request content_type is a number", "a string"),
    ({"inputs": [5]}, "request", "inputs[0] is a number", TENSOR),
    ({"inputs": [{"name": 1}]}, "request", "inputs[0] has no name", "a string name"),
    ({"outputs": [{"name": "y", "datatype": "FOO"}]}, "response", "outputs[0] 'y' has datatype 'FOO'",
     f"one of {ALL_TYPES}"),
    (_t(datatype=None), "request", "inputs[0] 'x' has datatype None", f"one of {ALL_TYPES}"),
    (_t(datatype="Q" * 50), "request", f"inputs[0] 'x' has datatype {('Q' * 50)!r:.40}", f"one of {ALL_TYPES}"),
    (_t(parameters=[1]), "request", "inputs[0] 'x' parameters is a list of 1", "an object"),
    (_t(parameters={"content_type": 1}), "request", "inputs[0] 'x' content_type is a number", "a string"),
    (_t(parameters={"binary_data_size": 4}), "request",
     "inputs[0] 'x' uses the binary tensor data extension, which is not supported", None),
    ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}, "request", "inputs[0] 'x' has no data",
     "a data list"),
])
def test_decode_errors(body, part, reason, expected):
    assert err(CODEC.decode, body, part) == (P, reason, expected)


def test_an_error_beside_tensors_is_not_an_error_response():
    assert CODEC.decode({"error": "x", "inputs": []}, "request").table == {}


@pytest.mark.parametrize("body, part, yes", [
    ({"inputs": [{"datatype": "FP32"}]}, "request", True),
    ({"inputs": [{"name": "x"}]}, "request", False),
    ({"inputs": [{"datatype": "FP32"}, 5]}, "request", False),
    ({"inputs": []}, "request", False),
    ({"outputs": [], "model_name": "m"}, "response", True),
    ({"outputs": [], "model_name": "m"}, "request", False),
    ({"outputs": {}, "model_name": "m"}, "response", False),
    ({"outputs": [{"datatype": "FP32"}]}, "response", True),
    ({"inputs": [{"datatype": "FP32"}]}, "response", False),
    ([{"datatype": "FP32"}], "request", False),
])
def test_matches(body, part, yes):
    assert CODEC.matches(body, part) is yes


def test_encode_infers_each_datatype():
    table = {"b": [True, None], "i": [1, -(2**63)], "u": [2**64 - 1, 0], "f": [1, 2.5], "n": [None, None],
             "s": ["x", None], "v": [[1, 2], [3, 4]]}
    out = CODEC.encode(table, "request", id="q")
    assert out == {"id": "q", "parameters": {"content_type": "pd"}, "inputs": [
        {"name": "b", "shape": [2], "datatype": "BOOL", "data": [True, None]},
        {"name": "i", "shape": [2], "datatype": "INT64", "data": [1, -(2**63)]},
        {"name": "u", "shape": [2], "datatype": "UINT64", "data": [2**64 - 1, 0]},
        {"name": "f", "shape": [2], "datatype": "FP64", "data": [1, 2.5]},
        {"name": "n", "shape": [2], "datatype": "FP64", "data": [None, None]},
        {"name": "s", "shape": [2], "datatype": "BYTES", "parameters": {"content_type": "str"}, "data": ["x", None]},
        {"name": "v", "shape": [2, 2], "datatype": "INT64", "data": [1, 2, 3, 4]}]}
    assert CODEC.decode(out, "request").table == table
    assert CODEC.encode({"i": [2**63 - 1]}, "request")["inputs"][0]["datatype"] == "INT64"
    assert CODEC.encode({"i": [2**63]}, "request")["inputs"][0]["datatype"] == "UINT64"


def test_encode_response_and_parameters():
    assert CODEC.encode({"y": [1]}, "response", model_name="m", model_version="3", parameters={"a": 1},
                        content_type=None) == {
        "model_name": "m", "model_version": "3", "parameters": {"a": 1},
        "outputs": [{"name": "y", "shape": [1], "datatype": "INT64", "data": [1]}]}
    assert CODEC.encode({"y": [1]}, "response", content_type=None) == {
        "model_name": "model", "outputs": [{"name": "y", "shape": [1], "datatype": "INT64", "data": [1]}]}
    assert CODEC.encode({}, "request", parameters={"content_type": "np"})["parameters"] == {"content_type": "np"}


@pytest.mark.parametrize("values, reason, expected", [
    ([2**64], "column 'c' holds integers beyond 64 bits", None),
    ([-(2**63) - 1], "column 'c' holds integers beyond 64 bits", None),
    ([-1, 2**64 - 1], "column 'c' holds integers beyond 64 bits", None),
    ([1, "a"], "cannot encode column 'c' mixing ['int', 'str']", "one type per column"),
    ([True, 1], "cannot encode column 'c' mixing ['bool', 'int']", "one type per column"),
    ([{"a": 1}], "column 'c' holds an object with keys ['a'] where a scalar was expected", None),
])
def test_encode_errors(values, reason, expected):
    assert err(CODEC.encode, {"c": values}, "request") == (P, reason, expected)


def test_encode_errors_name_the_column_and_the_protocol():
    assert err(CODEC.encode, [1], "request") == (P, "cannot encode list", "a table: dict of column -> list")
    # a column mixing lists and scalars is not a tensor
    assert err(CODEC.encode, {"c": [1, [2]]}, "request") == (
        P, "column 'c' holds a list of 1 where a scalar was expected", None)
    p, reason, _ = err(CODEC.encode, {"c": [[1], [1, 2]]}, "request")
    assert p == P and reason.startswith("column 'c' ")


def _tensor(name="a", shape=(1,), datatype="INT64", data=(1,), **params):
    t = {"name": name, "shape": list(shape), "datatype": datatype, "data": list(data)}
    if params:
        t["parameters"] = params
    return t


@pytest.mark.parametrize(("tensor", "says"), [
    (_tensor(shape=(-1,)), "shape [-1] has an invalid dimension"),
    (_tensor(shape=(2,), data=([1], [2, 3])), "is ragged"),
    (_tensor(shape=(3,), data=(1, 2)), "has 2 elements but shape [3] needs 3"),
    (_tensor(shape=(2,), data=("x", "y")), "holds non-numeric values"),
    (_tensor(shape=(2,), data=(2**70, 1.5)), "holds 1180591620717411303424"),  # 2**70: beyond int64
    (_tensor(datatype="BYTES", data=("%%%",), content_type="base64"), "is not valid base64"),
])
def test_a_bad_tensor_is_refused_naming_the_protocol_and_which_tensor(tensor, says):
    """What an operator reads in a dead letter: the protocol, and the tensor by its place in the
    body (inputs[0]) and name ('a'), then what is wrong with it."""
    protocol, reason, _ = err(CODEC.decode, {"inputs": [tensor]}, "request")
    assert protocol == P
    assert "inputs[0] 'a'" in reason and says in reason


def test_tensors_of_different_batch_sizes_are_refused_naming_the_protocol():
    protocol, reason, _ = err(CODEC.decode, {"inputs": [_tensor("a", (2,), data=(1, 2)),
                                                         _tensor("b", (3,), data=(1, 2, 3))]}, "request")
    assert protocol == P
    assert reason.startswith("tensors have different batch sizes") and "'a': 2" in reason and "'b': 3" in reason


def test_a_pd_json_tensor_that_is_not_bytes_is_refused_naming_the_protocol_the_tensor_and_bytes():
    """MLServer's PandasCodec sends an object column that is not all text as ``pd_json``: a tensor
    of the datatype it writes (BYTES in the protocol's datatype names), each element one cell's JSON
    text. That content type on a tensor of another datatype is refused; the error names the
    protocol, the tensor (its place and name, as every tensor error does) and, as what was
    expected, the datatype MLServer writes. A bad element names the tensor too."""
    codecs, _ = realclients.mlserver()
    body = mlserver_json(codecs.PandasCodec.encode_request(pd.DataFrame({"meta": [{"a": 1}, [1, 2]]})))
    (tensor,) = body["inputs"]
    assert tensor["parameters"]["content_type"] == "pd_json"
    assert CODEC.decode(body, "request").table == {"meta": [{"a": 1}, [1, 2]]}
    bad = {**body, "inputs": [{**tensor, "datatype": "INT64", "data": [1, 2]}]}
    protocol, reason, expected = err(CODEC.decode, bad, "request")
    assert (protocol, expected) == (P, tensor["datatype"])
    assert reason.startswith("inputs[0] 'meta' ") and "'pd_json'" in reason and "INT64" in reason
    bad = {**body, "inputs": [{**tensor, "data": ['{"a": ', "1"]}]}
    protocol, reason, expected = err(CODEC.decode, bad, "request")
    assert protocol == P and reason.startswith("inputs[0] 'meta' pd_json element is not JSON") and expected


def test_pd_json_is_a_tensor_content_type_only():
    """MLServer reads ``pd_json`` only from a tensor's own parameters (PandasCodec's ``_to_series``);
    the same content type at request level makes nothing of the elements: they stay the texts
    sent, as MLServer's own PandasCodec reads them from the same body."""
    codecs, types = realclients.mlserver()
    body = {"parameters": {"content_type": "pd_json"},
            "inputs": [{"name": "c", "shape": [2, 1], "datatype": "BYTES", "data": ['{"a": 1}', "[1, 2]"]}]}
    oracle = codecs.PandasCodec.decode_request(types.InferenceRequest.model_validate(body))
    expected = [v.decode() if isinstance(v, bytes) else v for v in oracle["c"]]
    assert expected == ['{"a": 1}', "[1, 2]"]  # the oracle really leaves them as text
    assert CODEC.decode(body, "request").table == {"c": expected}

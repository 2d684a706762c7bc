"""Hand-written cases for the payload codecs, per protocol and variant (real-world shapes)."""

from __future__ import annotations

import base64
import math
import struct
import time
from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

import inferwatch.codecs as codecs
from inferwatch.codecs import PROTOCOLS, Decoded, decode, detect_protocol, encode
from inferwatch.errors import DecodeError


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def dec(body, part="request", **kw) -> Decoded:
    if not isinstance(body, (bytes, str)):
        body = orjson.dumps(body)
    return decode(body, part=part, **kw)


def test_public_surface_is_pinned():
    assert codecs.__all__ == ["PROTOCOLS", "REGISTRY", "Budget", "BudgetExceeded", "Codec", "Decoded", "decode",
                              "detect_protocol", "encode"]
    assert PROTOCOLS == ("oip-v2", "seldon-v1", "mlflow", "kserve-v1", "json")


# --------------------------------------------------------------------------- Open Inference Protocol

OIP_MIXED = {
    "id": "req-42",
    "parameters": {"tenant": "a"},
    "inputs": [
        {"name": "age", "shape": [3], "datatype": "INT32", "data": [31, 45, 27]},
        {"name": "income", "shape": [3, 1], "datatype": "FP64", "data": [[5.5e4], [7.1e4], [3.2e4]]},
        {"name": "emb", "shape": [3, 2], "datatype": "FP32", "data": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]},
        {"name": "member", "shape": [3], "datatype": "BOOL", "data": [True, False, True]},
        {"name": "city", "shape": [3], "datatype": "BYTES", "data": ["Oslo", "Lima", "Pune"]},
        {"name": "n", "shape": [3], "datatype": "UINT8", "data": [0, 255, 7]},
    ],
    "outputs": [{"name": "predict"}],
}


def test_oip_request_every_input_mixed_datatypes():
    d = dec(OIP_MIXED)
    assert d.protocol == "oip-v2"
    assert d.table == {
        "age": [31, 45, 27],
        "income": [55000.0, 71000.0, 32000.0],
        "emb_0": [0.1, 0.3, 0.5],
        "emb_1": [0.2, 0.4, 0.6],
        "member": [True, False, True],
        "city": ["Oslo", "Lima", "Pune"],
        "n": [0, 255, 7],
    }
    assert d.meta["id"] == "req-42"
    assert d.meta["parameters"] == {"tenant": "a"}
    assert d.meta["requested_outputs"] == ["predict"]
    assert [t["name"] for t in d.meta["tensors"]] == ["age", "income", "emb", "member", "city", "n"]
    assert d.n_rows == 3
    assert all(type(v) is float for v in d.table["income"])


def test_oip_response_meta_and_outputs():
    body = {
        "model_name": "iris",
        "model_version": "v3",
        "id": "req-42",
        "parameters": {"content_type": "np"},
        "outputs": [
            {"name": "predict", "shape": [2, 1], "datatype": "INT64", "data": [1, 2]},
            {"name": "proba", "shape": [2, 3], "datatype": "FP32", "data": [[0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]},
        ],
    }
    d = dec(body, "response")
    assert d.protocol == "oip-v2"
    assert d.table == {"predict": [1, 2], "proba_0": [0.1, 0.2], "proba_1": [0.8, 0.2], "proba_2": [0.1, 0.6]}
    assert (d.meta["model_name"], d.meta["model_version"], d.meta["id"]) == ("iris", "v3", "req-42")


def test_oip_mlserver_pd_request_one_column_per_input():
    body = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": "a", "datatype": "INT64", "shape": [2, 1], "data": [1, 2]},
            {"name": "b", "datatype": "BYTES", "shape": [2, 1], "parameters": {"content_type": "str"}, "data": ["x", "y"]},
            {"name": "vec", "datatype": "FP32", "shape": [2, 2], "data": [1, 2, 3, 4]},
        ],
    }
    assert dec(body).table == {"a": [1, 2], "b": ["x", "y"], "vec": [[1.0, 2.0], [3.0, 4.0]]}


def test_oip_content_types_base64_and_datetime():
    body = {
        "inputs": [
            {"name": "img", "datatype": "BYTES", "shape": [2], "parameters": {"content_type": "base64"},
             "data": [b64(b"hello"), b64(b"\xff\xfe\x00")]},
            {"name": "ts", "datatype": "BYTES", "shape": [2], "parameters": {"content_type": "datetime"},
             "data": ["2024-01-02T03:04:05", "2024-01-02T03:04:05Z"]},
        ]
    }
    d = dec(body)
    # one column, one encoding: the non-UTF-8 value keeps the whole column base64, and says so
    assert d.table["img"] == [b64(b"hello"), b64(b"\xff\xfe\x00")]
    assert d.meta["encodings"] == {"img": "base64"}
    assert d.meta["tensors"][0]["encoding"] == "base64"
    assert d.table["ts"] == ["2024-01-02T03:04:05", "2024-01-02T03:04:05Z"]
    bad = {"inputs": [{**body["inputs"][1], "data": ["yesterday", "2024-01-01"]}]}
    with pytest.raises(DecodeError, match="ISO-8601"):
        dec(bad)
    bad = {"inputs": [{**body["inputs"][0], "data": ["!!not base64!!", "x"]}]}
    with pytest.raises(DecodeError, match="base64"):
        dec(bad)


def test_oip_pd_json_elements_are_cells_and_bad_ones_are_refused():
    def pd_json(data, datatype="BYTES", shape=None):
        return {"parameters": {"content_type": "pd"}, "inputs": [
            {"name": "c", "datatype": datatype, "shape": shape or [len(data), 1],
             "parameters": {"content_type": "pd_json"}, "data": data}]}

    assert dec(pd_json(['{"k": [1, 2]}', None, "null", '"s"'])).table == {"c": [{"k": [1, 2]}, None, None, "s"]}
    with pytest.raises(DecodeError, match="pd_json element is not JSON"):
        dec(pd_json(['{"k": ', "1"]))
    with pytest.raises(DecodeError, match="datatype INT64"):
        dec(pd_json([1, 2], "INT64"))
    with pytest.raises(codecs.BudgetExceeded, match="max_depth"):
        dec(pd_json(["[" * 200 + "]" * 200]))  # a cell's nesting is bounded as a record's is


def test_oip_request_level_str_content_type():
    body = {"parameters": {"content_type": "str"},
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["hi", "there"]}]}
    assert dec(body).table == {"text": ["hi", "there"]}


@pytest.mark.parametrize(
    ("datatype", "data", "expected"),
    [
        ("BOOL", [1, 0], [True, False]),
        ("INT8", [1.0, -128], [1, -128]),
        ("UINT64", [2**64 - 1, 0], [2**64 - 1, 0]),
        ("INT64", [None, 3], [None, 3]),
        ("FP16", [1, 0.5], [1.0, 0.5]),
        ("BF16", [1.5, None], [1.5, None]),
        ("fp32", [2, 3], [2.0, 3.0]),
    ],
)
def test_oip_datatype_coercion(datatype, data, expected):
    body = {"inputs": [{"name": "x", "shape": [2], "datatype": datatype, "data": data}]}
    assert dec(body).table == {"x": expected}


@pytest.mark.parametrize(
    ("datatype", "data", "match"),
    [
        ("INT32", [1.5, 2], "non-integral"),
        ("UINT8", [300, 1], "outside"),
        ("INT8", [-129, 1], "outside"),
        ("BOOL", [2, 1], "BOOL"),
        ("FP32", ["1.5", 2], "non-numeric"),
        ("BYTES", [1, "a"], "BYTES"),
        ("FP64", [[1], 2], "ragged"),
        ("FP64", [{"a": 1}, 2], "scalar"),
        ("COMPLEX", [1, 2], "datatype"),
    ],
)
def test_oip_bad_values(datatype, data, match):
    body = {"inputs": [{"name": "x", "shape": [2], "datatype": datatype, "data": data}]}
    with pytest.raises(DecodeError, match=match):
        dec(body)


def test_oip_shape_validated_against_data():
    def one(shape, data):
        return {"inputs": [{"name": "x", "shape": shape, "datatype": "FP32", "data": data}]}

    assert dec(one([2, 2], [[1, 2], [3, 4]])).table == {"x_0": [1.0, 3.0], "x_1": [2.0, 4.0]}
    with pytest.raises(DecodeError, match="needs 6"):
        dec(one([2, 3], [1, 2, 3, 4]))
    with pytest.raises(DecodeError, match="ragged"):
        dec(one([2, 2], [[1, 2], [3]]))
    for shape in ([-1], [1.5], [True], "2", [2] * 40):
        with pytest.raises(DecodeError):
            dec(one(shape, [1, 2]))


def test_oip_huge_shape_is_refused_quickly():
    # bounded by this thread's CPU time, not wall-clock time: other load on the machine cannot fail it
    body = {"inputs": [{"name": "x", "shape": [10**12, 10**12], "datatype": "FP32", "data": [1.0]}]}
    t0 = time.thread_time()
    with pytest.raises(DecodeError, match="more than"):
        dec(body)
    with pytest.raises(DecodeError, match="needs"):
        dec({"inputs": [{"name": "x", "shape": [10**6, 10], "datatype": "FP32", "data": [1.0]}]})
    assert time.thread_time() - t0 < 1.0


def test_oip_empty_tensors():
    def one(shape, data):
        return {"inputs": [{"name": "x", "shape": shape, "datatype": "FP32", "data": data}]}

    assert dec(one([0], [])).table == {"x": []}
    assert dec(one([0, 2], [])).table == {"x_0": [], "x_1": []}
    assert dec(one([2, 0, 3], [])).table == {"x": [[], []]}
    t0 = time.thread_time()
    for shape in ([10**9, 0, 2], [10**7, 1, 0], ["9" * 5000]):
        with pytest.raises(DecodeError):
            dec(one(shape, []))
    assert time.thread_time() - t0 < 1.0


def test_base64_accepts_url_safe_alphabet_only():
    raw = b"\xfb\xff\xfe-text"
    url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    d = dec({"binData": url})  # not UTF-8: kept as standard base64 of the same bytes, and marked so
    assert d.table == {"binData": [base64.b64encode(raw).decode()]} and d.meta["encodings"] == {"binData": "base64"}
    assert dec({"binData": base64.urlsafe_b64encode(b"hi?>").decode()}).table == {"binData": ["hi?>"]}
    for bad in ("ab$c", "a", "abc d", "ab==c"):
        with pytest.raises(DecodeError, match="base64"):
            dec({"binData": bad})


def test_oip_rank3_is_one_column_of_nested_rows():
    data = list(range(2 * 2 * 3))
    body = {"inputs": [{"name": "img", "shape": [2, 2, 3], "datatype": "UINT8", "data": data}]}
    assert dec(body).table == {"img": [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]}


def test_oip_rank0_repeats_and_batch_mismatch_fails():
    body = {"inputs": [
        {"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]},
        {"name": "temperature", "shape": [], "datatype": "FP32", "data": [0.7]},
    ]}
    assert dec(body).table == {"x": [1.0, 2.0, 3.0], "temperature": [0.7, 0.7, 0.7]}
    body["inputs"][1] = {"name": "y", "shape": [2], "datatype": "FP32", "data": [1, 2]}
    with pytest.raises(DecodeError, match="batch sizes"):
        dec(body)


def test_oip_duplicate_names_get_suffixes():
    body = {"inputs": [
        {"name": "x", "shape": [1], "datatype": "INT64", "data": [1]},
        {"name": "x", "shape": [1], "datatype": "INT64", "data": [2]},
    ]}
    assert dec(body).table == {"x": [1], "x.1": [2]}


def test_oip_error_and_unsupported_forms():
    with pytest.raises(DecodeError, match="error response: model iris is not ready"):
        dec({"error": "model iris is not ready"}, "response")
    with pytest.raises(DecodeError, match="binary tensor data"):
        dec({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 4}}]})
    with pytest.raises(DecodeError, match="no name"):
        dec({"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]})
    with pytest.raises(DecodeError) as info:
        dec({"outputs": []}, "request", protocol="oip-v2")
    assert info.value.protocol == "oip-v2" and "inputs" in info.value.expected


# --------------------------------------------------------------------------- Seldon v1


def test_seldon_ndarray_with_names_and_meta():
    body = {
        "meta": {"puid": "p-1", "tags": {"team": "x"}},
        "data": {"names": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                 "ndarray": [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]},
    }
    d = dec(body)
    assert d.protocol == "seldon-v1"
    assert d.table == {"sepal_length": [5.1, 6.2], "sepal_width": [3.5, 2.9],
                       "petal_length": [1.4, 4.3], "petal_width": [0.2, 1.3]}
    assert d.meta["id"] == "p-1" and d.meta["kind"] == "ndarray" and d.meta["names"][0] == "sepal_length"


def test_seldon_response_and_unnamed_ndarray():
    body = {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.9, 0.1]]},
            "meta": {"requestPath": {"classifier": "seldonio/sklearnserver:1.17.1"}}}
    d = dec(body, "response")
    assert d.table == {"t:0": [0.9], "t:1": [0.1]}
    assert d.meta["meta"]["requestPath"]
    assert dec({"data": {"ndarray": [[1, "a", True, None]]}}).table == {"f0": [1], "f1": ["a"], "f2": [True], "f3": [None]}
    assert dec({"data": {"ndarray": ["a", "b"]}}).table == {"f0": ["a", "b"]}
    assert dec({"data": {"ndarray": [[[1, 2]], [[3, 4]]]}}).table == {"f0": [[[1, 2]], [[3, 4]]]}


def test_seldon_tensor():
    body = {"data": {"names": ["a", "b", "c"], "tensor": {"shape": [2, 3], "values": [1, 2, 3, 4, 5, 6]}}}
    assert dec(body).table == {"a": [1.0, 4.0], "b": [2.0, 5.0], "c": [3.0, 6.0]}
    unnamed = {"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}}}
    assert dec(unnamed).table == {"f0": [1.0, 3.0], "f1": [2.0, 4.0]}
    with pytest.raises(DecodeError, match="needs 6"):
        dec({"data": {"tensor": {"shape": [2, 3], "values": [1, 2]}}})


def _tf(dtype, dims, **values):
    return {"data": {"tftensor": {"dtype": dtype, "tensorShape": {"dim": [{"size": str(d)} for d in dims]}, **values}}}


def test_seldon_tftensor_value_fields():
    assert dec(_tf("DT_FLOAT", [2, 2], floatVal=[1, 2, 3, 4])).table == {"f0": [1.0, 3.0], "f1": [2.0, 4.0]}
    assert dec(_tf("DT_DOUBLE", [2], doubleVal=["NaN", 2.5])).table == {"f0": [None, 2.5]}
    assert dec(_tf("DT_INT64", [2], int64Val=["9007199254740993", "-1"])).table == {"f0": [9007199254740993, -1]}
    assert dec(_tf("DT_INT32", [1, 2], intVal=[7, 8])).table == {"f0": [7], "f1": [8]}
    assert dec(_tf("DT_BOOL", [2], boolVal=[True, False])).table == {"f0": [True, False]}
    d = dec(_tf("DT_STRING", [2], stringVal=[b64(b"cat"), b64(b"\x80\x81")]))
    assert d.table == {"f0": [b64(b"cat"), b64(b"\x80\x81")]} and d.meta["encodings"] == {"f0": "base64"}
    d = dec(_tf("DT_STRING", [2], stringVal=[b64(b"cat"), b64("dög".encode())]))
    assert d.table == {"f0": ["cat", "dög"]} and d.meta["encodings"] == {"f0": "utf-8"}
    assert d.meta["tensors"] == [{"kind": "tftensor", "datatype": "BYTES", "shape": [2], "encoding": "utf-8"}]
    half = np.array([1.5, -2.0], dtype=np.float16).view(np.uint16).tolist()
    assert dec(_tf("DT_HALF", [2], halfVal=half)).table == {"f0": [1.5, -2.0]}
    bf16 = [int(np.array([x], dtype=np.float32).view(np.uint32)[0] >> 16) for x in (1.0, -0.5)]
    assert dec(_tf("DT_BFLOAT16", [2], halfVal=bf16)).table == {"f0": [1.0, -0.5]}
    # enum number and snake_case field names (preserving_proto_field_name=True)
    snake = {"data": {"tftensor": {"dtype": 1, "tensor_shape": {"dim": [{"size": 2}]}, "float_val": [1, 2]}}}
    assert dec(snake).table == {"f0": [1.0, 2.0]}


def test_seldon_tftensor_content_and_errors():
    raw = struct.pack("<4f", 1, 2, 3, 4)
    body = _tf("DT_FLOAT", [2, 2], tensorContent=b64(raw))
    body["data"]["names"] = ["x", "y"]
    assert dec(body).table == {"x": [1.0, 3.0], "y": [2.0, 4.0]}
    with pytest.raises(DecodeError, match="bytes"):
        dec(_tf("DT_FLOAT", [3], tensorContent=b64(raw)))
    with pytest.raises(DecodeError, match="needs 3"):
        dec(_tf("DT_FLOAT", [3], floatVal=[1]))
    with pytest.raises(DecodeError, match="dtype"):
        dec(_tf("DT_COMPLEX64", [1], floatVal=[1]))


def test_seldon_json_str_bin_data():
    assert dec({"jsonData": {"user": {"id": 7, "tier": "gold"}, "items": [1, 2]}}).table == {
        "user.id": [7], "user.tier": ["gold"], "items": [[1, 2]]
    }
    assert dec({"jsonData": [{"a": 1}, {"a": 2}]}).table == {"a": [1, 2]}
    assert dec({"jsonData": 3.5}).table == {"jsonData": [3.5]}
    assert dec({"strData": "hello world"}).table == {"strData": ["hello world"]}
    d = dec({"binData": b64(b"plain text"), "meta": {"puid": "z"}})
    assert d.table == {"binData": ["plain text"]} and d.meta["kind"] == "binData"
    assert dec({"binData": b64(b"\x00\xff")}).table == {"binData": [b64(b"\x00\xff")]}


def test_seldon_errors():
    with pytest.raises(DecodeError, match="2 names given for 3 columns"):
        dec({"data": {"names": ["a", "b"], "ndarray": [[1, 2, 3]]}})
    with pytest.raises(DecodeError, match="ragged"):
        dec({"data": {"ndarray": [[1, 2], [3]]}})
    with pytest.raises(DecodeError, match="several"):
        dec({"data": {"ndarray": [[1]], "tensor": {"shape": [1], "values": [1]}}})
    with pytest.raises(DecodeError, match="error response: 500 boom"):
        dec({"status": {"code": 500, "info": "boom", "status": "FAILURE"}}, "response")
    with pytest.raises(DecodeError, match="strData"):
        dec({"strData": 5}, protocol="seldon-v1")


# --------------------------------------------------------------------------- KServe v1 / TF Serving


def test_kserve_instances_rows():
    assert dec({"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}).table == {
        "f0": [6.8, 6.0], "f1": [2.8, 3.4], "f2": [4.8, 4.5], "f3": [1.4, 1.6]
    }
    assert dec({"instances": [1, 2, 3]}).table == {"f0": [1, 2, 3]}
    d = dec({"signature_name": "serving_default",
             "instances": [{"age": 31, "tags": [1, 2]}, {"age": 45, "tags": [3, 4], "extra": "x"}]})
    assert d.protocol == "kserve-v1"
    assert d.table == {"age": [31, 45], "tags_0": [1, 3], "tags_1": [2, 4], "extra": [None, "x"]}
    assert d.meta == {"kind": "instances", "signature_name": "serving_default"}


def test_kserve_tf_b64_convention():
    d = dec({"instances": [{"b64": b64(b"hello")}, {"b64": b64(b"\x89PNG")}]})
    assert d.table == {"f0": [b64(b"hello"), b64(b"\x89PNG")]} and d.meta["encodings"] == {"f0": "base64"}
    d = dec({"instances": [{"image": {"b64": b64(b"abc")}, "key": 1}]})
    assert d.table == {"image": ["abc"], "key": [1]}
    d = dec({"inputs": {"image": [{"b64": b64(b"abc")}], "key": [1]}})
    assert d.table == {"image": ["abc"], "key": [1]}


def test_tfserving_columnar_inputs_match_row_format():
    rows = {"instances": [{"x": [1.0, 2.0], "y": "a"}, {"x": [3.0, 4.0], "y": "b"}]}
    cols = {"inputs": {"x": [[1.0, 2.0], [3.0, 4.0]], "y": ["a", "b"]}}
    assert dec(rows).table == dec(cols).table == {"x_0": [1.0, 3.0], "x_1": [2.0, 4.0], "y": ["a", "b"]}
    assert dec({"inputs": [[1, 2], [3, 4]]}).table == {"f0": [1, 3], "f1": [2, 4]}
    assert dec({"inputs": {"x": [1, 2], "k": 5}}).table == {"x": [1, 2], "k": [5, 5]}


def test_kserve_responses():
    assert dec({"predictions": [[0.1, 0.9], [0.8, 0.2]]}, "response").table == {"f0": [0.1, 0.8], "f1": [0.9, 0.2]}
    assert dec({"predictions": [1, 0]}, "response").table == {"f0": [1, 0]}
    assert dec({"predictions": [{"label": "cat", "score": 0.9}]}, "response").table == {"label": ["cat"], "score": [0.9]}
    d = dec({"outputs": {"scores": [[0.1, 0.9]], "classes": [1]}}, "response")
    assert d.table == {"scores_0": [0.1], "scores_1": [0.9], "classes": [1]} and d.meta["kind"] == "outputs"
    with pytest.raises(DecodeError, match="error response"):
        dec({"error": "Failed to process element: 0 of 'instances' list."}, "response")
    with pytest.raises(DecodeError, match="both"):
        dec({"instances": [1], "inputs": [1]}, protocol="kserve-v1")
    with pytest.raises(DecodeError, match="mixes objects"):
        dec({"instances": [{"a": 1}, 2]})


# --------------------------------------------------------------------------- MLflow


def test_mlflow_dataframe_split():
    body = {"dataframe_split": {"columns": ["age", "city"], "index": [10, 11], "data": [[31, "Oslo"], [45, "Lima"]]}}
    d = dec(body)
    assert d.protocol == "mlflow"
    assert d.table == {"age": [31, 45], "city": ["Oslo", "Lima"]}
    assert d.meta == {"kind": "dataframe_split", "index": [10, 11]}
    assert dec({"dataframe_split": {"data": [[1, 2], [3, 4]]}}).table == {"f0": [1, 3], "f1": [2, 4]}
    with pytest.raises(DecodeError, match="2 values"):
        dec({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3]]}})
    with pytest.raises(DecodeError, match="index"):
        dec({"dataframe_split": {"columns": ["a"], "index": [1], "data": [[1], [2]]}})


def test_mlflow_other_request_forms_and_responses():
    assert dec({"dataframe_records": [{"a": 1, "b": "x"}, {"a": 2}]}).table == {"a": [1, 2], "b": ["x", None]}
    d = dec({"inputs": {"x": [[1, 2]]}, "params": {"temperature": 0.5}})
    assert d.protocol == "mlflow" and d.meta["params"] == {"temperature": 0.5}
    assert d.table == {"x_0": [1], "x_1": [2]}
    d = dec({"instances": [[1, 2]]}, protocol="mlflow")
    assert d.protocol == "mlflow" and d.table == {"f0": [1], "f1": [2]}
    assert dec({"predictions": [0, 1]}, "response", protocol="mlflow").table == {"f0": [0, 1]}
    assert dec([{"a": 1}], "response", protocol="mlflow").table == {"a": [1]}
    assert dec({"a": [1, 2], "b": [3, 4]}, "response", protocol="mlflow").table == {"a": [1, 2], "b": [3, 4]}
    with pytest.raises(DecodeError, match="BAD_REQUEST"):
        dec({"error_code": "BAD_REQUEST", "message": "bad input"}, "response")
    with pytest.raises(DecodeError, match="several"):
        dec({"dataframe_records": [], "instances": []}, protocol="mlflow")


# --------------------------------------------------------------------------- plain JSON


def test_json_records():
    d = dec({"user": {"id": 1, "geo": {"lat": 1.5}}, "score": 0.3, "tags": ["a"], "empty": {}})
    assert d.protocol == "json"
    assert d.table == {"user.id": [1], "user.geo.lat": [1.5], "score": [0.3], "tags": [["a"]], "empty": [None]}
    assert dec([{"a": 1}, {"b": 2}], "response").table == {"a": [1, None], "b": [None, 2]}
    assert dec([0.1, 0.7], "response").table == {"f0": [0.1, 0.7]}
    assert dec([], "response").table == {}
    assert dec({}).table == {}


def test_json_errors_name_what_was_expected():
    for body in (b"42", b'"text"', b"null", b'[{"a": 1}, 3]'):
        with pytest.raises(DecodeError) as info:
            decode(body, part="request")
        assert info.value.expected is not None
        for proto in ("oip-v2", "seldon-v1", "kserve-v1", "mlflow", "json"):
            assert proto in info.value.expected


# --------------------------------------------------------------------------- detection and overrides


@pytest.mark.parametrize(
    ("body", "part", "protocol"),
    [
        (OIP_MIXED, "request", "oip-v2"),
        ({"model_name": "m", "outputs": []}, "response", "oip-v2"),
        ({"model_name": "m", "id": "1", "outputs": [{"name": "o", "shape": [1], "datatype": "FP32", "data": [1]}]},
         "response", "oip-v2"),
        ({"data": {"names": ["a"], "ndarray": [[1]]}}, "response", "seldon-v1"),
        ({"strData": "x"}, "request", "seldon-v1"),
        ({"instances": [[1]]}, "request", "kserve-v1"),
        ({"inputs": {"a": [1]}}, "request", "kserve-v1"),
        ({"inputs": [1, 2]}, "request", "kserve-v1"),
        ({"predictions": [1]}, "response", "kserve-v1"),
        ({"outputs": [[1, 2]]}, "response", "kserve-v1"),
        ({"dataframe_records": [{"a": 1}]}, "request", "mlflow"),
        ({"inputs": [1], "params": {}}, "request", "mlflow"),
        ({"predictions": [1]}, "request", "json"),  # part matters
        ({"instances": [1]}, "response", "json"),
        ({"inputs": "hello", "user": 3}, "request", "json"),  # not a KServe shape: a plain record
        ({"data": 5, "x": 1}, "request", "json"),
        ([{"a": 1}], "request", "json"),
    ],
)
def test_detection(body, part, protocol):
    assert detect_protocol(body, part) == protocol
    assert detect_protocol(orjson.dumps(body), part) == protocol
    assert dec(body, part).protocol == protocol


def test_protocol_override_aliases_and_errors():
    body = {"instances": [[1, 2]]}
    assert dec(body, protocol="tfserving").protocol == "kserve-v1"
    assert dec(body, protocol="auto").protocol == "kserve-v1"
    assert dec(body, protocol="json").table == {"instances": [[[1, 2]]]}
    with pytest.raises(DecodeError, match="unknown protocol"):
        dec(body, protocol="soap")
    with pytest.raises(DecodeError) as info:
        dec(body, protocol="seldon-v1")
    assert info.value.protocol == "seldon-v1" and "ndarray" in info.value.expected
    with pytest.raises(DecodeError, match="part"):
        decode(b"{}", part="both")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bodies


def test_bad_bodies_raise_decode_error():
    for body in (b"", b"   ", b"\xff\xfe", b"{", b'{"a": NaNa}', b"[" * 100_000, "\ud800", b'{"a": 1e400}',
                 b'{"a": NaN, "b": 1e400}', b'[NaN, "\\ud800"]', b"[" * 5000 + b"NaN" + b"]" * 5000):
        with pytest.raises(DecodeError):
            decode(body, part="request")


def test_python_json_nan_and_infinity_literals_are_read():
    """Not JSON, but what Python's json writes for float NaN/inf (so what Python clients send):
    NaN is a missing cell as the "NaN" text of proto3 JSON is; the rest reads as orjson would."""
    body = b'{"a": NaN, "b": -Infinity, "c": "NaN", "d": 18446744073709551616, "e": 2, "f": "d\xc3\xb6g"}'
    assert dec(body).table == {"a": [None], "b": [-math.inf], "c": ["NaN"], "d": [float(2**64)], "e": [2],
                               "f": ["d\u00f6g"]}
    assert decode(b'{"a": NaN}\n{"a": 1.5}\n', part="request", content_type="application/x-ndjson").table == {
        "a": [None, 1.5]}
    with pytest.raises(codecs.BudgetExceeded, match="max_depth"):
        decode(b'{"x": NaN, "y": ' + b"[" * 5000 + b"]" * 5000 + b"}", part="request")


def test_deeply_nested_inputs_are_refused_fast():
    t0 = time.thread_time()
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(DecodeError):
        decode({"instances": deep}, part="request")  # Python objects
    nested = b'{"a":' * 900 + b"1" + b"}" * 900
    with pytest.raises(DecodeError, match="deeper"):
        decode(nested, part="request")
    lists = b'{"instances": ' + b"[" * 900 + b"1" + b"]" * 900 + b"}"
    with pytest.raises(DecodeError, match="deeper"):
        decode(lists, part="request")
    assert time.thread_time() - t0 < 2.0


def test_content_types():
    assert decode(b'{"a": 1}\n{"a": 2}\n', part="request", content_type="application/x-ndjson").table == {"a": [1, 2]}
    latin = '{"city": "Zürich"}'.encode("latin-1")
    assert decode(latin, part="request", content_type="text/plain; charset=ISO-8859-1").table == {"city": ["Zürich"]}
    assert decode("\ufeff" + '{"a": 1}', part="request").table == {"a": [1]}
    with pytest.raises(DecodeError, match="binary body"):
        decode(b"\x08\x01", part="request", content_type="application/x-protobuf")
    with pytest.raises(DecodeError, match=r"cannot decode body as no-such"):
        decode(b"{}", part="request", content_type="application/json; charset=no-such")


def test_python_objects_from_the_sdk():
    body = {"inputs": [{"name": "x", "shape": (2, 2), "datatype": "FP32", "data": np.arange(4, dtype=np.float32)}]}
    assert decode(body, part="request").table == {"x_0": [0.0, 2.0], "x_1": [1.0, 3.0]}
    assert decode({"strData": b"raw"}, part="request").table == {"strData": ["raw"]}
    with pytest.raises(DecodeError, match="serialisable"):
        decode({"instances": [object()]}, part="request")


def test_decoded_tables_are_json_friendly():
    for body, part in ((OIP_MIXED, "request"), ({"instances": [{"a": {"b64": b64(b"\x00")}}]}, "request")):
        d = dec(body, part)
        assert orjson.loads(orjson.dumps(d.table)) == d.table


# --------------------------------------------------------------------------- encode


def test_encode_oip_forms():
    t = {"a": [1, 2], "b": [0.5, None], "c": ["x", "y"], "d": [True, False], "v": [[1, 2], [3, 4]]}
    req = orjson.loads(encode(t, "oip-v2", "request", id="r1"))
    assert req["id"] == "r1" and req["parameters"] == {"content_type": "pd"}
    assert [(i["name"], i["datatype"], i["shape"]) for i in req["inputs"]] == [
        ("a", "INT64", [2]), ("b", "FP64", [2]), ("c", "BYTES", [2]), ("d", "BOOL", [2]), ("v", "INT64", [2, 2])
    ]
    assert decode(encode(t, "oip-v2", "request"), part="request").table == t
    resp = orjson.loads(encode({"p": [1]}, "oip-v2", "response", model_name="iris", model_version="2", id="r1"))
    assert (resp["model_name"], resp["model_version"], resp["id"]) == ("iris", "2", "r1")
    assert "parameters" not in orjson.loads(encode({"p": [1]}, "oip-v2", "request", content_type=None))


def test_encode_other_forms():
    t = {"a": [1, 2], "b": ["x", "y"]}
    assert orjson.loads(encode(t, "kserve-v1", "response", format="columns")) == {"outputs": t}
    assert decode(encode(t, "kserve-v1", "request", format="columns"), part="request").table == t
    for fmt in ("split", "records", "instances", "inputs"):
        assert decode(encode(t, "mlflow", "request", format=fmt), part="request", protocol="mlflow").table == t
    num = {"a": [1.5, 2.0], "b": [3.0, 4.0]}
    assert decode(encode(num, "seldon-v1", "request", kind="tensor"), part="request").table == num
    body = orjson.loads(encode(t, "seldon-v1", "response", meta={"puid": "x"}))
    assert body["meta"] == {"puid": "x"} and body["data"]["names"] == ["a", "b"]


def test_encode_accepts_python_values_from_the_sdk():
    t = {"x": np.array([1.5, 2.5], dtype=np.float32), "n": [np.int64(3), np.int64(4)],
         "when": [datetime(2024, 1, 2, tzinfo=UTC)] * 2, "raw": [b"ab", b"\xff"]}
    d = decode(encode(t, "kserve-v1", "request"), part="request")
    assert d.table == {"x": [1.5, 2.5], "n": [3, 4], "when": ["2024-01-02T00:00:00+00:00"] * 2,
                       "raw": ["ab", b64(b"\xff")]}
    assert decode(encode(t, "oip-v2", "request"), part="request").table == d.table


def test_encode_refuses_what_it_cannot_express():
    with pytest.raises(DecodeError, match="unequal"):
        encode({"a": [1], "b": [1, 2]}, "json", "request")
    with pytest.raises(DecodeError, match="mixing"):
        encode({"a": [1, "x"]}, "oip-v2", "request")
    with pytest.raises(DecodeError, match="numbers"):
        encode({"a": ["x"]}, "seldon-v1", "request", kind="tensor")
    with pytest.raises(DecodeError, match="cannot encode"):
        encode({"a": [1]}, "json", "request", bogus=1)
    with pytest.raises(DecodeError, match="format"):
        encode({"a": [1]}, "kserve-v1", "request", format="xml")

"""The MLflow scoring server and KServe v1 / TF Serving codecs' edges (inferwatch/codecs/_mlflow.py,
_kserve.py): the cases `make mutation` showed no test held. MLflow's ``dataframe_split`` and
``dataframe_records`` bodies are what pandas writes (``to_json(orient="split" | "records")``, the
calls MLflow's own client makes); expected tables follow from the documented shapes, by hand."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from inferwatch.codecs._kserve import CODEC as KSERVE
from inferwatch.codecs._kserve import EXPECTED as KEXP
from inferwatch.codecs._kserve import decode_body
from inferwatch.codecs._mlflow import CODEC as MLFLOW
from inferwatch.codecs._mlflow import EXPECTED as MEXP
from inferwatch.codecs.base import Decoded
from inferwatch.errors import DecodeError

M, K = "mlflow", "kserve-v1"
FORMS = "dataframe_split, dataframe_records, instances, inputs"


def err(fn, *args, **kw):
    with pytest.raises(DecodeError) as info:
        fn(*args, **kw)
    return info.value.protocol, info.value.reason, info.value.expected


FRAME = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=[10, 11])


def test_dataframe_split_as_pandas_writes_it():
    split = json.loads(FRAME.to_json(orient="split"))
    assert MLFLOW.decode({"dataframe_split": split, "params": {"t": 1}}, "request") == Decoded(
        M, {"a": [1, 2], "b": ["x", "y"]}, {"kind": "dataframe_split", "params": {"t": 1}, "index": [10, 11]})
    # without columns: f0 .. f{k-1} (f0 alone for one)
    assert MLFLOW.decode({"dataframe_split": {"data": [[1, 2], [3, 4]]}}, "request").table == {
        "f0": [1, 3], "f1": [2, 4]}
    assert MLFLOW.decode({"dataframe_split": {"data": [[1], [3]]}}, "request").table == {"f0": [1, 3]}
    assert MLFLOW.decode({"dataframe_split": {"data": []}}, "request").table == {}
    assert MLFLOW.decode({"dataframe_split": {"columns": ["a", 2, 1.5], "data": []}}, "request").table == {
        "a": [], "2": [], "1.5": []}
    assert MLFLOW.decode({"dataframe_split": {"columns": ["a"], "data": [[{"k": [1]}]], "index": None},
                          "params": None}, "request") == Decoded(M, {"a": [{"k": [1]}]}, {"kind": "dataframe_split"})


def test_dataframe_records_as_pandas_writes_them():
    records = json.loads(FRAME.to_json(orient="records"))
    assert MLFLOW.decode({"dataframe_records": records}, "request") == Decoded(
        M, {"a": [1, 2], "b": ["x", "y"]}, {"kind": "dataframe_records"})
    assert MLFLOW.decode({"dataframe_records": []}, "request") == Decoded(M, {}, {"kind": "dataframe_records"})


def test_tf_serving_forms_and_responses():
    assert MLFLOW.decode({"instances": [{"a": 1}, {"a": 2}]}, "request") == Decoded(M, {"a": [1, 2]},
                                                                                   {"kind": "instances"})
    assert MLFLOW.decode({"inputs": {"a": [1, 2]}}, "request") == Decoded(M, {"a": [1, 2]}, {"kind": "inputs"})
    assert MLFLOW.decode({"predictions": [1, 2]}, "response") == Decoded(M, {"f0": [1, 2]}, {"kind": "predictions"})
    assert MLFLOW.decode({"predictions": {"a": [1, 2]}}, "response") == Decoded(M, {"a": [1, 2]},
                                                                               {"kind": "predictions"})
    assert MLFLOW.decode([[1, 2], [3, 4]], "response") == Decoded(M, {"f0": [1, 3], "f1": [2, 4]}, {"kind": "list"})
    assert MLFLOW.decode({"a": [1, 2]}, "response") == Decoded(M, {"a": [1, 2]}, {"kind": "columns"})
    assert MLFLOW.decode({"predictions": [1], "error_code": "X"}, "response").table == {"f0": [1]}


@pytest.mark.parametrize("body, part, reason, expected", [
    ([1], "request", "request is a list of 1", MEXP["request"]),
    ({"params": {}}, "request", f"request has none of {FORMS}", MEXP["request"]),
    ({"instances": [], "inputs": []}, "request", f"request has several of {FORMS}", MEXP["request"]),
    ({"dataframe_split": [1]}, "request", "dataframe_split is a list of 1", '{"columns", "data"}'),
    ({"dataframe_split": {"data": [1]}}, "request", "dataframe_split.data is not a list of row lists", "[[...], ...]"),
    ({"dataframe_split": {"data": "x"}}, "request", "dataframe_split.data is not a list of row lists", "[[...], ...]"),
    ({"dataframe_split": {"data": [[1], [1, 2]]}}, "request", "dataframe_split.data rows have different lengths", None),
    ({"dataframe_split": {"columns": [True], "data": []}}, "request", "dataframe_split.columns is not a list of names",
     "a list of strings"),
    ({"dataframe_split": {"columns": "a", "data": []}}, "request", "dataframe_split.columns is not a list of names",
     "a list of strings"),
    ({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}, "request",
     "dataframe_split.data rows do not all have 1 values", None),
    ({"dataframe_split": {"data": [[1]], "index": [1, 2]}}, "request",
     "dataframe_split.index does not have one entry per row", None),
    ({"dataframe_split": {"data": [[1]], "index": 1}}, "request",
     "dataframe_split.index does not have one entry per row", None),
    ({"dataframe_records": {"a": 1}}, "request", "dataframe_records is an object with keys ['a']", "a list of objects"),
    ({"dataframe_records": [{"a": 1}, [2]]}, "request", "dataframe_records holds non-objects", "a list of objects"),
    ({"error_code": "BAD_REQUEST", "message": "m" * 600}, "response", "error response: BAD_REQUEST " + "m" * 500, None),
    ({"error_code": 1}, "response", "error response: 1 None", None),
    ("x", "response", "response is a string", MEXP["response"]),
    ({}, "response", "response is an empty object", MEXP["response"]),
    ({"a": [1], "b": 2}, "response", "response is an object with keys ['a', 'b']", MEXP["response"]),
])
def test_mlflow_errors(body, part, reason, expected):
    assert err(MLFLOW.decode, body, part) == (M, reason, expected)


@pytest.mark.parametrize("body, part, yes", [
    ({"dataframe_split": {}}, "request", True), ({"dataframe_split": []}, "request", False),
    ({"dataframe_records": []}, "request", True), ({"dataframe_records": {}}, "request", False),
    ({"params": {}, "instances": []}, "request", True), ({"params": {}, "inputs": []}, "request", True),
    ({"instances": []}, "request", False), ({"params": {}}, "request", False),
    ({"dataframe_split": {}}, "response", False), ([{"dataframe_split": {}}], "request", False)])
def test_mlflow_matches(body, part, yes):
    assert MLFLOW.matches(body, part) is yes


def test_mlflow_encode_every_format():
    t = {"a": [1, 2], "b": ["x", "y"]}
    assert MLFLOW.encode(t, "request") == {"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}}
    assert MLFLOW.encode(t, "request", format="records", params={"p": 1}) == {
        "dataframe_records": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], "params": {"p": 1}}
    assert MLFLOW.encode(t, "request", format="instances") == {"instances": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}
    assert MLFLOW.encode(t, "request", format="inputs") == {"inputs": t}
    assert MLFLOW.encode(t, "response", format="bogus") == {"predictions": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}
    assert err(MLFLOW.encode, t, "request", format="csv") == (M, "unknown format 'csv'",
                                                              "split, records, instances or inputs")
    # what the codec writes, pandas reads back as the same frame
    split = MLFLOW.encode(t, "request")["dataframe_split"]
    assert pd.DataFrame(split["data"], columns=split["columns"]).to_dict(orient="list") == t


# --- KServe v1 / TF Serving -----------------------------------------------------------------------

def test_kserve_forms():
    assert KSERVE.decode({"instances": [{"x": {"b64": "aGk="}}], "signature_name": "s"}, "request") == Decoded(
        K, {"x": ["hi"]}, {"kind": "instances", "signature_name": "s"})
    assert KSERVE.decode({"inputs": {"a": [1], "b": [2]}, "signature_name": None}, "request") == Decoded(
        K, {"a": [1], "b": [2]}, {"kind": "inputs"})
    assert KSERVE.decode({"predictions": [[1, 2]]}, "response") == Decoded(K, {"f0": [1], "f1": [2]},
                                                                          {"kind": "predictions"})
    assert KSERVE.decode({"outputs": [[1, 2]]}, "response") == Decoded(K, {"f0": [1], "f1": [2]}, {"kind": "outputs"})
    assert KSERVE.decode({"predictions": [1], "error": "e"}, "response").table == {"f0": [1]}
    assert decode_body({"predictions": {"a": [1]}}, "response", "p") == ({"a": [1]}, "predictions")


@pytest.mark.parametrize("body, part, reason, expected", [
    ([1], "request", "request is a list of 1", KEXP["request"]),
    ({"error": "e" * 600}, "response", "error response: " + "e" * 500, None),
    ({"instances": [], "inputs": []}, "request", "both 'instances' and 'inputs' given", KEXP["request"]),
    ({"predictions": [], "outputs": []}, "response", "both 'predictions' and 'outputs' given", KEXP["response"]),
    ({"x": 1}, "request", "request has neither 'instances' nor 'inputs'", KEXP["request"]),
    ({"x": 1}, "response", "response has neither 'predictions' nor 'outputs'", KEXP["response"]),
])
def test_kserve_errors(body, part, reason, expected):
    assert err(KSERVE.decode, body, part) == (K, reason, expected)


def test_decode_body_names_the_protocol_it_is_given():
    assert err(decode_body, {"x": 1}, "request", "mlflow") == ("mlflow", "request has neither 'instances' nor 'inputs'",
                                                               KEXP["request"])


@pytest.mark.parametrize("body, part, yes", [
    ({"instances": []}, "request", True), ({"instances": {}}, "request", True), ({"inputs": []}, "request", True),
    ({"inputs": {}}, "request", True), ({"instances": 1}, "request", False), ({"predictions": []}, "request", False),
    ({"predictions": []}, "response", True), ({"outputs": {}}, "response", True), ({"instances": []}, "response", False),
    ([{"instances": []}], "request", False)])
def test_kserve_matches(body, part, yes):
    assert KSERVE.matches(body, part) is yes


def test_kserve_encode():
    t = {"a": [1, 2]}
    assert KSERVE.encode(t, "request") == {"instances": [{"a": 1}, {"a": 2}]}
    assert KSERVE.encode(t, "response", signature_name="s") == {"signature_name": "s",
                                                                "predictions": [{"a": 1}, {"a": 2}]}
    assert KSERVE.encode(t, "request", format="columns") == {"inputs": {"a": [1, 2]}}
    assert KSERVE.encode(t, "response", format="columns") == {"outputs": {"a": [1, 2]}}
    assert err(KSERVE.encode, t, "request", format="x") == (K, "unknown format 'x'", "rows or columns")


def test_mlflow_response_errors_name_mlflow_and_the_response():
    assert err(MLFLOW.decode, {"predictions": [1], "outputs": [2]}, "response") == (
        M, "both 'predictions' and 'outputs' given", KEXP["response"])
    assert err(MLFLOW.decode, [[1, {"a": 1}]], "response") == (
        M, "response holds an object with keys ['a'] where a scalar was expected", None)
    assert err(MLFLOW.decode, {"a": [1, {"b": 1}]}, "response") == (
        M, 'response.a mixes {"b64": ...} objects with other values', "one kind per tensor")
    # a list of records applies the tensor rule to list values (TF Serving named outputs)
    assert MLFLOW.decode([{"x": [1, 2]}, {"x": [3, 4]}], "response").table == {"x_0": [1, 3], "x_1": [2, 4]}


def test_encoders_name_their_protocol():
    assert err(KSERVE.encode, [1], "request") == (K, "cannot encode list", "a table: dict of column -> list")
    assert err(MLFLOW.encode, [1], "request") == (M, "cannot encode list", "a table: dict of column -> list")


def test_split_cells_are_bounded_in_depth():
    from inferwatch.codecs.limits import Budget, BudgetExceeded, session
    with session(Budget(max_depth=2)), pytest.raises(BudgetExceeded):
        MLFLOW.decode({"dataframe_split": {"columns": ["a"], "data": [[[[1]]]]}}, "request")


@pytest.mark.parametrize("body, part, fragment", [
    ({"inputs": {"a": [[1], [1, 2]]}}, "request", "inputs.a"),
    ({"outputs": [[1], [1, 2]]}, "response", "outputs"),
    ({"instances": [[1], [1, 2]]}, "request", "instances"),
    ({"predictions": {"a": [[1], [1, 2]]}}, "response", "predictions.a"),
])
def test_kserve_errors_name_the_protocol_and_the_field(body, part, fragment):
    p, reason, _ = err(KSERVE.decode, body, part)
    assert p == K and fragment in reason, reason


def test_mlflow_inner_errors_name_mlflow():
    from inferwatch.codecs.limits import Budget, BudgetExceeded, session
    with session(Budget(max_depth=2)):
        for body in ({"dataframe_split": {"columns": ["a"], "data": [[[[1]]]]}},
                     {"dataframe_records": [{"a": {"b": {"c": 1}}}]}):
            with pytest.raises(BudgetExceeded) as info:
                MLFLOW.decode(body, "request")
            assert info.value.protocol == M
    assert err(MLFLOW.decode, {"instances": [[1], [1, 2]]}, "request")[0] == M

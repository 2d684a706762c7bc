"""Codec regressions on bytes made by the real client libraries' own code (tests/realclients.py),
and the per-request decode budget."""

from __future__ import annotations

import base64

import numpy as np
import orjson
import pandas as pd
import pytest

import inferwatch.codecs._tables as tables
from inferwatch.codecs import Budget, BudgetExceeded, decode
from tests import realclients as rc

# --------------------------------------------------------------------------- Seldon Core's wrapper


class _Model:
    """A user model as seldon-core's wrapper calls it; ``answer`` is what its predict returns."""

    def __init__(self, answer):
        self.answer = answer

    def predict(self, X, names):
        return self.answer


SELDON_REQ = {"data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0], [3.0, 4.0]]}}


def test_seldon_wrapper_1d_prediction_with_empty_names_is_one_unnamed_column():
    pred = np.array([1, 0])  # an sklearn predict
    body = rc.seldon_response(_Model(pred), SELDON_REQ, pred)
    assert orjson.loads(body)["data"]["names"] == []  # what the wrapper really sends
    d = decode(body, part="response")
    assert d.protocol == "seldon-v1" and d.table == {"f0": pred.tolist()}


def test_seldon_wrapper_1d_tensor_prediction_with_empty_names():
    req = {"data": {"tensor": {"shape": [2, 2], "values": [1.0, 2.0, 3.0, 4.0]}}}
    pred = np.array([0.25, 0.75])
    body = rc.seldon_response(_Model(pred), req, pred)
    assert orjson.loads(body)["data"]["tensor"]["shape"] == [2]
    d = decode(body, part="response")
    assert d.table == {"f0": pred.tolist()}
    assert d.meta["tensors"] == [{"kind": "tensor", "datatype": "FP64", "shape": [2]}]


def test_seldon_wrapper_list_of_dicts_is_an_ndarray_of_objects_read_as_records():
    answer = [{"label": "cat", "score": 0.9}, {"label": "dog", "score": 0.4, "extra": True}]
    body = rc.seldon_response(_Model(answer), SELDON_REQ, answer)
    assert orjson.loads(body)["data"]["ndarray"] == answer
    d = decode(body, part="response")
    assert d.table == {"label": ["cat", "dog"], "score": [0.9, 0.4], "extra": [None, True]}


def test_seldon_wrapper_2d_predict_proba_keeps_its_names():
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])
    model = _Model(proba)
    model.class_names = ["no", "yes"]
    d = decode(rc.seldon_response(model, SELDON_REQ, proba), part="response")
    assert d.table == {"no": [0.9, 0.2], "yes": [0.1, 0.8]}


def test_seldon_nan_is_the_same_missing_cell_in_every_tensor_form():
    """One value, every form seldon-core's own protobuf classes write it in: proto3 JSON text
    ("NaN" in ``tensor.values``, ``doubleVal``, ``floatVal``), 16-bit patterns (``halfVal`` of
    DT_HALF and DT_BFLOAT16) and raw little-endian bytes (``tensorContent``). A NaN is a missing
    cell (``None``, as a JSON body's null and as MLServer's own codecs write NaN) in all of them."""
    values = [float("nan"), 1.5, float("-inf")]
    f16, f32 = np.array(values, dtype=np.float16), np.array(values, dtype=np.float32)
    bf16 = (f32.view(np.uint32) >> 16).astype(np.uint16)
    forms = {
        "tensor": rc.seldon_message(tensor={"shape": [3], "values": values}),
        "doubleVal": rc.seldon_message(tftensor=rc.tf_tensor("DT_DOUBLE", [3], double_val=values)),
        "floatVal": rc.seldon_message(tftensor=rc.tf_tensor("DT_FLOAT", [3], float_val=values)),
        "halfVal": rc.seldon_message(tftensor=rc.tf_tensor("DT_HALF", [3], half_val=f16.view(np.uint16).tolist())),
        "bf16 halfVal": rc.seldon_message(tftensor=rc.tf_tensor("DT_BFLOAT16", [3], half_val=bf16.tolist())),
        "f64 bytes": rc.seldon_message(tftensor=rc.tf_tensor("DT_DOUBLE", [3], tensor_content=np.array(values).tobytes())),
        "f32 bytes": rc.seldon_message(tftensor=rc.tf_tensor("DT_FLOAT", [3], tensor_content=f32.tobytes())),
        "f16 bytes": rc.seldon_message(tftensor=rc.tf_tensor("DT_HALF", [3], tensor_content=f16.tobytes())),
        "bf16 bytes": rc.seldon_message(tftensor=rc.tf_tensor("DT_BFLOAT16", [3], tensor_content=bf16.tobytes())),
    }
    assert b'"NaN"' in forms["tensor"] and b'"NaN"' in forms["doubleVal"]  # the text form really is text
    assert b"tensorContent" in forms["f16 bytes"] and b"halfVal" in forms["halfVal"]
    tables = {form: decode(body, part="request").table for form, body in forms.items()}
    assert tables == {form: {"f0": [None, 1.5, float("-inf")]} for form in forms}
    named = rc.seldon_message(names=["a", "b"], tftensor=rc.tf_tensor("DT_HALF", [2, 2], tensor_content=np.array(
        [[np.nan, 1.0], [2.0, np.nan]], dtype=np.float16).tobytes()))
    assert decode(named, part="request").table == {"a": [None, 2.0], "b": [1.0, None]}


def test_nan_from_python_json_clients_is_the_same_missing_cell():
    """seldon-core's wrapper and tritonclient write a float NaN with Python's json: a bare NaN
    literal (not JSON). The payload decodes, and the NaN is the missing cell the other forms give."""
    pred = np.array([np.nan, 1.5, -np.inf])
    body = rc.seldon_response(_Model(pred), SELDON_REQ, pred)
    assert b"NaN" in body and b'"NaN"' not in body
    assert decode(body, part="response").table == {"f0": [None, 1.5, float("-inf")]}
    body = rc.triton_request([("x", pred.astype(np.float32), "FP32"), ("y", pred.astype(np.float16), "FP16")])
    assert b"NaN" in body and b'"NaN"' not in body
    assert decode(body, part="request").table == {"x": [None, 1.5, float("-inf")], "y": [None, 1.5, float("-inf")]}


# --------------------------------------------------------------------------- MLServer codecs


def test_mlserver_base64_codec_column_says_how_it_is_stored():
    codecs, types = rc.mlserver()
    blobs = [b"\x89PNG\r\n", b"plain"]
    out = codecs.Base64Codec.encode_output("img", blobs)
    body = types.InferenceResponse(model_name="m", outputs=[out]).model_dump_json().encode()
    d = decode(body, part="response")
    assert d.meta["encodings"] == {"img": "base64"}
    assert [base64.b64decode(v) for v in d.table["img"]] == blobs  # every value, the same way
    text = [b"ok", "d\u00f6g".encode()]
    body = types.InferenceResponse(model_name="m", outputs=[codecs.Base64Codec.encode_output("t", text)]
                                   ).model_dump_json().encode()
    d = decode(body, part="response")
    assert d.meta["encodings"] == {"t": "utf-8"} and [v.encode() for v in d.table["t"]] == text


def test_mlserver_pandas_request_round_trips_with_datatypes_and_shapes():
    codecs, _ = rc.mlserver()
    df = pd.DataFrame({"age": [31, 45], "income": [5.5e4, 7.1e4], "city": ["Oslo", "Lima"]})
    body = codecs.PandasCodec.encode_request(df).model_dump_json().encode()
    d = decode(body, part="request")
    assert d.table == df.to_dict(orient="list") or d.table == {c: [[v] for v in df[c]] for c in df}
    assert {t["name"]: (t["datatype"], t["shape"]) for t in d.meta["tensors"]} == {
        "age": ("INT64", [2, 1]), "income": ("FP64", [2, 1]), "city": ("BYTES", [2, 1])}


def test_mlserver_pandas_json_columns_decode_to_their_values():
    """Object columns that are not all text (dicts, lists, mixed values) are what MLServer's
    PandasCodec sends as ``pd_json``: each element the JSON of one cell. They decode to the
    cells MLServer's own PandasCodec reads from the same bytes, not to their JSON text."""
    codecs, types = rc.mlserver()
    df = pd.DataFrame({"meta": [{"a": 1, "b": [True, None]}, [1, 2.5]], "mixed": ["x", 3],
                       "label": ["cat", "dog"], "n": [4, 5]})
    for use_bytes in (True, False):
        request = codecs.PandasCodec.encode_request(df, use_bytes=use_bytes).model_dump_json().encode()
        response = codecs.PandasCodec.encode_response("m", df, use_bytes=use_bytes).model_dump_json().encode()
        sent = orjson.loads(request)["inputs"]
        assert [t["parameters"]["content_type"] for t in sent if "parameters" in t] == ["pd_json", "pd_json", "str"]
        oracle = codecs.PandasCodec.decode_request(types.InferenceRequest.model_validate_json(request))
        expected = {c: [v.decode() if isinstance(v, bytes) else v for v in oracle[c]] for c in oracle}
        assert expected["meta"] == [{"a": 1, "b": [True, None]}, [1, 2.5]]  # the oracle really decodes them
        assert decode(request, part="request").table == expected
        assert decode(response, part="response").table == expected
        assert codecs.PandasCodec.decode_response(types.InferenceResponse.model_validate_json(response)).equals(oracle)


def test_mlserver_numpy_response_keeps_model_version():
    codecs, types = rc.mlserver()
    arr = np.array([[0.1, 0.9], [0.7, 0.3]], dtype=np.float32)
    body = types.InferenceResponse(model_name="m", model_version="v3",
                                   outputs=[codecs.NumpyCodec.encode_output("proba", arr)]).model_dump_json().encode()
    d = decode(body, part="response")
    assert d.meta["model_version"] == "v3"
    np.testing.assert_allclose([d.table["proba_0"], d.table["proba_1"]], arr.T, rtol=1e-6)


# --------------------------------------------------------------------------- KServe and Triton


def test_kserve_v2_infer_response_datatypes_shapes_and_version():
    it = rc.kserve_infer_type()
    out = it.InferOutput(name="predict", shape=[3], datatype="INT64")
    out.set_data_from_numpy(np.array([2, 0, 1]))
    rest, _ = it.InferResponse(model_name="iris", model_version="v3", infer_outputs=[out],
                               response_id="r-1").to_rest()
    d = decode(orjson.dumps(rest), part="response")
    assert d.table == {"predict": [2, 0, 1]}
    assert d.meta["model_version"] == "v3" and d.meta["id"] == "r-1"
    assert d.meta["tensors"] == [{"name": "predict", "datatype": "INT64", "shape": [3]}]


def test_tritonclient_request_fp16_uint64_bytes():
    x = np.array([[1.5, -2.0], [0.25, 8.0]], dtype=np.float16)
    n = np.array([2**64 - 1, 7], dtype=np.uint64)
    s = np.array([b"Oslo", b"Lima"], dtype=object)
    body = rc.triton_request([("x", x, "FP16"), ("n", n, "UINT64"), ("s", s, "BYTES")], "t-1")
    d = decode(body, part="request")
    assert d.table == {"x_0": [1.5, 0.25], "x_1": [-2.0, 8.0], "n": [2**64 - 1, 7], "s": ["Oslo", "Lima"]}
    assert [(t["name"], t["datatype"], t["shape"]) for t in d.meta["tensors"]] == [
        ("x", "FP16", [2, 2]), ("n", "UINT64", [2]), ("s", "BYTES", [2])]


# --------------------------------------------------------------------------- same-named tensors


class _CountingDict(dict):
    probes = 0

    def __contains__(self, key):
        type(self).probes += 1
        return super().__contains__(key)


@pytest.fixture
def probes(monkeypatch):
    """Counts name look-ups in every Columns built while the test runs."""
    original = tables.Columns.__init__

    def counting_init(self, protocol):
        original(self, protocol)
        self._cols = _CountingDict()

    monkeypatch.setattr(tables.Columns, "__init__", counting_init)
    _CountingDict.probes = 0
    return _CountingDict


@pytest.mark.parametrize("n", [2_000, 16_000])
def test_same_named_tensors_are_deduplicated_in_linear_work(probes, n):
    """16,000 tensors all named "x" (tritonclient builds the body): names x, x.1 .. x.15999, and
    the number of name look-ups grows linearly (it was N^2/2 = 128 million)."""
    body = rc.triton_request([("x", np.array([i], dtype=np.int32), "INT32") for i in range(n)])
    d = decode(body, part="request")
    assert list(d.table) == ["x", *(f"x.{i}" for i in range(1, n))]
    assert d.table[f"x.{n - 1}"] == [n - 1]
    assert probes.probes <= 3 * n


def test_seldon_names_all_the_same_are_linear_too(probes):
    n = 10_000
    body = orjson.dumps({"data": {"names": ["x"] * n, "ndarray": [list(range(n))]}})
    d = decode(body, part="request")
    assert len(d.table) == n and d.table[f"x.{n - 1}"] == [n - 1]
    assert probes.probes <= 3 * n


# --------------------------------------------------------------------------- the budget


def test_budget_columns_names_the_limit():
    body = rc.triton_request([(f"t{i}", np.array([i], dtype=np.int32), "INT32") for i in range(50)])
    decode(body, part="request", budget=Budget(max_columns=50))
    with pytest.raises(BudgetExceeded, match="max_columns") as err:
        decode(body, part="request", budget=Budget(max_columns=49))
    assert err.value.limit == "max_columns" and err.value.status == 413


def test_budget_time_is_checked_while_decoding():
    body = rc.triton_request([(f"t{i}", np.array([i], dtype=np.int32), "INT32") for i in range(10)])
    with pytest.raises(BudgetExceeded, match="max_seconds") as err:
        decode(body, part="request", budget=Budget(max_seconds=0.0))  # already over at the first check
    assert err.value.limit == "max_seconds"


@pytest.mark.parametrize("depth", [65, 255, 1023])
def test_budget_depth_in_cells_and_records(depth):
    """Built as text: orjson itself refuses to write more than 255 levels."""
    deep = b"[" * depth + b"1" + b"]" * depth
    nested = b'{"k":' * depth + b"1" + b"}" * depth
    for body in (b'{"instances": [{"a": %s}]}' % deep, b'[{"a": %s}]' % deep,
                 b'{"dataframe_records": [{"a": %s}]}' % deep, b'{"instances": [%s]}' % nested,
                 b'[%s]' % nested):
        with pytest.raises(BudgetExceeded, match="max_depth") as err:
            decode(body, part="request")
        assert err.value.status == 400


def test_budget_cells():
    with pytest.raises(BudgetExceeded, match="max_cells"):
        decode(b'{"instances": [[1, 2], [3, 4]]}', part="request", budget=Budget(max_cells=3))

"""Property-based tests of the codecs: encode/decode round trips, and fuzzing.

Fuzzing checks the one promise the codecs make about bad input: whatever the bytes or
JSON, :func:`decode` returns a valid table or raises :class:`DecodeError` — never another
exception, never the codec's own safety net (which would mean a codec missed a check),
and never a long stall.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferwatch.codecs import PROTOCOLS, Decoded, decode, detect_protocol, encode
from inferwatch.errors import DecodeError

SLOW_CALL_S = 5.0  # CPU seconds of this thread per decode (not wall clock: load elsewhere cannot fail it); catches hangs

# "b64" alone is TF Serving's binary marker ({"b64": ...} objects), so a one-column table
# named "b64" is ambiguous in kserve-v1 row format; every other identifier is fair game.
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True).filter(lambda n: n != "b64")
column_values = {
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "str": st.text(max_size=20),
    "bool": st.booleans(),
}


@st.composite
def tables(draw: st.DrawFn) -> dict[str, list[Any]]:
    cols = draw(st.lists(names, min_size=1, max_size=8, unique=True))
    n = draw(st.integers(1, 20))
    return {
        c: draw(st.lists(column_values[draw(st.sampled_from(sorted(column_values)))], min_size=n, max_size=n))
        for c in cols
    }


# (protocol, part, encode options, protocol auto-detection finds)
ROUND_TRIPS: list[tuple[str, str, dict[str, Any], str]] = [
    ("oip-v2", "request", {}, "oip-v2"),
    ("oip-v2", "request", {"content_type": None, "id": "r1"}, "oip-v2"),
    ("oip-v2", "response", {"id": "r1", "model_version": "3"}, "oip-v2"),
    ("seldon-v1", "request", {}, "seldon-v1"),
    ("seldon-v1", "response", {"meta": {"puid": "p"}}, "seldon-v1"),
    ("seldon-v1", "request", {"kind": "jsonData"}, "seldon-v1"),
    ("kserve-v1", "request", {}, "kserve-v1"),
    ("kserve-v1", "response", {}, "kserve-v1"),
    ("kserve-v1", "request", {"format": "columns", "signature_name": "serving_default"}, "kserve-v1"),
    ("kserve-v1", "response", {"format": "columns"}, "kserve-v1"),
    ("mlflow", "request", {}, "mlflow"),
    ("mlflow", "request", {"format": "records"}, "mlflow"),
    ("mlflow", "request", {"format": "instances"}, "kserve-v1"),  # same shape as TF Serving
    ("mlflow", "request", {"format": "inputs", "params": {"k": 1}}, "mlflow"),
    ("mlflow", "response", {}, "kserve-v1"),
    ("json", "request", {}, "json"),
    ("json", "response", {}, "json"),
]


@pytest.mark.parametrize(("protocol", "part", "options", "detected"), ROUND_TRIPS)
@settings(max_examples=60, deadline=None)
@given(table=tables())
def test_encode_decode_round_trip(protocol, part, options, detected, table):
    expected = orjson.loads(orjson.dumps(table))  # floats exactly as JSON round-trips them
    body = encode(table, protocol, part, **options)
    forced = decode(body, part=part, protocol=protocol)
    assert forced.protocol == protocol
    assert forced.table == expected
    assert list(forced.table) == list(expected)  # column order is kept too
    auto = decode(body, part=part)
    assert auto.protocol == detected
    assert auto.table == expected
    assert decode(orjson.loads(body), part=part).table == expected  # parsed objects too


@settings(max_examples=60, deadline=None)
@given(table=tables().filter(lambda t: all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                           for col in t.values() for v in col)))
def test_numeric_tensor_forms_round_trip_as_floats(table):
    expected = {k: [float(v) for v in col] for k, col in table.items()}
    assert decode(encode(table, "seldon-v1", "request", kind="tensor"), part="request").table == expected


# --------------------------------------------------------------------------- fuzzing

PROTOCOL_KEYS = [
    "inputs", "outputs", "instances", "predictions", "data", "ndarray", "tensor", "tftensor", "names",
    "shape", "datatype", "name", "values", "dtype", "tensorShape", "dim", "size", "floatVal", "int64Val",
    "halfVal", "stringVal", "tensorContent", "jsonData", "strData", "binData", "dataframe_split",
    "dataframe_records", "columns", "index", "parameters", "content_type", "model_name", "error",
    "error_code", "message", "b64", "params", "signature_name", "meta", "status",
]
DATATYPE_WORDS = ["BOOL", "UINT8", "INT32", "INT64", "UINT64", "FP16", "FP32", "FP64", "BF16", "BYTES",
                  "DT_FLOAT", "DT_STRING", "DT_HALF", "DT_INT64", "pd", "np", "str", "base64", "datetime",
                  "pd_json", '{"k": [1]}']
keys = st.sampled_from(PROTOCOL_KEYS) | st.text(max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(DATATYPE_WORDS)
    | st.text(max_size=10)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(keys, children, max_size=6),
    max_leaves=60,
)
PARTS = ("request", "response")


def check_decodes_or_rejects(body: Any) -> None:
    """Every protocol choice and part: a valid table or a deliberate DecodeError, quickly."""
    for part in PARTS:
        for protocol in (None, *PROTOCOLS):
            t0 = time.thread_time()
            try:
                d = decode(body, part=part, protocol=protocol)  # type: ignore[arg-type]
            except DecodeError as exc:
                assert not exc.reason.startswith("unexpected payload structure"), exc.reason
            else:
                assert_valid(d)
            assert time.thread_time() - t0 < SLOW_CALL_S


def assert_valid(d: Decoded) -> None:
    assert isinstance(d, Decoded) and d.protocol in PROTOCOLS
    assert isinstance(d.table, dict) and isinstance(d.meta, dict)
    assert all(isinstance(k, str) and isinstance(v, list) for k, v in d.table.items())
    assert len({len(v) for v in d.table.values()}) <= 1
    orjson.dumps(d.table)  # JSON-friendly values


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(raw):
    check_decodes_or_rejects(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_fuzz_random_json(value):
    check_decodes_or_rejects(value)  # as Python objects
    try:
        raw = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return
    check_decodes_or_rejects(raw)  # as bytes
    try:
        detect_protocol(raw, "request")
    except DecodeError:
        pass


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:8]):
            out.extend(_paths(v, (*prefix, i)))
    return out


MUTATIONS = ("replace", "delete", "wrap", "special", "duplicate", "unwrap")
SPECIAL = [-1, 0, 1, 2**31, 10**7, 10**12, 2**63 - 1, 1.5, -0.0, True, None, "3", "9" * 30, "", [], {}, [[]],
           [10**7, 1, 0], [0, 10**9], [2] * 33, "DT_FLOAT", "FP32", {"b64": "aGk="}]


def mutate(draw: st.DrawFn, obj: Any) -> Any:
    path = draw(st.sampled_from(_paths(obj)))
    op = draw(st.sampled_from(MUTATIONS))
    if not path:
        return draw(json_values) if op == "replace" else [obj] if op == "wrap" else obj
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if op == "replace":
        parent[key] = draw(json_values)
    elif op == "delete":
        del parent[key]
    elif op == "wrap":
        parent[key] = [parent[key]]
    elif op == "special":
        parent[key] = orjson.loads(orjson.dumps(draw(st.sampled_from(SPECIAL))))  # a copy, never shared
    elif op == "duplicate":
        if isinstance(parent, list):
            parent.insert(key, orjson.loads(orjson.dumps(parent[key])))
        else:
            parent[f"{key}_"] = orjson.loads(orjson.dumps(parent[key]))
    elif isinstance(parent[key], list) and parent[key]:
        parent[key] = parent[key][0]
    return obj


SEEDS: list[tuple[Any, str]] = [
    ({"parameters": {"content_type": "pd"}, "inputs": [
        {"name": "a", "shape": [2, 1], "datatype": "INT64", "data": [1, 2]},
        {"name": "b", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]},
        {"name": "c", "shape": [2], "datatype": "BYTES", "parameters": {"content_type": "base64"}, "data": ["aGk=", "eA=="]},
        {"name": "d", "shape": [2], "datatype": "BYTES", "parameters": {"content_type": "datetime"},
         "data": ["2024-01-01", "2024-01-02T00:00:00Z"]},
        {"name": "e", "shape": [], "datatype": "BOOL", "data": [True]},
        {"name": "f", "shape": [2, 1], "datatype": "BYTES", "parameters": {"content_type": "pd_json"},
         "data": ['{"k": [1, null]}', '"x"']}]}, "request"),
    ({"model_name": "m", "id": "1", "outputs": [{"name": "p", "shape": [1, 2, 2], "datatype": "FP16", "data": [1, 2, 3, 4]}]},
     "response"),
    ({"data": {"names": ["a", "b"], "tftensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "1"}, {"size": "2"}]},
                                                "floatVal": [1, 2]}}}, "request"),
    ({"data": {"tftensor": {"dtype": "DT_HALF", "tensorShape": {"dim": [{"size": "2"}]}, "halfVal": [15360, 0]}}}, "request"),
    ({"data": {"tftensor": {"dtype": "DT_INT32", "tensorShape": {"dim": [{"size": "2"}]}, "tensorContent": "AQAAAAIAAAA="}}},
     "request"),
    ({"data": {"names": ["a"], "tensor": {"shape": [2, 1], "values": [1, 2]}}, "meta": {"puid": "x"}}, "response"),
    ({"jsonData": {"a": {"b": [1, 2]}}}, "request"),
    ({"binData": "aGVsbG8="}, "request"),
    ({"instances": [{"image": {"b64": "aGk="}, "x": [1, 2]}]}, "request"),
    ({"inputs": {"x": [[1, 2]], "k": 3}, "signature_name": "s"}, "request"),
    ({"dataframe_split": {"columns": ["a", "b"], "index": [0], "data": [[1, "x"]]}, "params": {"p": 1}}, "request"),
    ({"predictions": [{"label": "cat"}]}, "response"),
    ([{"a": {"b": 1}}, {"c": [1]}], "response"),
]


@st.composite
def mutated_payloads(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        protocol, part, options, _ = draw(st.sampled_from(ROUND_TRIPS))
        obj = orjson.loads(encode(draw(tables()), protocol, part, **options))
    else:
        obj = orjson.loads(orjson.dumps(draw(st.sampled_from(SEEDS))[0]))
    for _ in range(draw(st.integers(1, 4))):
        obj = mutate(draw, obj)
    return obj


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_payloads())
def test_fuzz_mutated_valid_payloads(obj):
    check_decodes_or_rejects(obj)
    try:
        raw = orjson.dumps(obj)
    except orjson.JSONEncodeError:
        return
    check_decodes_or_rejects(raw)


def test_seeds_are_valid():
    for obj, part in SEEDS:
        assert_valid(decode(orjson.dumps(obj), part=part))  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(depth=st.integers(1, 3000), shape=st.sampled_from(["list", "dict", "instances", "ndarray"]))
def test_fuzz_deep_nesting(depth, shape):
    inner = b"[" * depth + b"1" + b"]" * depth
    raw = {
        "list": inner,
        "dict": b'{"a":' * depth + b"1" + b"}" * depth,
        "instances": b'{"instances":' + inner + b"}",
        "ndarray": b'{"data":{"ndarray":' + inner + b"}}",
    }[shape]
    check_decodes_or_rejects(raw)

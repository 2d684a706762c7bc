"""The Elasticsearch record documents, byte for byte: the fast paths against definitions written
here value by value (the oracles), on generated rows of every kind of value a table can hold."""

from __future__ import annotations

import enum
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from inferwatch.config import ElasticsearchConfig
from inferwatch.record import InferenceRecord
from sinks.elasticsearch import _OPTS, ElasticsearchAuditStore, _numbers, _odd_cells, _with_fulltext
from tests.unit.test_record_path import KeepingBulk


def numbers_oracle(values: Any) -> dict[str, float]:
    """``input_num`` by its definition: each value that is an ``int`` or a ``float`` and not a
    ``bool``, finite as a double, under its key as text, in the row's order."""
    if not isinstance(values, dict):
        return {}
    out = {}
    for k, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        try:
            x = float(v)
        except OverflowError:  # an integer beyond a double
            continue
        if math.isfinite(x):
            out[str(k)] = x
    return out


def odd_oracle(values: Any) -> list[str]:
    """``input_odd`` by its definition: the keys (as text, in the row's order) of the lists,
    tuples and objects, of text longer than 1,024 characters (the flattened field's
    ignore_above) and of the texts "true" and "false"."""
    if not isinstance(values, dict):
        return []
    out = []
    for k, v in values.items():
        if isinstance(v, (list, tuple, dict)) or (isinstance(v, str) and (len(v) > 1024 or v in ("true", "false"))):
            out.append(str(k))
    return out


class Level(enum.IntEnum):
    LOW = 1


class Ratio(float):
    pass


VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e307, max_value=1.7e308),  # finite, but two of them overflow a sum
    st.integers(min_value=-(2**70), max_value=2**70),
    st.just(10**400), st.just(-(10**400)),  # beyond a double
    st.booleans(), st.none(), st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.just(Level.LOW), st.builds(Ratio, st.floats(allow_nan=False, allow_infinity=False)),
    st.builds(np.float64, st.floats()),
)
KEYS = st.one_of(st.text(max_size=4), st.integers(min_value=-3, max_value=3))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=12))
def test_input_numbers_are_the_finite_non_boolean_numbers_as_doubles(row: dict[Any, Any]) -> None:
    got, want = _numbers(row), numbers_oracle(row)
    assert got == want
    assert all(type(v) is float for v in got.values()) and all(type(k) is str for k in got)
    assert orjson.dumps(got, option=_OPTS) == orjson.dumps(want, option=_OPTS)  # same bytes, same order


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from("abcdef"), VALUES, max_size=6), min_size=2, max_size=8))
def test_rows_with_the_same_value_types_share_a_plan_and_still_get_their_own_numbers(rows: list[dict[str, Any]]) -> None:
    # rows of one type mix reuse one cached mask: what is cached must not leak between them
    shaped = [dict(zip(rows[0], r.values(), strict=False)) for r in rows]
    for r in shaped + rows:
        assert orjson.dumps(_numbers(r), option=_OPTS) == orjson.dumps(numbers_oracle(r), option=_OPTS)


ODD_VALUES = st.one_of(
    VALUES, st.sampled_from(["true", "false", "True", "TRUE", " true", "x" * 1024, "x" * 1025, "é" * 1100]),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2), st.tuples(st.integers()),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(KEYS, ODD_VALUES, max_size=12))
def test_odd_cells_are_the_cells_the_index_does_not_hold_as_they_are(row: dict[Any, Any]) -> None:
    assert _odd_cells(row) == odd_oracle(row)
    kinds = tuple(map(type, row.values()))
    assert _odd_cells(row, kinds) == odd_oracle(row)  # the same with the types given


def test_input_numbers_of_what_is_not_a_row() -> None:
    assert _numbers(None) == {} and _numbers([1.0]) == {} and _numbers({}) == {}


# -- whole record documents, as sent ---------------------------------------------------------
_COPIED = ("model", "version", "namespace", "endpoint", "protocol", "source", "trace", "latency_ms",
           "input_schema", "output_schema")
_TIME_FIELD = {"request": "timestamp", "both": "timestamp", "response": "response_timestamp",
               "feedback": "feedback_timestamp"}


def documents_oracle(r: InferenceRecord) -> list[dict[str, Any]]:
    """The row documents of a record (not labels alone), field by field, row by row: the shape
    ``record_documents`` defines (its docstring), written out plainly."""
    n_in, n_out, n_truth = (len(next(iter(t.values()))) if t else 0 for t in (r.inputs, r.outputs, r.truth))
    n = max(n_in, n_out, n_truth, 1)
    docs = []
    for i in range(n):
        doc: dict[str, Any] = {"record_id": r.id, "n_rows": n}
        for key in _COPIED:
            if getattr(r, key) is not None:
                doc[key] = getattr(r, key)
        if r.meta:
            doc["meta"] = r.meta
        doc[_TIME_FIELD[r.part]] = r.timestamp
        doc["doc_id"], doc["row"] = f"{r.id}-{i}", i
        for section, table, rows in (("input", r.inputs, n_in), ("output", r.outputs, n_out),
                                     ("truth", r.truth, n_truth)):
            if table and i < rows and (section != "truth" or any(v[i] is not None for v in table.values())):
                doc[section] = {k: v[i] for k, v in table.items()}
        if i == 0:
            for body in ("request", "response"):
                if getattr(r, body) is not None:
                    doc[body], doc[f"{body}_encoding"] = getattr(r, body), getattr(r, f"{body}_encoding") or "text"
        docs.append(doc)
    return docs


def bulk_oracle(records: list[InferenceRecord]) -> bytes:
    """The ``_bulk`` body of the records: each document with ``input_num`` (by the oracle above)
    and its full text, as an upsert, or a create for a complete exchange."""
    out = b""
    for r in records:
        index = f"inferwatch-records-{r.model}-{r.timestamp.astimezone(UTC):%Y.%m.%d}"
        for doc in documents_oracle(r):
            nums = numbers_oracle(doc.get("input"))
            if nums:
                doc["input_num"] = nums
            odd = odd_oracle(doc.get("input"))
            if odd:
                doc["input_odd"] = odd
            _with_fulltext(doc)
            op, body = ("create", doc) if r.part == "both" else ("update", {"doc": doc, "doc_as_upsert": True})
            out += orjson.dumps({op: {"_index": index, "_id": doc["doc_id"]}}) + b"\n"
            out += orjson.dumps(body, option=_OPTS) + b"\n"
    return out




CELLS = st.one_of(st.floats(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans(), st.none(),
                  st.text(max_size=4), st.lists(st.integers(min_value=-9, max_value=9), max_size=2))


@st.composite
def tables(draw: st.DrawFn, rows: int) -> dict[str, list[Any]] | None:
    names = draw(st.lists(st.text(min_size=1, max_size=3), max_size=4, unique=True))
    return {k: draw(st.lists(CELLS, min_size=rows, max_size=rows)) for k in names} or None


@st.composite
def record(draw: st.DrawFn, i: int) -> InferenceRecord:
    rows = draw(st.integers(min_value=1, max_value=3))
    text = st.none() | st.text(max_size=6)
    return InferenceRecord(
        id=f"r{i}", model="m", version=draw(text), namespace=draw(text), endpoint=draw(text),
        protocol=draw(text), source=draw(text), trace=draw(text), latency_ms=draw(st.none() | st.floats(0, 1e3)),
        timestamp=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=draw(st.integers(0, 10**6))),
        inputs=draw(tables(rows)), outputs=draw(st.none() | tables(rows)), truth=draw(st.none() | tables(rows)),
        request=draw(text), response=draw(text), request_encoding=draw(st.sampled_from(["text", "base64"])),
        meta=draw(st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)),
        part=draw(st.sampled_from(["request", "response", "both"])),
        input_schema=draw(st.none() | st.just({"tensors": [{"name": "x", "datatype": "FP32", "shape": [1]}]})))


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=4).flatmap(lambda n: st.tuples(*(record(i) for i in range(n)))))
def test_the_bulk_body_is_the_documents_field_by_field(records: tuple[InferenceRecord, ...]) -> None:
    client = KeepingBulk()
    store = ElasticsearchAuditStore(ElasticsearchConfig(), client=client, setup=False)
    assert store.write_records(list(records)) == sum(r.n_rows for r in records)
    assert b"".join(client.bodies) == bulk_oracle(list(records))

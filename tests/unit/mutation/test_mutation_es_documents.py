"""Tests for mutants of the Elasticsearch audit-document builders (sinks/elasticsearch.py:
audit_documents, _indexed, _numbers, _number_plan, _odd_cells, _with_fulltext, PreparedRecord and
the store's _record_actions / _prepared_actions) that the tests owning them let survive."""

from __future__ import annotations

from typing import Any

import pytest

import sinks.elasticsearch as es
from tests.unit.test_es_documents import numbers_oracle, odd_oracle


class Ratio(float):
    pass


@pytest.fixture
def cold_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    # the plans are cached per tuple of value types, module-wide: a test that ran before (or the
    # process mutmut forks its runs from) leaves them warm, and a plan built wrong is never built
    monkeypatch.setattr(es, "_NUMBER_PLANS", {})
    monkeypatch.setattr(es, "_ODD_PLANS", {})


# (value types, which are numbers, whether those are all exactly float, which to drop from a copy):
# derived by hand from the definition (int or float and not bool; a copy when at most a third are not numbers)
PLANS = [
    ((int, float, bool, str, type(None)), (True, True, False, False, False), False, None),
    ((float, float, str), (True, True, False), True, (False, False, True)),  # 2 * 1 <= 2: copy
    ((float, str), (True, False), True, None),  # 2 * 1 > 1: no copy
    ((float, float, float), (True, True, True), True, (False, False, False)),
    ((Ratio, float), (True, True), False, None),  # a float subclass is a number, not exactly float
    ((bool, bool), (False, False), True, None),  # no numbers: "all exactly float" holds vacuously; 2 * 2 > 0
    ((), (), True, ()),
]


@pytest.mark.parametrize(("kinds", "mask", "exact", "drop"), PLANS)
def test_number_plan_by_hand(cold_plans: None, kinds: tuple[type, ...], mask: tuple[bool, ...], exact: bool,
                             drop: tuple[bool, ...] | None) -> None:
    assert es._number_plan(kinds) == (mask, exact, drop)
    assert {kinds: (mask, exact, drop)} == es._NUMBER_PLANS


def test_number_plans_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    full = {(int,) * (i + 1): ((True,) * (i + 1), False, None) for i in range(4096)}
    monkeypatch.setattr(es, "_NUMBER_PLANS", dict(full))
    es._number_plan((str,))
    assert {(str,): ((False,), True, None)} == es._NUMBER_PLANS  # 4096 plans: cleared before the new one
    del full[(int,)]
    monkeypatch.setattr(es, "_NUMBER_PLANS", dict(full))
    es._number_plan((str,))
    assert len(es._NUMBER_PLANS) == 4096  # 4095: kept


def test_odd_plans_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    full: dict[tuple[type, ...], Any] = {(int,) * (i + 1): None for i in range(4096)}
    monkeypatch.setattr(es, "_ODD_PLANS", dict(full))
    assert es._odd_cells({"a": "true"}) == ["a"]
    assert {(str,): ((True,), False)} == es._ODD_PLANS
    del full[(int,)]
    monkeypatch.setattr(es, "_ODD_PLANS", dict(full))
    assert es._odd_cells({"a": [1]}) == ["a"]
    assert len(es._ODD_PLANS) == 4096 and es._ODD_PLANS[(list,)] == ((False,), True)


ROWS = [
    {"a": 1, "b": 2.5, "c": True, "d": "x", "e": None},
    {"a": 1.5, "b": 2.5, "c": "x"},
    {"a": 1.5, "b": "x", "c": "y"},
    {"a": 1.5, "b": float("nan"), "c": "x"},
    {"a": 1e308, "b": 1e308, "c": "x"},  # finite, the sum is not
    {"a": 10**400, "b": 2},
    {"a": Ratio(0.5), "b": 1.0},
    {1: 1.0, 2: 2.0, "c": "x"},
    {"a": [1], "b": "true", "c": "x" * 1025, "d": "false", "e": "x" * 1024, "f": {"k": 1}, "g": (1,)},
    {"a": "True", "b": "x"},
    {"a": 1.0},
]


@pytest.mark.parametrize("row", ROWS)
def test_numbers_and_odd_cells_with_plans_built_afresh(cold_plans: None, row: dict[Any, Any]) -> None:
    assert es._numbers(row) == numbers_oracle(row)
    assert list(es._numbers(row)) == list(numbers_oracle(row))
    assert es._odd_cells(row) == odd_oracle(row)
    assert es._odd_cells(row, tuple(map(type, row.values()))) == odd_oracle(row)


# -- full text -------------------------------------------------------------------------------
def fulltext_oracle(doc: dict[str, Any]) -> dict[str, str]:
    """``fulltext`` by its definition (written with the standard library's json): each non-empty
    section as compact JSON, or indented when the compact text has a "[" or a "{" past its
    first character (nested values: "[1,2]" would be one token); text bodies, their first
    100,000 characters (a body without an encoding is text); base64 bodies left out."""
    import json

    out = {}
    for section in ("input", "output", "truth"):
        values = doc.get(section)
        if values:
            compact = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
            nested = "[" in compact or "{" in compact[1:]
            out[section] = json.dumps(values, indent=2, ensure_ascii=False) if nested else compact
    for body in ("request", "response"):
        text = doc.get(body)
        if text and doc.get(f"{body}_encoding", "text") == "text":
            out[body] = text[:100_000]
    return out


FULLTEXT_DOCS = [
    {"input": {"city": "Oslo", "age": 30}, "output": {"y": 1}, "truth": {"t": "a"}},
    {"input": {"xy": [1, 2]}, "output": {"o": {"k": 1}}, "truth": {"t": []}},
    {"input": {"a": "x[y"}, "output": {"b": "{"}, "truth": {"c": "}"}},  # brackets in text count as nesting
    {"input": {}, "output": None, "request": "", "response": None},
    {"request": "q" * 100_001, "response": "r", "response_encoding": "text"},
    {"request": "{\"a\": 1}"},  # no encoding: text
    {"request": "AAE=", "request_encoding": "base64", "response": "AAE=", "response_encoding": "base64"},
    {"request": "x", "request_encoding": "TEXT"},
]


@pytest.mark.parametrize("doc", FULLTEXT_DOCS)
def test_fulltext_parts_by_their_definition(doc: dict[str, Any]) -> None:
    import json

    want = fulltext_oracle(doc)
    sections = {s: doc[s] for s in ("input", "output", "truth") if s in doc}
    got = es._with_fulltext(dict(doc))
    assert got["fulltext"] == want
    assert list(got["fulltext"]) == list(want)
    # the sections themselves are sent as the same JSON values (a flat one as a fragment of its text)
    sent = json.loads(es._dumps(got))
    assert {s: sent[s] for s in sections} == sections
    assert sent["fulltext"] == want


def test_fulltext_is_set_in_place_and_returned() -> None:
    doc: dict[str, Any] = {"input": {"a": 1}}
    assert es._with_fulltext(doc) is doc and doc["fulltext"] == {"input": '{"a":1}'}
    assert es._with_fulltext({})["fulltext"] == {}


# -- prepared records ------------------------------------------------------------------------
def _head(**fields: Any) -> bytes:
    import orjson

    meta = {"form": es.PREPARED_FORM, "id": "r1", "model": "m", "version": "v2", "part": "request",
            "timestamp": "2026-01-02T03:04:05Z"}
    meta.update(fields)
    return orjson.dumps({k: v for k, v in meta.items() if v is not ...})


def test_a_prepared_record_keeps_what_its_head_says_and_its_documents() -> None:
    docs = [b'{"doc_id":"r1-0"}', b'{"doc_id":"r1-1"}', b'{"doc_id":"r1-2"}']
    p = es.PreparedRecord.read(b"RAW", b"\n".join([_head(), *docs]))
    assert p is not None
    assert (p.raw, p.id, p.model, p.version, p.part, p.timestamp) == (b"RAW", "r1", "m", "v2", "request",
                                                                      "2026-01-02T03:04:05Z")
    assert p.docs == docs and p.n_rows == 3 and p.to_json() == b"RAW"
    for part in ("response", "both"):
        q = es.PreparedRecord.read(b"RAW", _head(part=part) + b"\n{}")
        assert q is not None and q.part == part and q.n_rows == 1


@pytest.mark.parametrize("head", [_head(model=7), _head(timestamp=1), _head(id=None), _head(version=...),
                                  _head(form=...), _head(part=...), _head(model=...), _head(timestamp=...),
                                  _head(part="label"), b"\"text\"", b"null", b"{"])
def test_a_head_not_of_this_form_is_not_read(head: bytes) -> None:
    assert es.PreparedRecord.read(b"RAW", head + b"\n{}") is None


def _prepared_both(n: int) -> list[Any]:
    from inferwatch.record import InferenceRecord

    out = []
    for i in range(n):
        r = InferenceRecord(id=f"r{i}", model="m", inputs={"x": [i]}, part="both")
        out.append(es.PreparedRecord.read(r.to_json(), es.audit_documents(r) or b""))
    return out


def test_a_refused_prepared_document_is_a_dead_letter_holding_its_record() -> None:
    from tests.unit.test_es_bulk_logic import _store

    store, _, letters = _store([[201, 400, 201], [201]])  # second call: the dead letter itself
    given = _prepared_both(3)
    assert store.write_records(given) == 2
    assert [dl.raw for dl in letters] == [given[1].raw]


def test_a_prepared_complete_exchange_that_exists_is_merged() -> None:
    import orjson

    from tests.unit.test_es_bulk_logic import _store

    store, client, _ = _store([[409, 201], [200]])
    given = _prepared_both(2)
    assert store.write_records(given) == 2
    assert [next(iter(a)) for a in client.calls[0]] == ["create", "create"]
    (update,) = client.calls[1]
    assert update["update"]["_id"] == "r0-0"
    assert update["update"]["_index"] == client.calls[0][0]["create"]["_index"]
    assert orjson.loads(given[0].docs[0])["doc_id"] == "r0-0"


def test_a_refused_prepared_half_is_a_dead_letter_holding_its_record() -> None:
    from inferwatch.record import InferenceRecord
    from tests.unit.test_es_bulk_logic import _store

    store, client, letters = _store([[200, 400], [201]])
    given = []
    for i in range(2):
        r = InferenceRecord(id=f"r{i}", model="m", inputs={"x": [i]}, part="request")
        given.append(es.PreparedRecord.read(r.to_json(), es.audit_documents(r) or b""))
    assert store.write_records(given) == 1
    assert [next(iter(a)) for a in client.calls[0]] == ["update", "update"]
    assert [dl.raw for dl in letters] == [given[1].raw]


def test_fulltext_of_numpy_values_and_keys_that_are_not_text() -> None:
    # what the documents themselves are serialised with (numpy scalars, non-text keys, UTC as Z)
    from datetime import UTC, datetime

    import numpy as np

    doc = es._with_fulltext({"input": {"a": np.int64(3), 1: "x"}, "output": {"t": datetime(2026, 1, 2, tzinfo=UTC)}})
    assert doc["fulltext"] == {"input": '{"a":3,"1":"x"}', "output": '{"t":"2026-01-02T00:00:00Z"}'}


def test_odd_cells_of_what_is_not_a_row() -> None:
    assert es._odd_cells(None) == [] and es._odd_cells([1.0, "true"]) == [] and es._odd_cells("true") == []
    assert es._odd_cells({}) == []

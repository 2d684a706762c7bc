"""Tables from tensors and records, and the decode budget (inferwatch/codecs/_tables.py,
limits.py): the cases `make mutation` showed no test held. Expected tables follow from the
column-naming rule (inferwatch/codecs/base.py) and TF Serving's REST conventions (row and
columnar formats, ``{"b64": ...}`` binary values), worked out by hand."""

from __future__ import annotations

import pytest

from inferwatch.codecs import _tables as T
from inferwatch.codecs import decode, limits
from inferwatch.codecs._seldon import CODEC as SELDON
from inferwatch.codecs.limits import Budget, BudgetExceeded, session
from inferwatch.errors import DecodeError

P = "p"


def err(fn, *args, **kw):
    with pytest.raises(DecodeError) as info:
        fn(*args, **kw)
    return info.value.protocol, info.value.reason, info.value.expected


# --- Columns --------------------------------------------------------------------------------------

def test_columns_suffixes_broadcast_and_batch_size():
    c = T.Columns(P)
    assert c.protocol == P
    assert [c.add("x", [1, 2]), c.add("x", [3, 4]), c.add("s", [9], True), c.add("x", [5, 6])] == ["x", "x.1", "s", "x.2"]
    assert c.table() == {"x": [1, 2], "x.1": [3, 4], "s": [9, 9], "x.2": [5, 6]}
    only_broadcast = T.Columns(P)
    only_broadcast.add("s", [7], broadcast=True)
    assert only_broadcast.table() == {"s": [7]}  # no batch: one row
    uneven = T.Columns(P)
    for i in range(10):
        uneven.add(f"c{i}", [0] * (i + 1))
    assert err(uneven.table) == (P, "tensors have different batch sizes: "
                                    "{'c0': 1, 'c1': 2, 'c2': 3, 'c3': 4, 'c4': 5, 'c5': 6, 'c6': 7, 'c7': 8}", None)


def test_columns_note_encodings_and_count_against_the_budget():
    with session(Budget(max_columns=2)) as s:
        c = T.Columns(P)
        c.add("b", ["aGk="], encoding="base64")
        c.add("b", ["x"], encoding="utf-8")
        assert s.encodings == {"b": "base64", "b.1": "utf-8"} and s.columns == 2
        with pytest.raises(BudgetExceeded) as info:
            c.add("c", [1])
    e = info.value
    assert (e.limit, e.status, e.protocol, e.reason) == ("max_columns", 413, P, "payload has more than 2 columns "
                                                                                 "(limit max_columns)")


def test_max_cells_is_rows_times_columns():
    with session(Budget(max_cells=6)):
        c = T.Columns(P)
        c.add("a", [1, 2, 3])
        c.add("b", [1, 2, 3])
        assert c.table() == {"a": [1, 2, 3], "b": [1, 2, 3]}  # exactly 6
        c.add("s", [0], broadcast=True)
        with pytest.raises(BudgetExceeded) as info:
            c.table()
    assert (info.value.limit, info.value.reason) == ("max_cells", "payload decodes to more than 6 cells (limit max_cells)")
    with session(Budget(max_cells=None)):
        c = T.Columns(P)
        c.add("a", [1] * 10)
        assert len(c.table()["a"]) == 10


def test_cells_of_records_are_bounded_in_depth():
    with session(Budget(max_depth=2)):
        c = T.Columns(P)
        c.add("ok", [[1], [2]], cells=True)  # two levels: the column, its cells
        with pytest.raises(BudgetExceeded) as info:
            c.add("deep", [[[[1]]]], cells=True)
        c.add("not-cells", [[[[1]]]])  # tensors are bounded by their rank, not here
        c.add("scalars", [1], cells=True)
    assert info.value.reason == "column 'deep' is nested deeper than 2 levels (limit max_depth)"
    assert info.value.status == 400


# --- records ---------------------------------------------------------------------------------------

def test_flatten_record():
    flat = {"a": 1, "b": [1, 2]}
    assert T.flatten_record(flat, P) is flat  # nothing nested: the record itself
    assert T.flatten_record({"a": {"b": {"c": 1}, "e": {}}, "img": {"b64": "aGk="}, "d": 2}, P, b64=True) == {
        "a.b.c": 1, "a.e": None, "img": {"b64": "aGk="}, "d": 2}
    assert T.flatten_record({"img": {"b64": "aGk="}}, P) == {"img.b64": "aGk="}
    assert T.flatten_record({"img": {"b64": "aGk=", "x": 1}}, P, b64=True) == {"img.b64": "aGk=", "img.x": 1}


def test_flatten_record_depth():
    nested: dict = {"v": 1}
    for _ in range(3):
        nested = {"k": nested}
    with session(Budget(max_depth=4)):
        assert T.flatten_record(nested, P) == {"k.k.k.v": 1}
    with session(Budget(max_depth=3)), pytest.raises(BudgetExceeded) as info:
        T.flatten_record(nested, P)
    assert (info.value.reason, info.value.status, info.value.protocol) == (
        "record nested deeper than 3 levels (limit max_depth)", 400, P)


def test_records_table():
    assert T.records_table([], P) == {}
    assert T.records_table([{"a": 1}, {"b": 2, "a": 3}], P) == {"a": [1, 3], "b": [None, 2]}
    assert T.records_table([{"a": 1, "b": 2}, {"b": 3, "a": 4}], P) == {"a": [1, 4], "b": [2, 3]}
    # TF Serving named inputs: a [N, k] value per row splits; rank 3 keeps one column
    assert T.records_table([{"x": [1, 2], "t": "a"}, {"x": [3, 4], "t": "b"}], P, split=True) == {
        "x_0": [1, 3], "x_1": [2, 4], "t": ["a", "b"]}
    assert T.records_table([{"x": [[1, 2], [3, 4]]}], P, split=True) == {"x": [[[1, 2], [3, 4]]]}
    assert T.records_table([{"x": [1, 2]}], P) == {"x": [[1, 2]]}  # cells without split
    assert T.records_table([{"img": {"b64": "aGk="}}, {"img": None}], P, b64=True) == {"img": ["hi", None]}
    with session(None) as s:
        T.records_table([{"img": {"b64": "_w=="}}], P, b64=True)
        assert s.encodings == {"img": "base64"}


def test_named_values():
    assert T.named_values("x", [[1, 2], [3, 4]], P) == ([("x_0", [1, 3], False), ("x_1", [2, 4], False)], None)
    assert T.named_values("x", [[1, [2]]], P) == ([("x", [[1, [2]]], False)], None)  # ragged: cells
    assert T.named_values("x", [[{"b64": "aGk="}]], P, b64=True) == ([("x", ["hi"], False)], "utf-8")
    assert T.named_values("x", [{"b64": "aGk="}, None], P, b64=True) == ([("x", ["hi", None], False)], "utf-8")
    assert T.named_values("x", [{"b64": "aGk=", "y": 1}], P, b64=True) == ([("x", [{"b64": "aGk=", "y": 1}], False)],
                                                                           None)
    assert T.named_values("x", [{"b64": "aGk="}], P) == ([("x", [{"b64": "aGk="}], False)], None)
    assert T.named_values("x", [], P) == ([("x", [], False)], None)
    with session(Budget(max_depth=2)):
        with pytest.raises(BudgetExceeded, match="column 'x' is nested deeper than 2 levels"):
            T.named_values("x", [[[1, [2, [3]]]]], P)
        with pytest.raises(BudgetExceeded, match="column 'y' is nested deeper than 2 levels"):
            T.named_values("y", [{"a": [[1]]}], P)


def test_decode_b64_leaves():
    assert T.decode_b64_leaves([1, 2], P, "w") == ([1, 2], None)
    assert T.decode_b64_leaves([{"b64": "aGk="}, None], P, "w") == (["hi", None], "utf-8")
    assert err(T.decode_b64_leaves, [{"b64": "aGk="}, 1], P, "w") == (
        P, 'w mixes {"b64": ...} objects with other values', "one kind per tensor")
    assert err(T.decode_b64_leaves, [{"b64": "aGk=", "x": 1}], P, "w") == (
        P, "w holds an object with keys ['b64', 'x'] where a scalar was expected", None)
    assert err(T.decode_b64_leaves, [{"b64": 5}], P, "w") == (P, "w b64 value is a number", "a base64 string")


# --- row and columnar forms ------------------------------------------------------------------------

def test_rows_table():
    assert T.rows_table([], P, "instances") == {}
    assert T.rows_table([1, 2], P, "instances") == {"f0": [1, 2]}
    assert T.rows_table([[1, 2]], P, "instances", name="x") == {"x_0": [1], "x_1": [2]}
    assert T.rows_table([{"b64": "aGk="}, {"b64": "_w=="}], P, "instances", b64=True) == {"f0": ["aGk=", "/w=="]}
    assert T.rows_table([{"a": {"b64": "aGk="}}], P, "instances", b64=True) == {"a": ["hi"]}
    assert T.rows_table([{"a": 1}], P, "instances") == {"a": [1]}
    assert err(T.rows_table, 5, P, "instances") == (P, "instances is a number", "a list")
    assert err(T.rows_table, [{"a": 1}, 1], P, "instances") == (P, "instances mixes objects with other values",
                                                                "all objects or no objects")
    assert err(T.rows_table, [{"b64": "aGk="}, 1], P, "instances", b64=True) == (
        P, 'instances mixes {"b64": ...} objects with other values', "one kind per tensor")
    assert err(T.rows_table, [[1, {"a": 1}]], P, "instances") == (
        P, "instances holds an object with keys ['a'] where a scalar was expected", None)


def test_columnar_table():
    assert T.columnar_table({"a": [[1, 2]], "b": [{"b64": "aGk="}]}, P, "inputs") == {"a_0": [1], "a_1": [2],
                                                                                     "b": ["hi"]}
    assert T.columnar_table([[1, 2], [3, 4]], P, "outputs") == {"f0": [1, 3], "f1": [2, 4]}
    assert err(T.columnar_table, {"b": [{"b64": "aGk="}]}, P, "inputs", b64=False)[1] == (
        "inputs.b holds an object with keys ['b64'] where a scalar was expected")
    assert err(T.columnar_table, 5, P, "inputs") == (P, "inputs is a number", "a list or an object of named lists")
    assert err(T.columnar_table, {"a": [1, 2], "b": [1]}, P, "outputs") == (
        P, "tensors have different batch sizes: {'a': 2, 'b': 1}", None)
    assert err(T.columnar_table, {"a": [{"x": 1}]}, P, "inputs")[1] == (
        "inputs.a holds an object with keys ['x'] where a scalar was expected")
    assert err(T.columnar_table, [{"x": 1}], P, "inputs")[1] == (
        "inputs holds an object with keys ['x'] where a scalar was expected")


# --- the budget -----------------------------------------------------------------------------------

def test_budget_defaults_and_limits():
    assert Budget() == Budget(max_depth=64, max_columns=100_000, max_cells=100_000_000, max_seconds=None)
    assert (limits.MAX_RANK, limits.MAX_CELLS, limits.MAX_EMPTY, limits.MAX_DEPTH, limits.WIDE) == (
        32, 100_000_000, 1_000_000, 64, 10_000)
    e = BudgetExceeded("max_cells", "too big", protocol="x")
    assert (e.limit, e.status, e.reason, e.protocol, str(e)) == ("max_cells", 413, "too big (limit max_cells)", "x",
                                                                 "x: too big (limit max_cells)")


def test_sessions_nest_and_helpers_are_no_ops_outside():
    assert limits.max_cells() == 100_000_000 and limits.max_depth() == 64
    limits.charge_columns(10**9, P)  # outside a session: nothing to charge
    limits.check_time(P)
    limits.note_encoding("x", "base64")
    with session(Budget(max_depth=3, max_cells=5)) as outer:
        assert limits.max_depth() == 3 and limits.max_cells() == 5
        with session(Budget(max_depth=9)) as inner:
            assert inner is outer and limits.max_depth() == 3
        limits.note_encoding("x", "base64")
        assert outer.encodings == {"x": "base64"}
    assert limits.max_depth() == 64


def test_time_budget_is_checked(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(limits.time, "thread_time", lambda: clock[0])
    with session(Budget(max_seconds=2.5)) as s:
        assert s.deadline == 102.5
        clock[0] = 102.4
        limits.check_time(P)
        limits.charge_columns(1, P)
        clock[0] = 102.5
        with pytest.raises(BudgetExceeded) as info:
            limits.check_time(P)
        assert (info.value.limit, info.value.reason, info.value.protocol) == (
            "max_seconds", "decoding took longer than 2.5 s (limit max_seconds)", P)
        with pytest.raises(BudgetExceeded, match="max_seconds"):
            limits.charge_columns(1, P)
    with session(None) as s:
        assert s.deadline is None


def test_check_depth_counts_levels():
    limits.check_depth([1, [2, {"a": [3]}]], P, "x", limit=4)
    with pytest.raises(BudgetExceeded) as info:
        limits.check_depth([1, [2, {"a": [3]}]], P, "x", limit=3)
    assert (info.value.reason, info.value.status, info.value.protocol) == (
        "x is nested deeper than 3 levels (limit max_depth)", 400, P)
    limits.check_depth(5, P, "x", limit=1)
    limits.check_depth({"a": 1}, P, "x", limit=1)
    with pytest.raises(BudgetExceeded):
        limits.check_depth({"a": {}}, P, "x", limit=1)
    with session(Budget(max_depth=2)), pytest.raises(BudgetExceeded, match="deeper than 2 levels"):
        limits.check_depth([[[1]]], P, "x")


def test_decode_under_a_budget():
    body = {"instances": [[1, 2, 3]] * 4}
    assert decode(body, part="request", budget=Budget(max_cells=12)).n_rows == 4
    with pytest.raises(BudgetExceeded) as info:
        decode(body, part="request", budget=Budget(max_cells=11))
    assert info.value.protocol == "kserve-v1" and info.value.limit == "max_cells"
    with pytest.raises(BudgetExceeded, match="payload has more than 2 columns"):
        decode(body, part="request", budget=Budget(max_columns=2))


def test_named_values_without_b64_keep_b64_objects_as_cells():
    assert T.named_values("x", [[{"b64": "aGk="}]], P) == ([("x", [[{"b64": "aGk="}]], False)], None)


def test_depth_errors_of_named_values_name_the_protocol():
    with session(Budget(max_depth=2)):
        for values in ([[[1, [2, [3]]]]], [{"a": [[1]]}]):
            with pytest.raises(BudgetExceeded) as info:
                T.named_values("x", values, P)
            assert info.value.protocol == P


def test_nested_b64_objects_stay_whole_at_any_depth():
    assert T.flatten_record({"a": {"img": {"b64": "aGk="}, "n": 1}}, P, b64=True) == {
        "a.img": {"b64": "aGk="}, "a.n": 1}


def test_columnar_errors_name_protocol_and_label_and_encodings_are_noted():
    assert err(T.columnar_table, {"a": [[1], [1, 2]]}, P, "inputs")[0] == P
    assert "inputs.a" in err(T.columnar_table, {"a": [[1], [1, 2]]}, P, "inputs")[1]
    assert err(T.columnar_table, {"a": [{"b64": "aGk="}, 1]}, P, "inputs") == (
        P, 'inputs.a mixes {"b64": ...} objects with other values', "one kind per tensor")
    assert err(T.columnar_table, {"b": [{"b64": "aGk="}]}, P, "inputs", b64=False)[0] == P
    with session(None) as s:
        T.columnar_table({"a": [1]}, P, "inputs", b64=False)
        T.columnar_table({"c": [1]}, P, "inputs")
        assert s.encodings == {}
        T.columnar_table({"b": [{"b64": "aGk="}]}, P, "inputs")
        assert s.encodings == {"b": "utf-8"}


def test_record_cells_are_bounded_in_depth_and_errors_name_the_protocol():
    with session(Budget(max_depth=2)):
        with pytest.raises(BudgetExceeded) as info:
            T.records_table([{"a": [[1]]}], P)
        assert info.value.protocol == P
        with pytest.raises(BudgetExceeded) as info:
            T.records_table([{"a": {"b": {"c": 1}}}], P)
        assert info.value.protocol == P


def test_split_record_depth_errors_name_the_protocol():
    with session(Budget(max_depth=2)), pytest.raises(BudgetExceeded) as info:
        T.records_table([{"x": [[1, [2, [3]]]]}], P, split=True)
    assert info.value.protocol == P


@pytest.mark.timeout(30)  # a suffix search that never ends fails here, not at the suite's 300 s
def test_a_repeated_column_name_takes_its_next_free_suffix():
    """Columns.add: a name already taken gets ``.1``, ``.2``, ... — the first suffix free, also
    when a column arrived already named like a suffix."""
    cols = T.Columns(P)
    assert [cols.add(n, [1]) for n in ("a", "a.1", "a", "a", "b", "b")] == ["a", "a.1", "a.2", "a.3", "b", "b.1"]
    assert list(cols.table()) == ["a", "a.1", "a.2", "a.3", "b", "b.1"]


def test_plain_json_records_keep_list_fields_as_cells_and_note_no_encodings():
    """Plain JSON has no tensor convention: a record's list field is one cell (KServe's and
    MLflow's records split it into columns), and no column arrived as base64, so the decode
    notes no encodings (meta["encodings"] is for binary columns only)."""
    d = decode(b'[{"a": 1, "c": [1, 2]}, {"a": 2, "c": [3, 4]}]', part="request", protocol="json")
    assert d.table == {"a": [1, 2], "c": [[1, 2], [3, 4]]}
    assert d.meta == {"kind": "records"}
    assert decode(b"[[1, 2], [3, 4]]", part="request", protocol="json").meta == {"kind": "array"}


def test_records_over_the_column_budget_name_their_protocol():
    with session(Budget(max_columns=1)), pytest.raises(BudgetExceeded) as info:
        decode(b'{"instances": [{"a": 1, "b": 2}]}', part="request", protocol="kserve-v1")
    assert (info.value.protocol, info.value.limit) == ("kserve-v1", "max_columns")


def test_a_tensor_nests_as_deep_as_its_rank_whatever_the_depth_budget():
    """The depth budget (``max_depth``, ``collector.max_depth``) bounds free-form nesting: record
    cells, MLServer ``pd_json`` cells, metadata. A tensor's nesting is its rank, bounded by
    ``MAX_RANK`` whatever the budget: under ``max_depth=2`` a batch of 2x2 matrices (rank 3, so one
    column whose rows are the matrices: rule 5 of inferwatch/codecs/base.py) still decodes in each
    tensor form, where a record cell holding the same matrix (free-form: 3 levels) is refused."""
    rows = [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]
    with session(Budget(max_depth=2)):
        assert T.rows_table(rows, P, "instances") == {"f0": rows}  # TF Serving rows, unnamed: f0
        assert T.columnar_table({"m": rows}, P, "inputs") == {"m": rows}  # TF Serving columnar, named
        # TF Serving named rows: a regular list value is a tensor (split), not a cell
        assert T.records_table([{"m": rows[0]}, {"m": rows[1]}], P, split=True) == {"m": rows}
        # Seldon's ndarray (the codec alone: decode() also bounds the metadata, whose tensor summary is 3 deep)
        assert SELDON.decode({"data": {"ndarray": rows}}, "request").table == {"f0": rows}
        with pytest.raises(BudgetExceeded) as info:
            T.records_table([{"m": rows[0]}, {"m": rows[1]}], P)
        assert (info.value.protocol, info.value.limit) == (P, "max_depth")

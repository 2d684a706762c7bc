"""The Elasticsearch record documents, byte for byte: the fast paths against definitions written
here value by value (the oracles), on generated rows of every kind of value a table can hold."""

from __future__ import annotations

import enum
import math
from typing import Any

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.elasticsearch import _OPTS, _numbers


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


def test_input_numbers_of_what_is_not_a_row() -> None:
    assert _numbers(None) == {} and _numbers([1.0]) == {} and _numbers({}) == {}

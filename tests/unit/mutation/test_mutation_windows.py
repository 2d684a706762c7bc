"""Count and time windows (detectors/runtime/windows.py) against a brute-force reference: the
whole stream kept as a list of rows, each window cut from it by the definition in the module
docstring (count: the last ``size`` rows every ``step`` rows; time: epoch-aligned panes of
``step`` seconds, a window of ``seconds`` closing when a row at or past its end arrives, rows
older than the open pane joining it as late rows). No expected value comes from the code under
test."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.runtime.windows import (
    ClosedWindow,
    CountWindow,
    TimeWindow,
    _Pane,
    _rand,
    window_from_config,
    window_from_state,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 1, 1, tzinfo=UTC)  # a multiple of every step used here since the epoch


def _table(rows):
    cols: dict[str, None] = {}
    for r in rows:
        for k in r["cols"]:
            cols.setdefault(k, None)
    return {k: [r["cols"].get(k) for r in rows] for k in cols}


batches = st.lists(
    st.tuples(st.integers(-12, 25),                     # seconds after the previous batch (negative: late)
              st.integers(1, 5),                        # rows
              st.booleans(),                            # with a second column
              st.booleans()),                           # with row ids
    min_size=1, max_size=25)


def _stream(spec):
    """(timestamp, rows) per batch; each row {"cols": {...}, "id": ...} with a unique value."""
    out, t, v = [], 100, 0
    for dt, n, extra, with_ids in spec:
        t = max(0, t + dt)
        rows = []
        for _ in range(n):
            cols = {"v": v}
            if extra:
                cols["c"] = f"c{v}"
            rows.append({"cols": cols, "id": f"r-{v}" if with_ids else None, "t": t})
            v += 1
        out.append((t, rows))
    return out


def _add(w, t, rows):
    table = _table(rows)
    ids = [r["id"] for r in rows] if rows[0]["id"] is not None else None
    return w.add(table, T0 + timedelta(seconds=t), ids)


def _view(c: ClosedWindow):
    return (c.rows, c.start, c.end, c.size, c.seen, c.row_ids)


def _expect(rows, start, end):
    return (_table(rows), start, end, len(rows), len(rows), [r["id"] for r in rows])


@settings(max_examples=60, deadline=None)
@given(batches, st.sampled_from([(1, 1), (3, 3), (4, 2), (6, 2), (6, 3), (5, 1)]))
def test_count_windows_match_the_brute_force_cut(spec, size_step):
    size, step = size_step
    w = CountWindow(size=size, step=step)
    seen: list[dict] = []
    for t, rows in _stream(spec):
        got = [_view(c) for c in _add(w, t, rows)]
        want = []
        for j in range(len(seen) + 1, len(seen) + len(rows) + 1):
            if j % step == 0 and j >= size:
                win = (seen + rows)[j - size: j]
                want.append(_expect(win, T0 + timedelta(seconds=min(r["t"] for r in win)),
                                    T0 + timedelta(seconds=max(r["t"] for r in win))))
        seen += rows
        assert got == want
        assert w.buffered_rows == (len(seen) % step) + min(size - step, (len(seen) // step) * step)
    n = len(seen)
    got = [_view(c) for c in w.flush()]
    if n % step == 0:
        assert got == []
    else:
        full = n // step
        win = seen[max(0, (full - (size // step - 1)) * step):]
        assert got == [_expect(win, T0 + timedelta(seconds=min(r["t"] for r in win)),
                               T0 + timedelta(seconds=max(r["t"] for r in win)))]
    assert w.flush() == [] and w.advance(T0 + timedelta(days=9)) == []


@settings(max_examples=80, deadline=None)
@given(batches, st.sampled_from([(10, 10), (10, 5), (10, 2), (30, 10), (4, 4), (6, 3)]))
def test_time_windows_match_the_brute_force_cut(spec, seconds_step):
    seconds, step = seconds_step
    per = seconds // step
    w = TimeWindow(seconds=seconds, step=step, max_rows=None)
    panes: dict[int, list[dict]] = {}  # the reference: every row by its effective pane key
    first = last = None
    emitted_any = False
    late = 0

    def bounds(e):
        end = T0 + timedelta(seconds=(e + 1) * step)
        return end - timedelta(seconds=seconds), end

    def window(e):
        rows = [r for k in sorted(panes) if e - per < k <= e for r in panes[k]]
        return _expect(rows, *bounds(e))

    for t, rows in _stream(spec):
        key = t // step
        want = []
        if last is not None and key < last:
            late += len(rows)
            key = last
        if last is not None and key > last:
            # every window ending at a pane key in [last, key) that holds rows and starts at or after the first pane
            for e in range(last, key):
                if e - per + 1 >= first and any(e - per < k <= e for k in panes):
                    want.append(window(e))
                    emitted_any = True
        if first is None:
            first = key
        last = key
        panes.setdefault(key, []).extend(rows)
        assert [_view(c) for c in _add(w, t, rows)] == want
        assert w.late_rows == late
    got = [_view(c) for c in w.flush()]
    if last - per + 1 >= first or not emitted_any:
        assert got == [window(last)]
    else:
        assert got == []
    assert w.buffered_rows == 0 and w.flush() == []


def test_a_time_window_closes_on_a_row_at_its_end_not_before():
    w = TimeWindow(seconds=10)
    assert w.add({"x": [1]}, T0 + timedelta(seconds=3)) == []
    assert w.add({"x": [2]}, T0 + timedelta(seconds=9.999)) == []
    (c,) = w.add({"x": [3]}, T0 + timedelta(seconds=10))
    assert (c.rows, c.start, c.end, c.size, c.seen) == ({"x": [1, 2]}, T0, T0 + timedelta(seconds=10), 2, 2)


def test_advance_closes_what_ended_before_the_watermark():
    w = TimeWindow(seconds=10, step=5)
    w.add({"x": [1]}, T0 + timedelta(seconds=1))
    w.add({"x": [2]}, T0 + timedelta(seconds=6))
    assert w.advance(T0 + timedelta(seconds=9)) == []
    (c,) = w.advance(T0 + timedelta(seconds=10))
    assert (c.rows, c.start, c.end) == ({"x": [1, 2]}, T0, T0 + timedelta(seconds=10))
    # the window [5, 15) holds row 2; it closes at 15
    assert w.advance(T0 + timedelta(seconds=14)) == []
    (c,) = w.advance(T0 + timedelta(seconds=15))
    assert (c.rows, c.start, c.end) == ({"x": [2]}, T0 + timedelta(seconds=5), T0 + timedelta(seconds=15))
    assert w.advance(T0 + timedelta(seconds=100)) == [] and w.buffered_rows == 0
    # after the watermark, an older row is late: it joins the first open pane
    w.add({"x": [3]}, T0 + timedelta(seconds=50))
    assert w.late_rows == 1
    (c,) = w.flush()
    assert c.rows == {"x": [3]} and c.end == T0 + timedelta(seconds=105)


def test_advance_before_any_row_makes_earlier_rows_late():
    w = TimeWindow(seconds=10)
    assert w.advance(T0 + timedelta(seconds=30)) == []
    w.add({"x": [1, 2]}, T0 + timedelta(seconds=5))
    assert w.late_rows == 2
    w.advance(T0 + timedelta(seconds=20))  # an earlier watermark changes nothing
    w.add({"x": [3]}, T0 + timedelta(seconds=25))
    assert w.late_rows == 3
    (c,) = w.flush()
    assert c.rows == {"x": [1, 2, 3]} and (c.start, c.end) == (T0 + timedelta(seconds=30), T0 + timedelta(seconds=40))


def test_a_watermark_going_back_neither_reopens_nor_repeats():
    # no rows yet: the watermark at 30 s makes a row at 15 s late, also after a watermark at 10 s
    w = TimeWindow(seconds=10)
    w.advance(T0 + timedelta(seconds=30))
    w.advance(T0 + timedelta(seconds=10))
    w.add({"x": [1]}, T0 + timedelta(seconds=15))
    assert w.late_rows == 1
    (c,) = w.flush()
    assert (c.start, c.end) == (T0 + timedelta(seconds=30), T0 + timedelta(seconds=40))
    # sliding: the window [0, 10) closed at 10 s is not emitted again after the watermark went back
    w = TimeWindow(seconds=10, step=5)
    w.add({"x": [1]}, T0 + timedelta(seconds=1))
    w.add({"x": [2]}, T0 + timedelta(seconds=6))
    (c,) = w.advance(T0 + timedelta(seconds=10))
    assert (c.rows, c.end) == ({"x": [1, 2]}, T0 + timedelta(seconds=10))
    assert w.advance(T0 + timedelta(seconds=5)) == []
    assert w.advance(T0 + timedelta(seconds=10)) == []
    (c,) = w.advance(T0 + timedelta(seconds=15))
    assert (c.rows, c.start, c.end) == ({"x": [2]}, T0 + timedelta(seconds=5), T0 + timedelta(seconds=15))


def test_a_row_in_a_pane_still_open_after_a_watermark_is_not_late():
    w = TimeWindow(seconds=10, step=5)
    w.add({"x": [6]}, T0 + timedelta(seconds=6))
    w.add({"x": [11]}, T0 + timedelta(seconds=11))
    (c,) = w.advance(T0 + timedelta(seconds=15))
    assert c.rows == {"x": [6, 11]} and c.end == T0 + timedelta(seconds=15)
    w.add({"x": [12]}, T0 + timedelta(seconds=12))  # [10, 20) is open: its pane takes the row
    assert w.late_rows == 0
    (c,) = w.add({"x": [21]}, T0 + timedelta(seconds=21))
    assert (c.rows, c.start, c.end) == ({"x": [11, 12]}, T0 + timedelta(seconds=10), T0 + timedelta(seconds=20))


def test_a_window_restored_from_a_state_without_its_progress_continues_like_the_original():
    """A checkpoint written before windows kept emitted/first/any_emitted: the restored window
    closes the same windows from there on (none twice, none lost)."""
    a = TimeWindow(seconds=10, step=5)
    for t in (1, 6, 11):
        a.add({"x": [t]}, T0 + timedelta(seconds=t))
    legacy = {k: v for k, v in json.loads(json.dumps(a.state())).items()
              if k not in ("emitted", "first", "any_emitted")}
    b = TimeWindow.from_state(legacy)
    for t in (16, 21, 33):
        at = T0 + timedelta(seconds=t)
        assert [_view(c) for c in b.add({"x": [t]}, at)] == [_view(c) for c in a.add({"x": [t]}, at)]
    assert [(c.rows, c.end) for c in b.advance(T0 + timedelta(seconds=60))] == [
        ({"x": [33]}, T0 + timedelta(seconds=35)), ({"x": [33]}, T0 + timedelta(seconds=40))]


def test_empty_adds_close_nothing():
    for w in (CountWindow(size=2), TimeWindow(seconds=10)):
        w.add({"x": [1]}, T0)
        assert w.add(None, T0 + timedelta(days=1)) == [] and w.add({}, T0 + timedelta(days=1)) == []
        assert w.add({"x": []}, T0 + timedelta(days=1)) == []
        assert w.buffered_rows == 1
    assert TimeWindow(seconds=10).flush() == []
    assert CountWindow(size=3).flush() == []


def test_row_ids_must_match_the_rows():
    for w in (CountWindow(size=2), TimeWindow(seconds=10)):
        with pytest.raises(ValueError, match=r"^3 row ids for 2 rows$"):
            w.add({"x": [1, 2]}, T0, ["a", "b", "c"])


def test_closed_window_ids():
    assert ClosedWindow(rows={}, start=None, end=None, size=0, seen=0).ids() is None
    assert ClosedWindow(rows={}, start=None, end=None, size=2, seen=2, row_ids=[None, None]).ids() is None
    assert ClosedWindow(rows={}, start=None, end=None, size=3, seen=3, row_ids=[None, "a", None]).ids() == [
        "0", "a", "2"]


def test_reservoir_beyond_max_rows_keeps_max_rows_and_counts_all():
    w = TimeWindow(seconds=60, max_rows=3)
    w.add({"x": list(range(10))}, T0, [f"i{k}" for k in range(10)])
    w.add({"x": list(range(10, 12)), "y": ["a", "b"]}, T0 + timedelta(seconds=1))
    (c,) = w.flush()
    assert (c.size, c.seen) == (3, 12)
    assert len(c.rows["x"]) == 3 and len(set(c.rows["x"])) == 3 and set(c.rows["x"]) <= set(range(12))
    # each kept row keeps its id and its other columns
    for x, rid, y in zip(c.rows["x"], c.row_ids, c.rows.get("y", [None] * 3), strict=True):
        assert rid == (f"i{x}" if x < 10 else None)
        assert y == ({10: "a", 11: "b"}.get(x))


def test_reservoir_replacement_follows_algorithm_r_with_the_splitmix_draws():
    """Algorithm R, row by row: the i-th row (1-based) replaces slot j = draw(i) mod i when j < k."""
    k, n, key = 4, 40, 7
    pane = _Pane(key)
    for i in range(n):
        pane.add({"x": [i]}, 1, T0, k)
    slots = list(range(k))
    for i in range(k, n):
        j = _rand(key, i + 1) % (i + 1)
        if j < k:
            slots[j] = i
    assert pane.rows["x"] == slots and pane.seen == n and pane.stored == k


def test_rand_is_splitmix64():
    # splitmix64's finaliser (Steele, Lea, Flood 2014) of the state a*golden + b*c1 + c2, by hand:
    # for a = b = 0 the state is 0x94D049BB133111EB
    z = 0x94D049BB133111EB
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    assert _rand(0, 0) == z ^ (z >> 31)
    draws = {_rand(1, b) for b in range(1000)}
    assert len(draws) == 1000 and all(0 <= d < 2**64 for d in draws)
    assert max(draws) >= 2**63  # the top bit is used


def test_pane_times_are_its_rows_extremes():
    p = _Pane(0)
    for s in (5, 2, 9, 3):
        p.add({"x": [s]}, 1, T0 + timedelta(seconds=s), None)
    assert (p.t_min, p.t_max) == (T0 + timedelta(seconds=2), T0 + timedelta(seconds=9))
    back = _Pane.from_state(json.loads(json.dumps(p.to_state())))
    assert back == p


def test_pane_from_an_old_checkpoint_with_ids_as_a_column():
    old = {"key": 3, "rows": {"x": [1, 2], "__id__": ["a-0", "a-1"]}, "stored": 2, "seen": 2,
           "t_min": "2026-01-01T00:00:00+00:00", "t_max": None}
    p = _Pane.from_state(old)
    assert (p.key, p.rows, p.ids, p.stored, p.seen, p.t_min, p.t_max) == (3, {"x": [1, 2]}, ["a-0", "a-1"], 2, 2,
                                                                          T0, None)
    p = _Pane.from_state({**old, "rows": {"x": [1, 2]}})
    assert p.ids == [None, None]


def test_a_fresh_time_window_state():
    s = TimeWindow(seconds=10).state()
    assert (s["emitted"], s["first"], s["any_emitted"], s["late_rows"], s["panes"]) == (None, None, False, 0, [])


def test_time_window_state_keeps_everything_it_needs():
    w = TimeWindow(seconds=20, step=10, max_rows=7)
    w.add({"x": [1]}, T0 + timedelta(seconds=1))
    w.add({"x": [2]}, T0 + timedelta(seconds=25))
    w.add({"x": [3]}, T0 + timedelta(seconds=2))  # late
    s = json.loads(json.dumps(w.state()))
    assert {k: s[k] for k in ("type", "seconds", "step", "max_rows", "late_rows", "first", "any_emitted")} == {
        "type": "time", "seconds": 20.0, "step": 10.0, "max_rows": 7, "late_rows": 1,
        "first": (T0 - EPOCH).total_seconds() // 10, "any_emitted": True}
    # the open pane's times span its rows' own times, the late row's (2 s) too
    assert [(p["t_min"], p["t_max"]) for p in s["panes"]] == [
        ((T0 + timedelta(seconds=2)).isoformat(), (T0 + timedelta(seconds=25)).isoformat())]
    b = window_from_state(s)
    assert isinstance(b, TimeWindow) and (b.seconds, b.step, b.max_rows, b.late_rows) == (20.0, 10.0, 7, 1)
    assert b._emitted == w._emitted and b._first == w._first and b._any_emitted is True
    legacy = {k: v for k, v in s.items() if k not in ("late_rows", "emitted", "first", "any_emitted")}
    c = TimeWindow.from_state(legacy)
    assert (c.late_rows, c._emitted, c._first, c._any_emitted) == (0, None, None, False)


def test_count_window_state_keeps_its_next_pane_key():
    w = CountWindow(size=4, step=2)
    w.add({"x": [1, 2, 3]}, T0)
    s = json.loads(json.dumps(w.state()))
    assert (s["type"], s["size"], s["step"], s["next_key"]) == ("count", 4, 2, 2)
    b = window_from_state(s)
    assert isinstance(b, CountWindow) and b._next_key == 2 and b.state() == w.state()


@pytest.mark.parametrize(("size", "step"), [(6, 4), (4, 5), (4, 0), (4, -2)])
def test_count_step_must_divide_size(size, step):
    with pytest.raises(ValueError, match=rf"^window step must divide size \({size}\), got {step}$"):
        CountWindow(size=size, step=step)


@pytest.mark.parametrize(("seconds", "step"), [(10, 3), (10, 20), (10, -5), (0.3, 0.1 + 1e-6)])
def test_time_step_must_divide_seconds(seconds, step):
    with pytest.raises(ValueError, match=r"^window step must divide seconds"):
        TimeWindow(seconds=seconds, step=step)


def test_valid_windows_and_their_messages():
    assert TimeWindow(seconds=0.3, step=0.1)._per_window == 3  # 0.3 / 0.1 is 2.9999999999999996
    assert TimeWindow(seconds=60).step == 60.0 and TimeWindow(seconds=60).max_rows == 50_000
    assert TimeWindow(seconds=60, max_rows=None).max_rows is None
    assert CountWindow().size == 500 and CountWindow().step == 500 and CountWindow(size=1).step == 1
    assert TimeWindow().seconds == 60.0
    with pytest.raises(ValueError, match=r"^window size must be a positive number of rows, got 0$"):
        CountWindow(size=0)
    with pytest.raises(ValueError, match=r"^window seconds must be positive, got -1$"):
        TimeWindow(seconds=-1)
    with pytest.raises(ValueError, match=r"^window seconds must be positive, got 0$"):
        TimeWindow(seconds=0)
    assert TimeWindow(seconds=1, max_rows=1).max_rows == 1
    with pytest.raises(ValueError, match=r"^window max_rows must be positive, got -4$"):
        TimeWindow(seconds=1, max_rows=-4)


def test_window_from_config():
    c = window_from_config(None)
    assert isinstance(c, CountWindow) and (c.size, c.step) == (500, 500)
    c = window_from_config({"size": 6, "step": 3})
    assert isinstance(c, CountWindow) and (c.size, c.step) == (6, 3)
    t = window_from_config({"type": "time", "seconds": 30, "step": 10, "max_rows": 9})
    assert isinstance(t, TimeWindow) and (t.seconds, t.step, t.max_rows) == (30.0, 10.0, 9)
    with pytest.raises(ValueError, match=r"^window.type must be 'count' or 'time', got 'rows'$"):
        window_from_config({"type": "rows"})
    with pytest.raises(ValueError, match=r"^unknown window key\(s\) \['seconds'\] for type 'count'; "
                                         r"allowed: \['size', 'step'\]$"):
        window_from_config({"type": "count", "seconds": 3})
    with pytest.raises(ValueError, match=r"allowed: \['max_rows', 'seconds', 'step'\]$"):
        window_from_config({"type": "time", "size": 3})
    cfg = {"type": "time", "seconds": 5}
    window_from_config(cfg)
    assert cfg == {"type": "time", "seconds": 5}  # the caller's mapping is not changed

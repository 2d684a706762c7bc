"""The Kafka log's unassigned watch (``kafka_log.AssignmentWatch``) decides from the group's
committed and end offsets at two looks: scripted offsets, no broker, a clock it reads being moved."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from inferwatch.errors import LogError
from inferwatch.kafka_log import AssignmentWatch


class _Owner:
    """A log whose group offsets are a script: one (committed, end) pair per look."""

    def __init__(self, looks: list[tuple[dict[int, int], dict[int, int]]]):
        self.cfg = SimpleNamespace(unassigned_timeout_s=180.0)
        self._looks: Iterator[tuple[dict[int, int], dict[int, int]]] = iter(looks)
        self.asked = 0

    def group_offsets(self, topic: str, group: str) -> tuple[dict[int, int], dict[int, int]]:
        self.asked += 1
        return next(self._looks)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr("inferwatch.kafka_log.time.monotonic", lambda: now[0])
    return now


def _watch(owner: _Owner, clock: list[float]) -> AssignmentWatch:
    w = AssignmentWatch(owner, "t", "g")  # type: ignore[arg-type]
    w.check(False)
    clock[0] += 181  # past the timeout: the next check looks
    return w


def test_positions_that_move_while_entries_wait_are_another_member_at_work(clock: list[float]) -> None:
    # lag at every look (100, 80, 50, 10 entries), the committed offsets moving: never a fault
    owner = _Owner([({0: c}, {0: 100}) for c in (0, 20, 50, 90)])
    w = _watch(owner, clock)
    for _ in range(4):
        w.check(False)
        clock[0] += 30  # the watch looks at most every 30 s
    assert owner.asked == 4


def test_positions_that_stand_still_while_entries_wait_make_the_member_anew(clock: list[float]) -> None:
    owner = _Owner([({0: 20, 1: 5}, {0: 100, 1: 5}), ({0: 20, 1: 5}, {0: 101, 1: 5})])
    w = _watch(owner, clock)
    w.check(False)  # the first look only takes the positions
    clock[0] += 30
    with pytest.raises(LogError, match=r"81 entries wait.*joining the group anew"):
        w.check(False)


def test_no_lag_is_no_fault_even_when_nothing_moves(clock: list[float]) -> None:
    owner = _Owner([({0: 100}, {0: 100})] * 3)
    w = _watch(owner, clock)
    for _ in range(3):
        w.check(False)
        clock[0] += 30
    assert owner.asked == 3


def test_looks_are_30_s_apart_and_holding_starts_the_watch_over(clock: list[float]) -> None:
    owner = _Owner([({0: 0}, {0: 10})] * 2)
    w = _watch(owner, clock)
    w.check(False)
    clock[0] += 29
    w.check(False)  # too soon for a second look
    assert owner.asked == 1
    w.check(True)  # partitions again: the unheld time and the positions seen are forgotten
    w.check(False)
    clock[0] += 179
    w.check(False)  # not yet unheld for the timeout
    assert owner.asked == 1
    clock[0] += 2
    w.check(False)  # a first look again (nothing seen to compare with): no fault
    assert owner.asked == 2

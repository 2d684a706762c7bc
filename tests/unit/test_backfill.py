"""Backfill rows and pacing, without services: ids are stable across runs, the recorded pace is kept."""

from __future__ import annotations

import pytest

from collectors.backfill import Pacer, row_envelope
from inferwatch.errors import DecodeError


def test_rows_without_id_get_the_same_id_every_run_and_different_rows_differ():
    row = {"model": "m", "request": {"instances": [[1]]}}
    a, b = row_envelope(row, 3), row_envelope(dict(row), 3)
    assert a.fields["id"] == b.fields["id"] and a.fields["id"].startswith("bf-")
    assert row_envelope(row, 4).fields["id"] != a.fields["id"]  # the same row twice in a file: two exchanges
    assert row_envelope({**row, "id": 7}, 3).fields["id"] == "7"


def test_csv_cells_become_features_and_fields():
    env = row_envelope({"timestamp": "2026-01-01T00:00:00Z", "age": "31", "city": "Oslo", "y": "0.5",
                        "latency_ms": "2"}, 1, model="m", output_columns=("y",), tabular=True)
    f = env.fields
    assert f["inputs"] == {"age": [31], "city": ["Oslo"]} and f["outputs"] == {"y": [0.5]}
    assert f["latency_ms"] == 2.0 and f["model"] == "m"
    with pytest.raises(DecodeError, match="no model"):
        row_envelope({"a": "1"}, 1, tabular=True)


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def sleep(self, s: float) -> None:
        self.slept.append(round(s, 6))
        self.now += s

    def clock(self) -> float:
        return self.now


def test_recorded_pace_divided_by_speed():
    t = FakeTime()
    p = Pacer(2.0, sleep=t.sleep, clock=t.clock)
    for ts in ("2026-01-01T00:00:00Z", "2026-01-01T00:00:04Z", "2026-01-01T00:00:05Z", "2026-01-01T00:00:05Z"):
        p.wait(ts)
    assert t.slept == [2.0, 0.5]  # gaps 4 s and 1 s at twice the speed; no wait for the same instant
    fast = Pacer(0.0, sleep=t.sleep, clock=t.clock)
    fast.wait("2026-01-01T00:00:00Z")
    fast.wait("2027-01-01T00:00:00Z")
    assert t.slept == [2.0, 0.5]

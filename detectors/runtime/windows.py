"""Windows over a stream of rows: count windows and event-time windows, bounded memory.

* :class:`CountWindow` ``(size, step=None)`` — tumbling every ``size`` rows, or sliding:
  the last ``size`` rows, evaluated every ``step`` rows (``size`` a multiple of ``step``).
* :class:`TimeWindow` ``(seconds, step=None, max_rows=50_000)`` — tumbling windows
  ``[k*seconds, (k+1)*seconds)`` aligned to the epoch, or sliding windows of ``seconds``
  moving by ``step`` seconds. Event time (the record timestamps) drives them: a window
  closes when a row at or past its end arrives, or on :meth:`TimeWindow.advance` /
  :meth:`TimeWindow.flush`. Rows older than the open window ("late") join the open window
  and are counted in ``late_rows``. Each pane keeps at most ``max_rows`` rows, a uniform
  reservoir sample beyond that (deterministic, so a restored window samples the same).

Both are built from panes of ``step`` rows or seconds, so memory is bounded by
``size`` rows (count) or ``seconds/step * max_rows`` rows (time) whatever the stream
length. ``add(table, timestamp, ids)`` returns the windows it closed; a row's id
(``<record id>-<row>``) travels beside its row, through sampling too (``ClosedWindow.row_ids``).
``state()`` / ``from_state()`` give a JSON-able snapshot of the open panes.

>>> from datetime import datetime, timezone
>>> t = datetime(2024, 1, 1, tzinfo=timezone.utc)
>>> w = CountWindow(size=4, step=2)
>>> [c.rows["x"] for c in w.add({"x": [1, 2, 3, 4, 5, 6]}, t)]
[[1, 2, 3, 4], [3, 4, 5, 6]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from inferwatch.record import parse_timestamp
from inferwatch.table import Table, concat, n_rows

__all__ = ["ClosedWindow", "CountWindow", "TimeWindow", "Window", "window_from_config"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class ClosedWindow:
    """A window ready to test: its rows, time span and sizes."""

    rows: Table
    start: datetime | None
    end: datetime | None
    size: int
    """Rows in ``rows``."""
    seen: int
    """Rows that fell in the window (``>= size`` when a pane was sampled)."""
    row_ids: list[str | None] = field(default_factory=list)
    """Each row's id, in the order of ``rows`` (``None`` for a row added without one)."""

    def ids(self) -> list[str] | None:
        """:attr:`row_ids` for a detector's ``update``: ``None`` when no row has one, else each
        row's id (a row without one named by its position in the window)."""
        if not any(r is not None for r in self.row_ids):
            return None
        return [r if r is not None else str(i) for i, r in enumerate(self.row_ids)]


@dataclass
class _Pane:
    key: int
    rows: Table = field(default_factory=dict)
    ids: list[str | None] = field(default_factory=list)
    stored: int = 0
    seen: int = 0
    t_min: datetime | None = None
    t_max: datetime | None = None

    def add(self, table: Mapping[str, Sequence[Any]], n: int, ts: datetime, max_rows: int | None,
            ids: Sequence[str | None] | None = None) -> None:
        self.t_min = ts if self.t_min is None or ts < self.t_min else self.t_min
        self.t_max = ts if self.t_max is None or ts > self.t_max else self.t_max
        room = n if max_rows is None else max(0, min(n, max_rows - self.stored))
        if room:
            for k in table:
                if k not in self.rows:
                    self.rows[k] = [None] * self.stored
            for k, col in self.rows.items():
                src = table.get(k)
                col.extend(src[:room] if src is not None else [None] * room)
            self.ids.extend(ids[:room] if ids is not None else [None] * room)
            self.stored += room
        self.seen += room
        for i in range(room, n):  # reservoir sampling (Algorithm R), deterministic
            self.seen += 1
            j = _rand(self.key, self.seen) % self.seen
            if max_rows is not None and j < max_rows:
                self.ids[j] = ids[i] if ids is not None else None
                for k, col in self.rows.items():
                    src = table.get(k)
                    col[j] = src[i] if src is not None else None
                for k in table:
                    if k not in self.rows:
                        self.rows[k] = [None] * self.stored
                        self.rows[k][j] = table[k][i]

    def to_state(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "rows": self.rows,
            "ids": self.ids,
            "stored": self.stored,
            "seen": self.seen,
            "t_min": self.t_min.isoformat() if self.t_min else None,
            "t_max": self.t_max.isoformat() if self.t_max else None,
        }

    @classmethod
    def from_state(cls, d: Mapping[str, Any]) -> _Pane:
        rows = {str(k): list(v) for k, v in d["rows"].items()}
        # a checkpoint written before ids had their own field kept them as the column "__id__"
        ids = d["ids"] if "ids" in d else rows.pop("__id__", None) or [None] * int(d["stored"])
        return cls(
            key=int(d["key"]),
            rows=rows,
            ids=list(ids),
            stored=int(d["stored"]),
            seen=int(d["seen"]),
            t_min=_ts(d["t_min"]),
            t_max=_ts(d["t_max"]),
        )


def _ts(v: Any) -> datetime | None:
    return None if v is None else parse_timestamp(v)


def _rand(a: int, b: int) -> int:
    """splitmix64 of two integers: a reproducible pseudo-random draw."""
    z = (a * 0x9E3779B97F4A7C15 + b * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def _check_ids(ids: Sequence[str] | None, n: int) -> None:
    if ids is not None and len(ids) != n:
        raise ValueError(f"{len(ids)} row ids for {n} rows")


def _close(panes: Sequence[_Pane], start: datetime | None = None, end: datetime | None = None) -> ClosedWindow:
    t_mins = [p.t_min for p in panes if p.t_min is not None]
    t_maxs = [p.t_max for p in panes if p.t_max is not None]
    return ClosedWindow(
        rows=concat(p.rows for p in panes if p.stored),
        start=start if start is not None else (min(t_mins) if t_mins else None),
        end=end if end is not None else (max(t_maxs) if t_maxs else None),
        size=sum(p.stored for p in panes),
        seen=sum(p.seen for p in panes),
        row_ids=[i for p in panes if p.stored for i in p.ids],
    )


class CountWindow:
    """Tumbling (``step=None``) or sliding count window; see the module docstring."""

    def __init__(self, size: int = 500, step: int | None = None) -> None:
        if int(size) <= 0:
            raise ValueError(f"window size must be a positive number of rows, got {size!r}")
        step = int(size) if step is None else int(step)
        if step <= 0 or step > size or size % step:
            raise ValueError(f"window step must divide size ({size}), got {step!r}")
        self.size = int(size)
        self.step = step
        self._panes: list[_Pane] = [_Pane(0)]
        self._next_key = 1

    @property
    def buffered_rows(self) -> int:
        return sum(p.stored for p in self._panes)

    def add(self, table: Mapping[str, Sequence[Any]] | None, timestamp: datetime,
            ids: Sequence[str] | None = None) -> list[ClosedWindow]:
        """Add a record's rows (``ids``: their row ids); returns the windows that closed."""
        n = n_rows(table)
        out: list[ClosedWindow] = []
        if table is None or n == 0:
            return out
        _check_ids(ids, n)
        i = 0
        per_window = self.size // self.step
        while i < n:
            pane = self._panes[-1]
            take = min(self.step - pane.stored, n - i)
            # the pane copies what it keeps: a record that fits whole is handed over as it is
            whole = i == 0 and take == n
            chunk = table if whole else {k: v[i : i + take] for k, v in table.items()}
            pane.add(chunk, take, timestamp, None, ids if whole or ids is None else ids[i : i + take])
            i += take
            if pane.stored == self.step:
                if len(self._panes) >= per_window:
                    out.append(_close(self._panes[-per_window:]))
                self._panes = self._panes[-(per_window - 1) :] if per_window > 1 else []
                self._panes.append(_Pane(self._next_key))
                self._next_key += 1
        return out

    def flush(self) -> list[ClosedWindow]:
        """Close the partial window (if it has rows the last window did not)."""
        if not self._panes[-1].stored:
            return []
        out = [_close(self._panes[-(self.size // self.step) :])]
        self._panes = [_Pane(self._next_key)]
        self._next_key += 1
        return out

    def advance(self, now: datetime) -> list[ClosedWindow]:
        """Count windows do not close on time."""
        return []

    def state(self) -> dict[str, Any]:
        return {"type": "count", "size": self.size, "step": self.step, "next_key": self._next_key,
                "panes": [p.to_state() for p in self._panes]}

    @classmethod
    def from_state(cls, d: Mapping[str, Any]) -> CountWindow:
        w = cls(int(d["size"]), int(d["step"]))
        w._next_key = int(d["next_key"])
        w._panes = [_Pane.from_state(p) for p in d["panes"]]
        return w


class TimeWindow:
    """Tumbling (``step=None``) or sliding event-time window; see the module docstring."""

    def __init__(self, seconds: float = 60.0, step: float | None = None, max_rows: int | None = 50_000) -> None:
        if float(seconds) <= 0:
            raise ValueError(f"window seconds must be positive, got {seconds!r}")
        step = float(seconds) if step is None else float(step)
        ratio = float(seconds) / step if step > 0 else 0.0
        if step <= 0 or step > seconds or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(f"window step must divide seconds ({seconds}), got {step!r}")
        if max_rows is not None and int(max_rows) <= 0:
            raise ValueError(f"window max_rows must be positive, got {max_rows!r}")
        self.seconds = float(seconds)
        self.step = step
        self.max_rows = None if max_rows is None else int(max_rows)
        self.late_rows = 0
        self._per_window = round(ratio)
        self._panes: list[_Pane] = []  # open panes, oldest first (keys may have gaps)
        self._emitted: int | None = None  # windows ending at pane keys <= this are closed
        self._first: int | None = None  # first pane key of the stream
        self._any_emitted = False

    def _key(self, ts: datetime) -> int:
        return math.floor((ts - _EPOCH).total_seconds() / self.step)

    def _bounds(self, last_key: int) -> tuple[datetime, datetime]:
        end = _EPOCH + timedelta(seconds=(last_key + 1) * self.step)
        return end - timedelta(seconds=self.seconds), end

    @property
    def buffered_rows(self) -> int:
        return sum(p.stored for p in self._panes)

    def _close_through(self, key: int, final: bool = False) -> list[ClosedWindow]:
        """Close every window ending at a pane key < ``key`` that holds rows.

        Sliding windows that would start before the first pane of the stream are
        partial and skipped; ``final`` (flush) skips windows ending after the last pane,
        and emits a partial start-up window if nothing else covered the rows.
        """
        out: list[ClosedWindow] = []
        per = self._per_window
        if not self._panes:
            self._emitted = key - 1 if self._emitted is None else max(self._emitted, key - 1)
            return out
        if self._first is None:
            self._first = self._panes[0].key
        last = self._panes[-1].key
        ends = sorted({p.key + j for p in self._panes for j in range(per)})
        for e in ends:
            if e >= key or (self._emitted is not None and e <= self._emitted):
                continue
            if final and e > last:
                continue
            if e - per + 1 < self._first and not (final and e == last and not self._any_emitted):
                continue
            members = [p for p in self._panes if e - per < p.key <= e]
            out.append(_close(members, *self._bounds(e)))
            self._any_emitted = True
        self._emitted = key - 1 if self._emitted is None else max(self._emitted, key - 1)
        self._panes = [p for p in self._panes if p.key > key - per]
        return out

    def add(self, table: Mapping[str, Sequence[Any]] | None, timestamp: datetime,
            ids: Sequence[str] | None = None) -> list[ClosedWindow]:
        """Add a record's rows (``ids``: their row ids); returns the windows that closed."""
        n = n_rows(table)
        if table is None or n == 0:
            return []
        _check_ids(ids, n)
        key = self._key(timestamp)
        floor = self._panes[-1].key if self._panes else (self._emitted + 1 if self._emitted is not None else key)
        out: list[ClosedWindow] = []
        if key < floor:
            self.late_rows += n
            key = floor
        if not self._panes or key > self._panes[-1].key:
            out = self._close_through(key)
            self._panes.append(_Pane(key))
        self._panes[-1].add(table, n, timestamp, self.max_rows, ids)
        return out

    def advance(self, now: datetime) -> list[ClosedWindow]:
        """Close the windows that ended before ``now`` (a watermark, e.g. wall clock)."""
        return self._close_through(self._key(now))

    def flush(self) -> list[ClosedWindow]:
        """Close every window that holds rows (end of a batch run)."""
        if not self._panes:
            return []
        return self._close_through(self._panes[-1].key + self._per_window, final=True)

    def state(self) -> dict[str, Any]:
        return {"type": "time", "seconds": self.seconds, "step": self.step, "max_rows": self.max_rows,
                "late_rows": self.late_rows, "emitted": self._emitted,
                "first": self._first, "any_emitted": self._any_emitted, "panes": [p.to_state() for p in self._panes]}

    @classmethod
    def from_state(cls, d: Mapping[str, Any]) -> TimeWindow:
        w = cls(float(d["seconds"]), float(d["step"]), d.get("max_rows"))
        w.late_rows = int(d.get("late_rows", 0))
        w._emitted = None if d.get("emitted") is None else int(d["emitted"])
        w._first = None if d.get("first") is None else int(d["first"])
        w._any_emitted = bool(d.get("any_emitted", False))
        w._panes = [_Pane.from_state(p) for p in d["panes"]]
        return w


Window = CountWindow | TimeWindow


def window_from_config(cfg: Mapping[str, Any] | None) -> Window:
    """``{type: count, size, step?}`` or ``{type: time, seconds, step?, max_rows?}``."""
    cfg = dict(cfg or {"type": "count", "size": 500})
    kind = cfg.pop("type", "count")
    allowed = {"count": {"size", "step"}, "time": {"seconds", "step", "max_rows"}}
    if kind not in allowed:
        raise ValueError(f"window.type must be 'count' or 'time', got {kind!r}")
    unknown = set(cfg) - allowed[kind]
    if unknown:
        raise ValueError(f"unknown window key(s) {sorted(unknown)} for type {kind!r}; allowed: {sorted(allowed[kind])}")
    if kind == "count":
        return CountWindow(**cfg)
    return TimeWindow(**cfg)


def window_from_state(d: Mapping[str, Any]) -> Window:
    return CountWindow.from_state(d) if d["type"] == "count" else TimeWindow.from_state(d)

"""Windows of prediction time, revised as late labels arrive.

A :class:`PerformanceTracker` keeps one :class:`~detectors.performance.RealizedPerformance`
window per (model, version, ``seconds``-long slot of prediction time). Predictions go to the
window of their timestamp; a label goes to the window that holds its row id, however late it
comes, as long as that window is still kept (the newest ``keep`` per model and version). A
label that arrives before its prediction waits (at most ``max_waiting``, oldest dropped and
counted) and attaches when the prediction comes. :meth:`revised` returns a Detection for
each window changed since the last call — same window, same Detection id, so a store that
upserts by id holds the latest figures. :meth:`snapshot` / :meth:`restore` keep all of it
across restarts (JSON); rows are keyed by id, so replaying the log after a restore counts
nothing twice.

>>> from datetime import datetime, UTC
>>> proto = RealizedPerformance(min_labelled=1).fit({"prediction": [0, 1], "truth": [0, 1]})
>>> t = PerformanceTracker(proto, seconds=3600)
>>> t.labels(["r1-0"], [1])                                    # the label comes first
>>> t.predictions("m", "v1", datetime(2026, 1, 1, 10, 5, tzinfo=UTC), {"prediction": [1, 0]},
...               ids=["r1-0", "r2-0"])
>>> [(d.window_size, d.extra["labelled"]) for d in t.revised()]
[(2, 1)]
>>> t.labels(["r2-0"], [1]); d = t.revised()[0]
>>> d.extra["metrics"]["accuracy"], str(d.window_start)
(0.5, '2026-01-01 10:00:00+00:00')
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson

from detectors.common._data import Data, columns_and_rows
from detectors.performance.realized import RealizedPerformance
from inferwatch.record import Detection

__all__ = ["PerformanceTracker"]

_FORMAT = "inferwatch-performance/1"
_Key = tuple[str, str, int]  # model, version, window start (epoch seconds)


class PerformanceTracker:
    """See the module docstring. ``prototype`` is a fitted detector copied for each window."""

    def __init__(self, prototype: RealizedPerformance, seconds: float = 3600.0, keep: int = 168,
                 max_waiting: int = 100_000) -> None:
        if seconds <= 0 or keep < 1 or max_waiting < 0:
            raise ValueError("seconds must be > 0, keep >= 1, max_waiting >= 0")
        self.prototype = prototype
        self.seconds, self.keep, self.max_waiting = float(seconds), int(keep), int(max_waiting)
        self._windows: dict[_Key, RealizedPerformance] = {}
        self._where: dict[str, _Key] = {}  # row id -> its window
        self._waiting: OrderedDict[str, Any] = OrderedDict()  # labels before their prediction
        self._dirty: set[_Key] = set()
        self.counts = {"labels": 0, "matched": 0, "waited": 0, "dropped_waiting": 0, "windows_evicted": 0,
                       "resent_elsewhere": 0}

    @property
    def waiting(self) -> int:
        """Labels kept until their prediction arrives."""
        return len(self._waiting)

    def waiting_for(self, model: str) -> int:
        """Labels of ``model`` kept until their prediction arrives."""
        return sum(1 for _, m in self._waiting.values() if m == model)

    def _slot(self, ts: datetime) -> int:
        epoch = ts.timestamp()
        return int(epoch // self.seconds * self.seconds)

    def predictions(self, model: str, version: str | None, timestamp: datetime, rows: Data,
                    ids: Sequence[str] | None = None) -> None:
        """Rows predicted at ``timestamp``; labels find them by their ``ids`` (one per row). A row
        id already held by another window (the same prediction re-sent later) is not added again."""
        key = (model, version or "", self._slot(timestamp))
        cols, n = columns_and_rows(rows)
        if ids is not None:  # a row already in another window (re-sent with a new time) stays there
            ids = [str(r) for r in ids]
            keep = np.array([self._where.get(r, key) == key for r in ids], dtype=bool)
            if not keep.all():
                self.counts["resent_elsewhere"] += int((~keep).sum())
                cols = {c: v[keep] for c, v in cols.items()}
                ids = [r for r, k in zip(ids, keep.tolist(), strict=True) if k]
                n = int(keep.sum())
        if not n:
            return
        det = self._windows.get(key)
        if det is None:
            det = copy.deepcopy(self.prototype).reset()
            self._windows[key] = det
            self._evict(model, version or "")
        if key not in self._windows:  # older than every kept window
            return
        before = set(det.row_ids())
        det.update(cols, ids=ids)
        new = [r for r in det.row_ids() if r not in before]
        for rid in new:
            self._where[rid] = key
        ready = [r for r in new if r in self._waiting]
        if ready:
            det.update({det.truth: [self._waiting.pop(r)[0] for r in ready]}, ids=ready)
            self.counts["matched"] += len(ready)
        self._dirty.add(key)

    def labels(self, ids: Sequence[str], truth: Sequence[Any], model: str | None = None) -> None:
        """True labels by row id (``<record id>-<row>``), in any order, before or after their
        prediction; ``model`` (when known) only counts the waiting ones per model."""
        by_window: dict[_Key, tuple[list[str], list[Any]]] = {}
        for rid, value in zip(ids, truth, strict=True):
            self.counts["labels"] += 1
            key = self._where.get(rid)
            if key is None:
                self._waiting[rid] = (value, model)
                self._waiting.move_to_end(rid)
                self.counts["waited"] += 1
                while len(self._waiting) > self.max_waiting:
                    self._waiting.popitem(last=False)
                    self.counts["dropped_waiting"] += 1
                continue
            ids_, vals = by_window.setdefault(key, ([], []))
            ids_.append(rid)
            vals.append(value)
        for key, (ids_, vals) in by_window.items():
            det = self._windows[key]
            det.update({det.truth: vals}, ids=ids_)
            self.counts["matched"] += len(ids_)
            self._dirty.add(key)

    def _evict(self, model: str, version: str) -> None:
        mine = sorted(k for k in self._windows if k[0] == model and k[1] == version)
        for key in mine[: max(0, len(mine) - self.keep)]:
            for rid in self._windows.pop(key).row_ids():
                self._where.pop(rid, None)
            self._dirty.discard(key)
            self.counts["windows_evicted"] += 1

    def windows_at(self, model: str, start: int) -> dict[str, RealizedPerformance]:
        """The windows of ``model`` starting at ``start`` (epoch seconds), by version."""
        return {k[1]: d for k, d in self._windows.items() if k[0] == model and k[2] == start}

    def detection(self, key: _Key) -> Detection:
        det = self._windows[key].result()
        det.model, det.version = key[0], key[1] or None
        det.window_start = datetime.fromtimestamp(key[2], UTC)
        det.window_end = det.window_start + timedelta(seconds=self.seconds)
        return det

    def revised(self) -> list[Detection]:
        """Detections of the windows changed since the last call, oldest window first."""
        out = [self.detection(k) for k in sorted(self._dirty, key=lambda k: (k[2], k[0], k[1])) if k in self._windows]
        self._dirty.clear()
        return out

    def windows(self) -> list[Detection]:
        """Detections of every kept window."""
        return [self.detection(k) for k in sorted(self._windows, key=lambda k: (k[2], k[0], k[1]))]

    def snapshot(self) -> bytes:
        """Everything kept, as JSON bytes (store it with the consumer offset)."""
        return orjson.dumps({
            "format": _FORMAT,
            "windows": [{"model": k[0], "version": k[1], "start": k[2], "rows": d.rows_state()}
                        for k, d in self._windows.items()],
            "waiting": list(self._waiting.items()),
            "dirty": [list(k) for k in self._dirty],
            "counts": self.counts,
        }, option=orjson.OPT_SERIALIZE_NUMPY)

    def restore(self, raw: bytes) -> None:
        state = orjson.loads(raw)
        if state.get("format") != _FORMAT:
            raise ValueError(f"not a performance tracker snapshot: {state.get('format')!r}")
        self._windows, self._where, self._dirty = {}, {}, set()
        for w in state["windows"]:
            key = (w["model"], w["version"], int(w["start"]))
            det = copy.deepcopy(self.prototype).reset()
            det.load_rows(w["rows"])
            self._windows[key] = det
            for rid in det.row_ids():
                self._where[rid] = key
        self._waiting = OrderedDict((k, (v[0], v[1])) for k, v in state["waiting"])
        self._dirty = {(k[0], k[1], int(k[2])) for k in state["dirty"]}
        self.counts.update(state["counts"])

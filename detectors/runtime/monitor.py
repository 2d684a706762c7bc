"""The bridge the pipeline calls: records in, detections out, window state checkpointed.

Built by :func:`build_monitor` from a plain config dict (``window``, ``detectors``,
``models``: validated by :mod:`detectors.runtime.config`) and the registry of detector types
(:class:`inferwatch.detector.DetectorRegistry`, filled by the wiring).

:meth:`Monitor.process` groups rows by (model, version) — records of a model with no
reference are counted in ``stats["skipped"]`` and skipped — feeds one window per group
and target (inputs / outputs), and when a window closes runs each detector on it and
returns the Detections with ``model``, ``version``, ``window_start``/``window_end``,
``window_size`` and ``reference_id`` filled. Columns missing against the reference, a
detector that cannot fit or test, are data-quality Detections (``kind="quality"``,
``detector="schema"``), never a crash.

:meth:`Monitor.snapshot` / :meth:`Monitor.restore` capture every open window as JSON
bytes, to store beside the consumer offset: restoring and replaying from that offset
neither loses nor double-counts a window. A group keeps the reference it started with
until restart-safe: the snapshot names it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from detectors.runtime.config import DetectorSpec, parse_monitor_config
from detectors.runtime.windows import ClosedWindow, Window, window_from_config, window_from_state
from inferwatch.detector import Detector, DetectorRegistry
from inferwatch.errors import DetectorError
from inferwatch.record import Detection, InferenceRecord, row_id
from inferwatch.references import ReferenceInfo, ReferenceStore
from inferwatch.table import n_rows

__all__ = ["Monitor", "WindowFeed", "build_monitor"]

_FORMAT = "inferwatch-monitor/1"

ALL_VERSIONS = "*"
"""The version key of a model's window across all its versions (detector types registered
``across_versions``); its Detections carry ``version=None``."""

VARIANT = "variant"
"""The column in which a window across versions holds each row's version."""


def _table(rec: InferenceRecord, on: str, with_truth: bool) -> dict[str, Any] | None:
    """What a record gives a window of target ``on``; with ``with_truth``, its truth columns beside
    (when they label every row)."""
    if on == "inputs":
        table = rec.inputs
    elif on == "outputs":
        table = rec.outputs
    else:  # both: only a record that carries inputs and outputs has rows of both
        table = {**rec.inputs, **rec.outputs} if rec.inputs and rec.outputs else None
    if table and with_truth and rec.truth and n_rows(rec.truth) == n_rows(table):
        table = {**table, **{k: v for k, v in rec.truth.items() if k not in table}}
    return table


def build_monitor(cfg: Mapping[str, Any] | None, references: ReferenceStore, types: DetectorRegistry) -> Monitor:
    """A :class:`Monitor` from a config dict (see :mod:`detectors.runtime.config`), its detector
    ``type`` names looked up in ``types`` (the wiring's :data:`~inferwatch.wiring.DETECTORS`)."""
    mc = parse_monitor_config(cfg, types)
    return Monitor(mc.window, mc.specs, references, models=mc.models)


@dataclass
class _Group:
    """One (model, version, target): its window, reference and fitted detectors."""

    model: str
    version: str | None
    on: str
    reference: ReferenceInfo
    window: Window
    detectors: list[Detector] | None = None
    fit_errors: dict[str, str] = field(default_factory=dict)
    #: windows closed so far: the next window's sequence number (part of its detections' ids)
    closed: int = 0


class Monitor:
    """Windows and detectors per (model, version); see the module docstring."""

    def __init__(
        self,
        window: Mapping[str, Any],
        specs: list[DetectorSpec],
        references: ReferenceStore,
        *,
        models: list[str] | None = None,
        reference_ttl: float = 60.0,
    ) -> None:
        self.window_cfg = dict(window)
        self.specs = list(specs)
        self.references = references
        self.models = None if models is None else set(models)
        self.reference_ttl = reference_ttl
        self.stats: Counter[str] = Counter()
        self._groups: dict[tuple[str, str | None, str], _Group] = {}
        self._no_ref: dict[tuple[str, str | None], float] = {}
        self._targets = sorted({(s.on, s.across_versions) for s in self.specs})
        self._output_columns: dict[tuple[str, str | None], set[str]] = {}
        # labels: the reference columns performance detectors learn from (no other detector sees
        # them), and the targets whose windows take a record's truth columns beside its rows
        learners = [s.build() for s in self.specs if getattr(s.factory, "kind", None) == "performance"]
        self._truth_columns = {t for d in learners if isinstance(t := getattr(d, "truth", None), str)}
        self._truth_targets = {(s.on, s.across_versions) for s in self.specs
                               if getattr(s.factory, "kind", None) == "performance"}

    # -- records in ---------------------------------------------------------------------
    def _group(self, model: str, version: str | None, on: str) -> _Group | None:
        key = (model, version, on)
        group = self._groups.get(key)
        if group is not None:
            return group
        miss = self._no_ref.get((model, version))
        if miss is not None and time.monotonic() - miss < self.reference_ttl:
            return None
        info = self.references.latest(model, None if version == ALL_VERSIONS else version)
        if info is None and version == ALL_VERSIONS:  # a window across versions: the newest of any
            known = self.references.list(model)
            info = known[-1] if known else None
        if info is None:
            self._no_ref[(model, version)] = time.monotonic()
            return None
        self._no_ref.pop((model, version), None)
        group = _Group(model, version, on, info, window_from_config(self.window_cfg))
        self._groups[key] = group
        return group

    def process(self, records: Iterable[InferenceRecord]) -> list[Detection]:
        """Feed records; returns the detections of every window that closed."""
        out: list[Detection] = []
        for rec in records:
            self.stats["records"] += 1
            if self.models is not None and rec.model not in self.models:
                self.stats["ignored"] += 1
                continue
            used = False
            if rec.outputs:
                self._output_columns.setdefault((rec.model, rec.version), set()).update(rec.outputs)
                self._output_columns.setdefault((rec.model, ALL_VERSIONS), set()).update(rec.outputs)
            for on, across in self._targets:
                table = _table(rec, on, (on, across) in self._truth_targets)
                if not table:
                    continue
                group = self._group(rec.model, ALL_VERSIONS if across else rec.version, on)
                if group is None:
                    continue
                used = True
                try:
                    n = n_rows(table)
                    if across:  # one window for the model's versions: each row says its own
                        table = {**table, VARIANT: [rec.version or ""] * n}
                    ids = [row_id(rec.id, i) for i in range(n)]
                    closed = group.window.add(table, rec.timestamp, ids)
                except (TypeError, ValueError, AttributeError) as exc:
                    self.stats["bad_rows"] += 1
                    out.append(self._quality(group, None, f"unusable {on} table: {exc}", record_id=rec.id))
                    continue
                for window in closed:
                    out.extend(self._run(group, window))
            if not used:
                self.stats["skipped"] += 1
        return out

    def advance(self, now: datetime) -> list[Detection]:
        """Close time windows that ended before ``now`` (call on idle streams)."""
        out: list[Detection] = []
        for group in self._groups.values():
            for window in group.window.advance(now):
                out.extend(self._run(group, window))
        return out

    def flush(self) -> list[Detection]:
        """Close every open window (end of a batch run)."""
        out: list[Detection] = []
        for group in self._groups.values():
            for window in group.window.flush():
                out.extend(self._run(group, window))
        return out

    # -- running detectors ------------------------------------------------------------
    def _fit(self, group: _Group, window: ClosedWindow) -> list[Detector]:
        if group.detectors is None:
            group.detectors = []
            frame = self.references.load(group.reference.id)
            # The reference may hold inputs and outputs side by side: output detectors
            # see only the output columns, input detectors all but the output columns.
            # A both-target sees the columns its rows have. Label columns (named by performance
            # detectors) go only to the detectors that learn from them.
            outputs = self._output_columns.get((group.model, group.version), set())
            if group.on in ("outputs", "both"):
                frame = frame[[c for c in frame.columns if c in window.rows or c in self._truth_columns]]
            elif outputs:
                frame = frame[[c for c in frame.columns if c not in outputs]]
            across = group.version == ALL_VERSIONS
            for spec in self.specs:
                if spec.on != group.on or spec.across_versions != across:
                    continue
                det = spec.build()
                mine = getattr(det, "truth", None) if det.kind == "performance" else None
                own = frame[[c for c in frame.columns if c not in self._truth_columns or c == mine]]
                try:
                    det.fit(own)
                except (DetectorError, ValueError, TypeError) as exc:
                    group.fit_errors[spec.name] = str(exc)
                    continue
                group.detectors.append(det)
        return group.detectors

    def _fill(self, det: Detection, group: _Group, window: ClosedWindow | None) -> Detection:
        det.model = group.model
        det.version = None if group.version == ALL_VERSIONS else group.version
        det.reference_id = group.reference.id
        if window is not None:
            det.window_start = window.start
            det.window_end = window.end
            det.window_size = window.size
            det.extra.setdefault("rows_seen", window.seen)
            det.extra.setdefault("window_seq", group.closed - 1)
        det.extra.setdefault("on", group.on)
        return det

    def _quality(self, group: _Group, window: ClosedWindow | None, reason: str, **extra: Any) -> Detection:
        det = Detection(detector="schema", kind="quality", model=group.model, is_drift=True)
        det.extra.update(reason=reason, **extra)
        return self._fill(det, group, window)

    def open_window(self, model: str, version: str | None, on: str, columns: Iterable[str]) -> WindowFeed | None:
        """A window fed batch by batch (a batch report over a large file): every batch goes
        straight to the detectors, which keep only their fitted columns, so the window is
        never held as one table. ``columns`` are the batches' column names; ``None`` when
        there is no reference for (model, version)."""
        group = self._group(model, version, on)
        if group is None:
            return None
        names: dict[str, list[Any]] = {str(c): [] for c in columns}
        detectors = self._fit(group, ClosedWindow(rows=names, start=None, end=None, size=0, seen=0))
        for det in detectors:
            det.reset()
        return WindowFeed(self, group, list(names), detectors)

    def _run(self, group: _Group, window: ClosedWindow) -> list[Detection]:
        detectors = self._fit(group, window)
        return self._results(group, window, detectors, {})

    def _results(self, group: _Group, window: ClosedWindow, detectors: list[Detector],
                 errors: dict[int, Exception], fed: bool = False) -> list[Detection]:
        """The detections of a closed window: the schema check, then each detector's result
        (``fed``: the detectors already hold the window's rows; ``errors``: detectors, by
        position, whose update failed)."""
        self.stats["windows"] += 1
        group.closed += 1  # this window is number group.closed - 1 of its group
        out: list[Detection] = []
        expected: set[str] = set()
        for det in detectors:
            expected.update(getattr(det, "fitted_features", None) or ())
        missing = sorted(expected - set(window.rows))
        unexpected = sorted(set(window.rows) - set(group.reference.columns))
        if missing or group.fit_errors:
            reason = []
            if missing:
                reason.append(f"columns missing vs reference: {missing}")
            if group.fit_errors:
                reason.append(f"detectors not fitted: {group.fit_errors}")
            out.append(
                self._quality(
                    group,
                    window,
                    "; ".join(reason),
                    missing_columns=missing,
                    unexpected_columns=unexpected,
                    fit_errors=dict(group.fit_errors),
                )
            )
        for i, det in enumerate(detectors):
            try:
                if i in errors:
                    raise errors[i]
                if not fed:
                    det.reset().update(window.rows, ids=window.ids())
                res = det.result()
                if res.is_drift is None and res.is_outlier is None:
                    continue  # nothing testable: the quality detection says why
                out.append(self._fill(res, group, window))
            except (DetectorError, ValueError, TypeError) as exc:
                out.append(self._quality(group, window, f"{det.name}: {exc}", detector_error=det.name))
            finally:
                det.reset()
        return out

    # -- checkpoints ----------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Every open window and counter, as JSON bytes (store beside the consumer offset)."""
        state = {
            "format": _FORMAT,
            "window": self.window_cfg,
            "stats": dict(self.stats),
            "output_columns": [[m, v, sorted(c)] for (m, v), c in self._output_columns.items()],
            "groups": [
                {
                    "model": g.model,
                    "version": g.version,
                    "on": g.on,
                    "reference_id": g.reference.id,
                    "window": g.window.state(),
                    "closed": g.closed,
                }
                for g in self._groups.values()
            ],
        }
        return orjson.dumps(state, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=str)

    def restore(self, data: bytes) -> None:
        """Replace all window state with a :meth:`snapshot`."""
        try:
            state = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DetectorError(f"monitor snapshot is not valid JSON: {exc}") from exc
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise DetectorError(f"not a monitor snapshot (format {_FORMAT!r} expected)")
        if state.get("window") != self.window_cfg:
            raise DetectorError(
                f"snapshot window {state.get('window')!r} differs from the configured {self.window_cfg!r}"
            )
        groups: dict[tuple[str, str | None, str], _Group] = {}
        for g in state["groups"]:
            info = self.references.get(g["reference_id"])
            group = _Group(g["model"], g["version"], g["on"], info, window_from_state(g["window"]),
                           closed=int(g.get("closed", 0)))
            groups[(group.model, group.version, group.on)] = group
        self._groups = groups
        self._output_columns = {(m, v): set(c) for m, v, c in state.get("output_columns", [])}
        self._no_ref.clear()
        self.stats = Counter(state.get("stats", {}))


class WindowFeed:
    """One window of :meth:`Monitor.open_window`: :meth:`update` with each batch, then
    :meth:`close` for the window's detections (as :meth:`Monitor.process` gives them)."""

    def __init__(self, monitor: Monitor, group: _Group, columns: list[str], detectors: list[Detector]) -> None:
        self._monitor = monitor
        self._group = group
        self._columns = columns
        self._detectors = detectors
        self._errors: dict[int, Exception] = {}
        self.rows = 0

    @property
    def detectors(self) -> list[Detector]:
        """The window's detectors, fitted (to feed them counts made elsewhere; add those rows to
        :attr:`rows`)."""
        return list(self._detectors)

    def update(self, batch: Any, ids: Sequence[str] | None = None) -> None:
        """Feed one batch (a DataFrame or a Table with the window's columns) and its row ids."""
        n = len(batch) if hasattr(batch, "iloc") else n_rows(batch)
        self.rows += n
        for i, det in enumerate(self._detectors):
            if i not in self._errors:
                try:
                    det.update(batch, ids=ids)
                except (DetectorError, ValueError, TypeError) as exc:
                    self._errors[i] = exc

    def close(self, start: datetime | None = None, end: datetime | None = None) -> list[Detection]:
        """The window's detections; the detectors are reset."""
        window = ClosedWindow(rows={c: [] for c in self._columns}, start=start, end=end, size=self.rows,
                              seen=self.rows)
        return self._monitor._results(self._group, window, self._detectors, self._errors, fed=True)

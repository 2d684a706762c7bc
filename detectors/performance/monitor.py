"""Records in, performance detections out: the ground-truth join of the detect role.

Prediction records (``outputs``) and label records (``truth``: Seldon feedback events, the
collector's feedback endpoint and topic) meet here by row id (``<record id>-<row>``), in
either order, through a :class:`~detectors.performance.tracker.PerformanceTracker` per
model. Every window a record changed is returned as a Detection (realized figures, labelled
share), and, where a model has more than one live version in the same window of prediction
time, a :class:`~detectors.performance.variants.VariantComparison` of the versions'
accuracy (and AUC with a score column) on the rows labelled so far. A label cell that is
``None`` is no label (a feedback event may label some rows of a request only).

Built from a plain config dict by :func:`build_performance_monitor`::

    performance:
      window_seconds: 3600        # windows of prediction time
      keep_windows: 168           # newest windows kept per model and version (labels later than that wait, bounded)
      max_waiting_labels: 100000  # labels kept until their prediction arrives
      task: classification        # or regression
      prediction: null            # output column with the predicted label/value (default: the first)
      scores: null                # probability column(s), for ROC AUC, log loss, calibration
      truth: null                 # truth column (default: the first)
      classes: [0, 1]             # classification: the labels (fixes the figures' classes)
      metric: accuracy            # the figure that alarms, with max_drop against reference_metrics
      reference_metrics: {accuracy: 0.91}   # or min_value: 0.85
      per_model: {sales: {task: regression, prediction: forecast}}   # models with settings of their own
      compare_variants: true      # versions of a model live in the same window, against each other
      baseline: null              # the version the others are compared with (default: most rows)
      models: null                # optional allow-list

:meth:`snapshot` / :meth:`restore` keep every window and waiting label as JSON, stored with
the consumer offset: after a restart the log is replayed from that offset and, rows being
keyed by id, nothing is counted twice.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import orjson

from detectors.performance.realized import RealizedPerformance
from detectors.performance.tracker import PerformanceTracker
from detectors.performance.variants import VariantComparison
from inferwatch.errors import ConfigError
from inferwatch.record import Detection, InferenceRecord, row_id

__all__ = ["ModelRouter", "MonitorPair", "PerformanceMonitor", "build_performance_monitor"]

_DETECTOR_KEYS = ("task", "classes", "metric", "max_drop", "min_value", "min_labelled", "n_bins", "max_rows")


class PerformanceMonitor:
    """See the module docstring; ``prototype`` is a fitted :class:`RealizedPerformance` whose
    ``prediction``/``truth``/``scores`` name the record's output and truth columns (``None`` for
    ``prediction`` and ``truth`` means the table's first column)."""

    def __init__(self, prototype: RealizedPerformance, *, prediction: str | None = None,
                 truth: str | None = None, window_seconds: float = 3600.0, keep_windows: int = 168,
                 max_waiting_labels: int = 100_000, compare_variants: bool = True,
                 models: Iterable[str] | None = None, alpha: float = 0.05,
                 baseline: str | None = None) -> None:
        self.prototype = prototype
        self.prediction, self.truth = prediction, truth
        self.window_seconds, self.keep_windows = float(window_seconds), int(keep_windows)
        self.max_waiting_labels = int(max_waiting_labels)
        self.compare_variants, self.alpha, self.baseline = compare_variants, alpha, baseline
        self.models = set(models) if models is not None else None
        # one tracker for every model: a label finds its window by row id alone
        self.tracker = PerformanceTracker(prototype, seconds=self.window_seconds, keep=self.keep_windows,
                                          max_waiting=self.max_waiting_labels)
        self.stats: Counter[str] = Counter()

    def _rows(self, rec: InferenceRecord) -> tuple[dict[str, list[Any]], list[str]] | None:
        out = rec.outputs or {}
        name = self.prediction or next(iter(out), None)
        scores = self.prototype.scores
        score_cols = [scores] if isinstance(scores, str) else list(scores or [])
        if name not in out and not any(c in out for c in score_cols):
            return None
        n = max(len(v) for v in out.values())
        rows: dict[str, list[Any]] = {}
        if name in out:
            rows[self.prototype.prediction] = list(out[name])
        for c in score_cols:
            if c in out:
                rows[c] = list(out[c])
        return rows, [row_id(rec.id, i) for i in range(n)]

    def process(self, records: Iterable[InferenceRecord]) -> list[Detection]:
        for rec in records:
            self.stats["records"] += 1
            if self.models is not None and rec.model not in self.models:
                continue
            if rec.outputs and rec.part != "feedback":  # a feedback event repeats the prediction it labels
                found = self._rows(rec)
                if found is None:
                    self.stats["no_prediction_column"] += 1
                else:
                    rows, ids = found
                    self.tracker.predictions(rec.model, rec.version, rec.timestamp, rows, ids)
                    self.stats["predictions"] += len(ids)
            if rec.truth:
                name = self.truth or next(iter(rec.truth))
                col = rec.truth.get(name)
                if col is None:
                    self.stats["no_truth_column"] += 1
                    continue
                ids = [row_id(rec.id, i) for i, v in enumerate(col) if v is not None]
                values = [v for v in col if v is not None]
                self.tracker.labels(ids, values, model=rec.model)
                self.stats["labels"] += len(ids)
        revised = self.tracker.revised()
        for d in revised:
            d.extra["labels_waiting"] = self.tracker.waiting_for(d.model)
        out: list[Detection] = list(revised)
        if self.compare_variants:
            for model in sorted({d.model for d in revised}):
                out.extend(self._compare(model, [d for d in revised if d.model == model]))
        return out

    def _compare(self, model: str, revised: list[Detection]) -> list[Detection]:
        tracker = self.tracker
        out: list[Detection] = []
        for start in sorted({d.window_start for d in revised if d.window_start is not None}):
            slot = int(start.timestamp())
            windows = tracker.windows_at(model, slot)
            if len(windows) < 2:
                continue
            p = self.prototype
            rows: dict[str, list[Any]] = {"variant": [], "prediction": [], "truth": []}
            binary_score = p.scores is not None and p.classes is not None and len(p.classes) == 2
            if binary_score:
                rows["score"] = []
            for version, window in sorted(windows.items()):
                for _, pred, sc, truth in window.rows_state():
                    if pred is None:
                        continue
                    rows["variant"].append(version)
                    rows["prediction"].append(pred)
                    rows["truth"].append(truth)
                    if binary_score:
                        rows["score"].append(sc[1] if sc is not None else float("nan"))
            comp = VariantComparison(features=[], score="score" if binary_score else None, alpha=self.alpha,
                                     baseline=self.baseline if self.baseline in windows else None,
                                     positive=p.classes[-1] if binary_score and p.classes else None,
                                     min_rows=max(p.min_labelled, 1))
            found = comp.fit({"variant": ["_"]}).update(rows).result()
            found.model, found.window_start = model, start
            found.window_end = next(d.window_end for d in revised if d.window_start == start)
            out.append(found)
        return out

    def snapshot(self) -> bytes:
        return self.tracker.snapshot()

    def restore(self, state: bytes) -> None:
        self.tracker.restore(state)


class _Monitor(Protocol):
    def process(self, records: Sequence[InferenceRecord]) -> list[Detection]: ...

    def snapshot(self) -> bytes: ...

    def restore(self, state: bytes) -> None: ...


class MonitorPair:
    """The drift monitor and the performance monitor as the detect role's one monitor: both see
    the records (the drift monitor not the feedback events, which repeat the prediction they
    label), and one snapshot holds both states."""

    FORMAT = "inferwatch-monitors/1"

    def __init__(self, drift: _Monitor, performance: PerformanceMonitor | ModelRouter) -> None:
        self.drift, self.performance = drift, performance

    @property
    def stats(self) -> Any:
        return getattr(self.drift, "stats", None) or self.performance.stats

    def process(self, records: Sequence[InferenceRecord]) -> list[Detection]:
        records = list(records)
        out = self.drift.process([r for r in records if r.part != "feedback"])
        return out + self.performance.process(records)

    def snapshot(self) -> bytes:
        return orjson.dumps({"format": self.FORMAT, "drift": self.drift.snapshot().decode(),
                             "performance": self.performance.snapshot().decode()})

    def restore(self, state: bytes) -> None:
        d = orjson.loads(state)
        if isinstance(d, dict) and d.get("format") == self.FORMAT:
            self.drift.restore(d["drift"].encode())
            self.performance.restore(d["performance"].encode())
        else:  # a checkpoint from before performance was configured
            self.drift.restore(state)


class ModelRouter:
    """Models with settings of their own (``per_model``) get a monitor each; the others share one."""

    FORMAT = "inferwatch-performance-models/1"

    def __init__(self, default: PerformanceMonitor, per_model: Mapping[str, PerformanceMonitor]) -> None:
        self.default, self.per_model = default, dict(per_model)

    @property
    def stats(self) -> Counter[str]:
        total = Counter(self.default.stats)
        for m in self.per_model.values():
            total.update(m.stats)
        return total

    def process(self, records: Iterable[InferenceRecord]) -> list[Detection]:
        groups: dict[str | None, list[InferenceRecord]] = {}
        for r in records:
            groups.setdefault(r.model if r.model in self.per_model else None, []).append(r)
        out = []
        for model, recs in groups.items():
            out += (self.per_model[model] if model is not None else self.default).process(recs)
        return out

    def snapshot(self) -> bytes:
        return orjson.dumps({"format": self.FORMAT, "default": self.default.snapshot().decode(),
                             "models": {m: mon.snapshot().decode() for m, mon in self.per_model.items()}})

    def restore(self, state: bytes) -> None:
        d = orjson.loads(state)
        if d.get("format") != self.FORMAT:  # from before per-model settings: the shared monitor's
            self.default.restore(state)
            return
        self.default.restore(d["default"].encode())
        for m, snap in d["models"].items():
            if m in self.per_model:
                self.per_model[m].restore(snap.encode())


def build_performance_monitor(config: Mapping[str, Any]) -> PerformanceMonitor | ModelRouter:
    """A :class:`PerformanceMonitor` from the ``performance:`` config section (see the module);
    with ``per_model: {model: {setting: value}}``, one per such model (its settings over the
    shared ones) beside the shared one."""
    cfg = dict(config)
    per_model = cfg.pop("per_model", None) or {}
    if per_model:
        if not isinstance(per_model, Mapping):
            raise ConfigError("performance.per_model must map model names to settings")
        default = build_performance_monitor(cfg)
        assert isinstance(default, PerformanceMonitor)
        own = {}
        for model, settings in per_model.items():
            mon = build_performance_monitor({**cfg, **dict(settings or {}), "models": [str(model)]})
            assert isinstance(mon, PerformanceMonitor)
            own[str(model)] = mon
        return ModelRouter(default, own)
    params = {k: cfg[k] for k in _DETECTOR_KEYS if cfg.get(k) is not None}
    scores = cfg.get("scores")
    task = params.get("task", "classification")
    try:
        det = RealizedPerformance(prediction="prediction", truth="truth", scores=scores, **params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"performance: {exc}") from exc
    if task == "classification":
        classes = params.get("classes")
        if not classes:
            raise ConfigError("performance: a classifier needs `classes` (the labels, e.g. [0, 1])")
        det.fit({"prediction": list(classes), "truth": list(classes)})
    else:
        det.fit({"prediction": [0.0], "truth": [0.0]})
    ref = cfg.get("reference_metrics")
    if ref:
        det.reference_metrics = {str(k): float(v) for k, v in dict(ref).items()}
    else:
        det.reference_metrics = {}
    return PerformanceMonitor(
        copy.deepcopy(det), prediction=cfg.get("prediction"), truth=cfg.get("truth"),
        window_seconds=float(cfg.get("window_seconds", 3600)), keep_windows=int(cfg.get("keep_windows", 168)),
        max_waiting_labels=int(cfg.get("max_waiting_labels", 100_000)),
        compare_variants=bool(cfg.get("compare_variants", True)), models=cfg.get("models"),
        alpha=float(cfg.get("alpha", 0.05)), baseline=cfg.get("baseline"))

"""Realized performance: a window's figures from the labels that have arrived.

The window keeps its rows by row id (``update(batch, ids=...)``: ``<record id>-<row>``), so a
label arriving later — in a batch of its own, with the id and the truth only — attaches to
its prediction and revises the window's figures; a prediction and a label sent twice count
once. Each result says how many of the window's predictions are labelled.

Classifiers (``task="classification"``): accuracy; precision, recall and F1 per class and
macro / micro / weighted; ROC AUC (binary, or one-vs-rest macro and weighted); log loss;
expected calibration error (top-label, ``n_bins`` equal-width bins). Regressors
(``task="regression"``): MAE, RMSE, MAPE, R2. The figures equal scikit-learn's on the same
rows (see :mod:`detectors.performance._stats`).

The window fires (``is_drift``) when ``metric`` is worse than on the labelled reference by
more than ``max_drop`` (or, with ``min_value``, below that value; above it for an error
metric), once at least ``min_labelled`` rows are labelled. ``distance`` is the degradation
(positive = worse).

>>> ref = {"prediction": [0, 1, 1, 0], "truth": [0, 1, 1, 0]}
>>> det = RealizedPerformance(min_labelled=1).fit(ref)
>>> _ = det.update({"prediction": [1, 0]}, ids=["a", "b"])      # predictions first
>>> r = det.result(); (r.window_size, r.extra["labelled_share"])
(2, 0.0)
>>> r = det.update({"truth": [1, 1]}, ids=["a", "b"]).result()  # labels later
>>> r.extra["metrics"]["accuracy"], r.extra["labelled_share"], r.is_drift
(0.5, 1.0, True)
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Sequence
from typing import Any, Self

import numpy as np

from detectors.common._data import Data, columns_and_rows
from detectors.common._univariate import fingerprint
from detectors.performance._rows import is_missing, label_list, score_matrix, sorted_classes
from detectors.performance._stats import ClassificationStats, RegressionStats
from inferwatch.errors import DetectorError
from inferwatch.record import Detection, new_id

__all__ = ["LOWER_IS_BETTER", "RealizedPerformance"]

LOWER_IS_BETTER = frozenset({"log_loss", "ece", "mae", "rmse", "mape"})
"""Error metrics: a rise is a degradation."""

_Row = list[Any]  # [prediction or None, scores (tuple) or None, truth or None]


class RealizedPerformance:
    """Parameters: ``task`` (``"classification"`` or ``"regression"``), column names
    ``prediction``, ``truth`` and ``scores`` (a list of per-class probability columns in class
    order, one column of probability lists, or for two classes the positive class's
    probability column; optional), ``classes`` (default: the reference's labels, sorted),
    ``metric`` to alarm on (default ``accuracy`` / ``mae``), ``max_drop``, ``min_value``,
    ``min_labelled``, ``n_bins`` (calibration bins), ``max_rows`` (rows kept per window)."""

    name = "performance"
    kind = "performance"

    def __init__(
        self,
        task: str = "classification",
        prediction: str = "prediction",
        truth: str = "truth",
        scores: str | Sequence[str] | None = None,
        classes: Sequence[Hashable] | None = None,
        metric: str | None = None,
        max_drop: float = 0.05,
        min_value: float | None = None,
        min_labelled: int = 30,
        n_bins: int = 10,
        max_rows: int = 200_000,
    ) -> None:
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
        self.task = task
        self.prediction, self.truth = prediction, truth
        self.scores: str | list[str] | None = scores if scores is None or isinstance(scores, str) else list(scores)
        self.classes: list[Hashable] | None = list(classes) if classes is not None else None
        self.metric = metric or ("accuracy" if task == "classification" else "mae")
        self.max_drop, self.min_value = float(max_drop), min_value
        self.min_labelled, self.n_bins, self.max_rows = int(min_labelled), int(n_bins), int(max_rows)
        self._fitted = False
        self._ref_key = ""
        self.reference_metrics: dict[str, float | None] = {}
        self._reset_window()

    def _reset_window(self) -> None:
        self._rows: dict[str, _Row] = {}
        self._predicted = 0
        self._overflow = 0
        self._anon = new_id()
        self._seq = 0

    # -- the Detector interface ----------------------------------------------------------

    def fit(self, reference: Data) -> Self:
        cols, n = columns_and_rows(reference)
        if not n:
            raise DetectorError(f"{self.name}: empty reference")
        if self.task == "classification" and self.classes is None:
            seen: list[Any] = []
            for name in (self.truth, self.prediction):
                if name in cols:
                    seen += label_list(cols[name])
            self.classes = sorted_classes(seen)
            if len(self.classes) < 2:
                raise DetectorError(f"{self.name}: the reference shows {len(self.classes)} class(es); "
                                    "pass classes=[...]")
        self._fitted = True
        self._ref_key = fingerprint(cols)
        self._reset_window()
        if self.truth in cols:
            self._add(cols, n)
            self.reference_metrics = self._stats_metrics()[0]
            self._reset_window()
        return self

    def update(self, batch: Data, ids: Sequence[str] | None = None) -> Self:
        """Add predictions, labels or both; ``ids`` (one per row) is how a label finds its
        prediction: rows without ids are new rows, each its own."""
        self._check_fitted()
        cols, n = columns_and_rows(batch)
        if ids is not None and len(ids) != n:
            raise DetectorError(f"{self.name}: {len(ids)} row ids for a batch of {n} rows")
        if n:
            self._add(cols, n, ids)
        return self

    def result(self) -> Detection:
        self._check_fitted()
        metrics, per_class = self._stats_metrics()
        labelled = int(metrics.pop("labelled") or 0)
        det = Detection(detector=self.name, kind="performance", model="", window_size=self._predicted)
        det.threshold = self.max_drop if self.min_value is None else self.min_value
        det.extra.update(
            task=self.task, metric=self.metric, method="realized", labelled=labelled,
            labelled_share=labelled / self._predicted if self._predicted else None,
            labels_waiting=len(self._rows) - self._predicted, rows_over_limit=self._overflow,
            metrics=metrics, reference_metrics=dict(self.reference_metrics),
        )
        if per_class:
            det.extra["per_class"] = per_class
        value = metrics.get(self.metric)
        if value is None or labelled < max(self.min_labelled, 1):
            return det
        sign = -1.0 if self.metric in LOWER_IS_BETTER else 1.0
        if self.min_value is not None:
            det.distance = sign * (self.min_value - value)
            det.is_drift = det.distance > 0
        else:
            ref = self.reference_metrics.get(self.metric)
            if ref is None:
                return det
            det.distance = sign * (ref - value)
            det.is_drift = det.distance > self.max_drop
        return det

    def reset(self) -> Self:
        self._reset_window()
        return self

    def merge(self, other: Self) -> Self:
        self._check_fitted()
        if (type(other) is not type(self) or other.classes != self.classes or other.task != self.task
                or other._ref_key != self._ref_key):
            raise DetectorError(f"{self.name}: can only merge detectors fitted on the same reference")
        new = copy.copy(self)
        new._rows = {k: list(v) for k, v in self._rows.items()}
        new._predicted, new._overflow = self._predicted, self._overflow + other._overflow
        for key, (pred, sc, truth) in other._rows.items():
            new._upsert(key, pred, sc, truth)
        return new

    # -- the window's rows ---------------------------------------------------------------

    @property
    def window_size(self) -> int:
        return self._predicted

    def row_ids(self) -> list[str]:
        """Ids of the rows held (predictions and labels waiting for theirs)."""
        return list(self._rows)

    def rows_state(self) -> list[list[Any]]:
        """The window's rows as JSON-able ``[id, prediction, scores, truth]`` lists."""
        return [[k, v[0], list(v[1]) if v[1] is not None else None, v[2]] for k, v in self._rows.items()]

    def load_rows(self, rows: list[list[Any]]) -> Self:
        """Add rows saved by :meth:`rows_state` (a replay of the same rows changes nothing)."""
        self._check_fitted()
        for key, pred, sc, truth in rows:
            self._upsert(str(key), pred, tuple(sc) if sc is not None else None, truth)
        return self

    def stats(self) -> ClassificationStats | RegressionStats:
        """The window's labelled rows as mergeable statistics (windows combine with ``merge``)."""
        self._check_fitted()
        if self.task == "regression":
            y, p = [], []
            for pred, _, truth in self._rows.values():
                if pred is not None and truth is not None:
                    y.append(truth)
                    p.append(pred)
            return RegressionStats.zero().add(y, p)
        assert self.classes is not None
        stats = ClassificationStats.zero(self.classes, self.n_bins)
        plain: tuple[list[Any], list[Any]] = ([], [])
        scored: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        for pred, sc, truth in self._rows.values():
            if pred is None or truth is None:
                continue
            if sc is None:
                plain[0].append(truth)
                plain[1].append(pred)
            else:
                scored[0].append(truth)
                scored[1].append(pred)
                scored[2].append(sc)
        stats.add(*plain)
        if scored[0]:
            stats.add(scored[0], scored[1], np.array(scored[2], dtype=np.float64))
        return stats

    def _stats_metrics(self) -> tuple[dict[str, float | None], dict[str, Any]]:
        stats = self.stats()
        if isinstance(stats, ClassificationStats):
            return stats.metrics(), (stats.per_class() if stats.n else {})
        return stats.metrics(), {}

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise DetectorError(f"{self.name}: call fit(reference) first")

    def _add(self, cols: dict[str, np.ndarray], n: int, given: Sequence[str] | None = None) -> None:
        ids = [str(v) for v in given] if given is not None else None
        if ids is None:
            ids = [f"{self._anon}-{self._seq + i}" for i in range(n)]
            self._seq += n
        truth = label_list(cols[self.truth]) if self.truth in cols else [None] * n
        preds: list[Any] = label_list(cols[self.prediction]) if self.prediction in cols else [None] * n
        scores = None
        if self.task == "classification" and self.scores is not None:
            assert self.classes is not None
            scores = score_matrix(cols, self.scores, len(self.classes), n)
        if self.task == "regression":
            preds = [None if p is None else float(p) for p in preds]
            truth = [None if t is None else float(t) for t in truth]
        for i in range(n):
            pred = preds[i]
            sc = None
            if scores is not None and not np.isnan(scores[i]).any():
                sc = tuple(scores[i].tolist())
                if pred is None:
                    assert self.classes is not None
                    pred = self.classes[int(np.argmax(scores[i]))]
            self._upsert(ids[i], pred, sc, truth[i])

    def _upsert(self, key: str, pred: Any, sc: tuple[float, ...] | None, truth: Any) -> None:
        row = self._rows.get(key)
        if row is None:
            if len(self._rows) >= self.max_rows:
                self._overflow += 1
                return
            self._rows[key] = [pred, sc, None if is_missing(truth) else truth]
            self._predicted += pred is not None
            return
        if pred is not None:
            if row[0] is None:
                self._predicted += 1
            row[0], row[1] = pred, sc if sc is not None else row[1]
        if not is_missing(truth):
            row[2] = truth

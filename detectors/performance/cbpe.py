"""Confidence-based performance estimation (CBPE): a classifier's figures before labels arrive.

Fitted on a labelled reference, it calibrates the model's class probabilities (isotonic
regression per class, one-vs-rest; multiclass rows renormalised), so that a calibrated
probability is the chance the class is the true one. A window then needs no label: each
row contributes its expected share of the confusion matrix — a row predicted positive with
calibrated probability ``p`` is ``p`` of a true positive and ``1 - p`` of a false positive —
and the expected ROC curve weighs each score by ``p`` (positive) and ``1 - p`` (negative).
This is NannyML's method (Apache-2.0), reimplemented; valid while the relation between
inputs and labels stays as in the reference (covariate shift only), which is what it cannot
check.

Estimates: ``accuracy``, ``precision``, ``recall``, ``f1`` (positive class for two classes,
macro averages for more), ``roc_auc`` (macro one-vs-rest for more). ``calibration``:
``"auto"`` (isotonic only where it lowers the reference's held-out calibration error, as
NannyML decides), ``"isotonic"`` or ``"none"``. The window keeps its rows' predicted class
and probabilities (figures from them at result time), so merged windows give exactly one
window's figures. Each result carries ``extra["standard_error"]["accuracy"]``: with calibrated
probabilities ``c`` of being right, the realized accuracy's standard deviation is
``sqrt(sum c(1-c)) / n`` (a sum of independent Bernoulli trials).

The window fires when ``metric`` is estimated lower than the reference's realized figure by
more than ``max_drop``, with at least ``min_rows`` rows.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = rng.random(4000); y = (rng.random(4000) < p).astype(int)
>>> est = CBPE(scores="p", min_rows=1).fit({"p": p[:2000], "prediction": (p[:2000] > .5).astype(int),
...                                         "truth": y[:2000]})
>>> r = est.update({"p": p[2000:], "prediction": (p[2000:] > .5).astype(int)}).result()
>>> abs(r.extra["metrics"]["accuracy"] - ((p[2000:] > .5) == y[2000:]).mean()) < 0.02
True
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedShuffleSplit

from detectors.common._data import Data, columns_and_rows
from detectors.common._univariate import fingerprint
from detectors.performance._rows import label_list, score_matrix, sorted_classes
from detectors.performance._stats import ClassificationStats
from inferwatch.errors import DetectorError
from inferwatch.record import Detection

__all__ = ["CBPE", "equal_count_ece", "expected_auc"]


def equal_count_ece(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Calibration error of binary ``p`` against ``y`` over bins of equal count (sorted by ``p``)."""
    order = np.argsort(p, kind="stable")
    y, p = y[order], p[order]
    n = len(p)
    k = min(n_bins, n // 2) if n <= 2 * n_bins else n_bins
    if k < 2:
        return 0.0
    edges = list(range(0, n + 1, n // k))
    edges[-1] = n
    return float(sum(abs(y[a:b].mean() - p[a:b].mean()) * (b - a) for a, b in itertools.pairwise(edges)) / n)


def _calibration_helps(y: np.ndarray, p: np.ndarray, splits: int = 10) -> bool:
    """Isotonic calibration lowers the held-out calibration error (10 stratified 90/10 splits)."""
    if len(np.unique(y)) < 2 or np.min(np.bincount(y.astype(int))) < 2:
        return False
    from sklearn.metrics import roc_auc_score

    if roc_auc_score(y, p) > 0.999:
        return False
    held_y, raw, cal = [], [], []
    for train, test in StratifiedShuffleSplit(n_splits=splits, test_size=0.1, random_state=42).split(p, y):
        iso = IsotonicRegression(out_of_bounds="clip").fit(p[train], y[train])
        held_y.append(y[test])
        raw.append(p[test])
        cal.append(iso.predict(p[test]))
    yy, before, after = np.concatenate(held_y), np.concatenate(raw), np.concatenate(cal)
    return equal_count_ece(yy, before) > equal_count_ece(yy, after)


def expected_auc(tally: dict[float, list[float]]) -> float | None:
    """Area under the expected ROC curve from ``score -> [expected positives, expected negatives]``
    (tied scores are one step, as in scikit-learn)."""
    keys = sorted(tally, reverse=True)
    pos = np.array([tally[k][0] for k in keys])
    neg = np.array([tally[k][1] for k in keys])
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos <= 0 or n_neg <= 0:
        return None
    tpr = np.concatenate([[0.0], np.cumsum(pos) / n_pos])
    fpr = np.concatenate([[0.0], np.cumsum(neg) / n_neg])
    return float(np.trapezoid(tpr, fpr) if hasattr(np, "trapezoid") else np.trapz(tpr, fpr))


@dataclass
class _Expected:
    """A window's rows as CBPE needs them: predicted class index, calibrated and model
    probabilities. Figures are computed from the rows at result time, so a merged window (rows
    concatenated) gives exactly the figures of one window fed the same rows."""

    k: int
    pred: list[np.ndarray] = field(default_factory=list)
    cal: list[np.ndarray] = field(default_factory=list)
    raw: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def zero(cls, k: int) -> _Expected:
        return cls(k)

    @property
    def n(self) -> int:
        return sum(len(p) for p in self.pred)

    def add(self, pred: np.ndarray, cal: np.ndarray, raw: np.ndarray) -> None:
        """``pred``: predicted class index per row; ``cal``/``raw``: calibrated / model probabilities."""
        if len(pred):
            self.pred.append(pred)
            self.cal.append(cal)
            self.raw.append(raw)

    def merge(self, other: _Expected) -> _Expected:
        return _Expected(self.k, self.pred + other.pred, self.cal + other.cal, self.raw + other.raw)

    def _rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(self.pred) > 1:  # keep one block: later figures need not concatenate again
            self.pred, self.cal, self.raw = ([np.concatenate(x)] for x in (self.pred, self.cal, self.raw))
        return self.pred[0], self.cal[0], self.raw[0]

    def right(self) -> np.ndarray:
        """Per row, the calibrated probability that its prediction is right."""
        pred, cal, _ = self._rows()
        return cal[np.arange(len(pred)), pred]

    def metrics(self, binary: bool) -> dict[str, float | None]:
        if not self.n:
            return {}
        pred, cal, raw = self._rows()
        k = self.k
        tp, fp, fn = np.zeros(k), np.zeros(k), np.zeros(k)
        aucs: list[float | None] = []
        for j in range(k):
            is_pred = pred == j
            tp[j] = cal[is_pred, j].sum()
            fp[j] = (1 - cal[is_pred, j]).sum()
            fn[j] = cal[~is_pred, j].sum()
            tally: dict[float, list[float]] = {}
            for s, q in zip(raw[:, j].tolist(), cal[:, j].tolist(), strict=True):
                cell = tally.setdefault(s, [0.0, 0.0])
                cell[0] += q
                cell[1] += 1.0 - q
            aucs.append(expected_auc(tally))
        prec = np.divide(tp, tp + fp, out=np.zeros(k), where=(tp + fp) > 0)
        rec = np.divide(tp, tp + fn, out=np.zeros(k), where=(tp + fn) > 0)
        f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(k), where=(2 * tp + fp + fn) > 0)
        out: dict[str, float | None] = {"accuracy": float(self.right().sum() / self.n)}
        if binary:
            out |= {"precision": float(prec[1]), "recall": float(rec[1]), "f1": float(f1[1]), "roc_auc": aucs[1]}
        else:
            out |= {"precision": float(prec.mean()), "recall": float(rec.mean()), "f1": float(f1.mean()),
                    "roc_auc": _mean_or_none(aucs)}
        return out


def _mean_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if len(known) == len(values) else None


class CBPE:
    """Parameters: ``scores`` (per-class probability columns in class order, one column of
    probability lists, or for two classes the positive class's probability column),
    ``prediction``, ``truth`` (reference only), ``classes`` (default: the reference's),
    ``calibration``, ``metric``, ``max_drop``, ``min_rows``."""

    name = "cbpe"
    kind = "performance"

    def __init__(
        self,
        scores: str | Sequence[str] = "scores",
        prediction: str = "prediction",
        truth: str = "truth",
        classes: Sequence[Hashable] | None = None,
        calibration: str = "auto",
        metric: str = "accuracy",
        max_drop: float = 0.05,
        min_rows: int = 100,
    ) -> None:
        if calibration not in ("auto", "isotonic", "none"):
            raise ValueError(f"calibration must be 'auto', 'isotonic' or 'none', got {calibration!r}")
        if metric not in ("accuracy", "precision", "recall", "f1", "roc_auc"):
            raise ValueError(f"CBPE estimates accuracy, precision, recall, f1 or roc_auc, not {metric!r}")
        self.scores: str | list[str] = scores if isinstance(scores, str) else list(scores)
        self.prediction, self.truth = prediction, truth
        self.classes: list[Hashable] | None = list(classes) if classes is not None else None
        self.calibration, self.metric = calibration, metric
        self.max_drop, self.min_rows = float(max_drop), int(min_rows)
        self._calibrators: list[IsotonicRegression | None] = []
        self.reference_metrics: dict[str, float | None] = {}
        self._state: _Expected | None = None
        self._ref_key = ""

    @property
    def calibrated(self) -> list[bool]:
        """Per class: whether its probabilities are recalibrated."""
        return [c is not None for c in self._calibrators]

    def fit(self, reference: Data) -> Self:
        cols, n = columns_and_rows(reference)
        if not n or self.truth not in cols:
            raise DetectorError(f"{self.name}: the reference needs rows with labels ({self.truth!r})")
        truth = label_list(cols[self.truth])
        if self.classes is None:
            seen = truth + (label_list(cols[self.prediction]) if self.prediction in cols else [])
            self.classes = sorted_classes(seen)
        k = len(self.classes)
        if k < 2:
            raise DetectorError(f"{self.name}: the reference shows {k} class(es); pass classes=[...]")
        raw = score_matrix(cols, self.scores, k, n)
        if raw is None:
            raise DetectorError(f"{self.name}: no score column {self.scores!r} in the reference")
        index = {c: i for i, c in enumerate(self.classes)}
        y = np.array([index.get(t, -1) if t is not None else -1 for t in truth])
        ok = (y >= 0) & ~np.isnan(raw).any(axis=1)
        if ok.sum() < 2:
            raise DetectorError(f"{self.name}: fewer than two labelled reference rows with scores")
        y, raw = y[ok], raw[ok]
        binary = k == 2
        self._calibrators = []
        for j in range(k):
            if binary and j == 0:
                self._calibrators.append(None)  # class 0 follows from class 1
                continue
            target = (y == j).astype(float)
            use = self.calibration == "isotonic" or (
                self.calibration == "auto" and _calibration_helps(target.astype(int), raw[:, j]))
            self._calibrators.append(IsotonicRegression(out_of_bounds="clip").fit(raw[:, j], target) if use else None)
        pred = self._predicted(cols, raw, ok)
        stats = ClassificationStats.zero(self.classes).add([self.classes[i] for i in y],
                                                           [self.classes[i] for i in pred], raw)
        self.reference_metrics = stats.metrics()
        self._ref_key = fingerprint(cols)
        self._state = _Expected.zero(k)
        return self

    def _predicted(self, cols: dict[str, np.ndarray], raw: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        assert self.classes is not None
        if self.prediction in cols:
            index = {c: i for i, c in enumerate(self.classes)}
            labels = label_list(cols[self.prediction] if keep is None else cols[self.prediction][keep])
            pred = np.array([index.get(v, -1) if v is not None else -1 for v in labels])
            return np.where(pred >= 0, pred, raw.argmax(axis=1))
        return raw.argmax(axis=1)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (rows x classes) for the model's ``raw`` ones."""
        k = raw.shape[1]
        if k == 2:
            cal1 = self._calibrators[1]
            p = cal1.predict(raw[:, 1]) if cal1 is not None else raw[:, 1]
            return np.column_stack([1 - p, p])
        cal = np.column_stack([c.predict(raw[:, j]) if c is not None else raw[:, j]
                               for j, c in enumerate(self._calibrators)])
        total = cal.sum(axis=1, keepdims=True)
        return np.divide(cal, total, out=np.full_like(cal, 1.0 / k), where=total != 0)

    def update(self, batch: Data, ids: Sequence[str] | None = None) -> Self:
        if self._state is None:
            raise DetectorError(f"{self.name}: call fit(reference) first")
        assert self.classes is not None
        cols, n = columns_and_rows(batch)
        if not n:
            return self
        raw = score_matrix(cols, self.scores, len(self.classes), n)
        if raw is None:
            raise DetectorError(f"{self.name}: no score column {self.scores!r} in the batch")
        ok = ~np.isnan(raw).any(axis=1)
        raw = raw[ok]
        self._state.add(self._predicted(cols, raw, ok), self.calibrate(raw), raw)
        return self

    def result(self) -> Detection:
        if self._state is None:
            raise DetectorError(f"{self.name}: call fit(reference) first")
        assert self.classes is not None
        st = self._state
        metrics = st.metrics(len(self.classes) == 2)
        det = Detection(detector=self.name, kind="performance", model="", window_size=st.n,
                        threshold=self.max_drop)
        det.extra.update(metric=self.metric, estimated=True, method="cbpe", metrics=metrics,
                         reference_metrics=dict(self.reference_metrics))
        if st.n:
            c = st.right()
            det.extra["standard_error"] = {"accuracy": float(np.sqrt((c * (1 - c)).sum()) / st.n)}
        value, ref = metrics.get(self.metric), self.reference_metrics.get(self.metric)
        if value is not None and ref is not None and st.n >= max(self.min_rows, 1):
            det.distance = ref - value
            det.is_drift = det.distance > self.max_drop
        return det

    def reset(self) -> Self:
        if self.classes is not None:
            self._state = _Expected.zero(len(self.classes))
        return self

    def merge(self, other: Self) -> Self:
        if self._state is None or other._state is None or other._ref_key != self._ref_key:
            raise DetectorError(f"{self.name}: can only merge estimators fitted on the same reference")
        new = copy.copy(self)
        new._state = self._state.merge(other._state)
        return new

    @property
    def window_size(self) -> int:
        return self._state.n if self._state is not None else 0

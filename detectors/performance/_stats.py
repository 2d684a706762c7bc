"""Mergeable performance statistics (private): the figures of one window of labelled rows.

Both states are monoids (``zero()`` + associative ``merge``): windows from several workers,
or several hourly windows making a day, combine exactly, with no row kept.

* :class:`ClassificationStats`: the confusion matrix (accuracy, precision, recall, F1 per
  class and macro / micro / weighted), a per-class tally of scores (exact ROC AUC with ties,
  binary and one-vs-rest), the summed log loss and equal-width confidence bins (expected
  calibration error).
* :class:`RegressionStats`: sums of absolute, squared and relative errors and the truth's
  mean and sum of squared deviations (Chan et al.'s parallel update) for MAE, RMSE, MAPE, R2.

Definitions follow scikit-learn's (``zero_division=0``; log loss clips probabilities to
``[eps, 1 - eps]`` and does not renormalise; MAPE divides by ``max(|y|, eps)``); a figure
scikit-learn leaves undefined (ROC AUC with one class, R2 of fewer than two rows) is ``None``.

>>> s = ClassificationStats.zero(("a", "b")).add(["a", "b", "b"], ["a", "b", "a"])
>>> s.merge(ClassificationStats.zero(("a", "b")).add(["a"], ["a"])).metrics()["accuracy"]
0.75
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ClassificationStats", "RegressionStats"]

_EPS = float(np.finfo(np.float64).eps)


def _auc(tally: dict[float, list[int]]) -> float | None:
    """Mann-Whitney AUC (ties count one half) from ``score -> [positives, negatives]``."""
    keys = sorted(tally)
    pos = np.array([tally[k][0] for k in keys], dtype=np.float64)
    neg = np.array([tally[k][1] for k in keys], dtype=np.float64)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return None
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


@dataclass
class ClassificationStats:
    """Confusion matrix, score tallies, log loss and calibration bins over ``classes``."""

    classes: tuple[Hashable, ...]
    confusion: np.ndarray  # [true class, predicted class] counts
    n_bins: int = 10
    unknown: int = 0  # labelled rows whose truth or prediction is not one of ``classes``
    scored: int = 0  # rows with scores (log loss, AUC and ECE are over these)
    log_loss_sum: float = 0.0
    bins: np.ndarray = field(default_factory=lambda: np.zeros((10, 3)))  # count, sum conf, sum correct
    tallies: list[dict[float, list[int]]] = field(default_factory=list)  # per class: score -> [pos, neg]

    @classmethod
    def zero(cls, classes: Sequence[Hashable], n_bins: int = 10) -> ClassificationStats:
        k = len(classes)
        if k < 2:
            raise ValueError(f"a classifier needs at least two classes, got {list(classes)!r}")
        return cls(tuple(classes), np.zeros((k, k), dtype=np.int64), n_bins, bins=np.zeros((n_bins, 3)),
                   tallies=[{} for _ in range(k)])

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    def add(self, truth: Sequence[Any], predicted: Sequence[Any], scores: np.ndarray | None = None) -> ClassificationStats:
        """Add labelled rows in place; ``scores`` is rows x classes (probabilities), or ``None``."""
        index = {c: i for i, c in enumerate(self.classes)}
        t = np.array([index.get(v, -1) for v in truth], dtype=np.int64)
        p = np.array([index.get(v, -1) for v in predicted], dtype=np.int64)
        ok = (t >= 0) & (p >= 0)
        self.unknown += int((~ok).sum())
        np.add.at(self.confusion, (t[ok], p[ok]), 1)
        if scores is None:
            return self
        s = np.asarray(scores, dtype=np.float64)
        keep = (t >= 0) & ~np.isnan(s).any(axis=1)
        t, s = t[keep], s[keep]
        if not len(t):
            return self
        self.scored += len(t)
        p_true = np.clip(s[np.arange(len(t)), t], _EPS, 1 - _EPS)
        self.log_loss_sum += float(-np.log(p_true).sum())
        conf = s.max(axis=1)
        correct = (s.argmax(axis=1) == t).astype(np.float64)
        # bin i holds (i/n, (i+1)/n], the first also 0 (numpy.searchsorted on the inner edges)
        b = np.clip(np.searchsorted(np.linspace(0, 1, self.n_bins + 1)[1:-1], conf), 0, self.n_bins - 1)
        np.add.at(self.bins, (b, 0), 1.0)
        np.add.at(self.bins, (b, 1), conf)
        np.add.at(self.bins, (b, 2), correct)
        for k, tally in enumerate(self.tallies):
            for score, is_pos in zip(s[:, k].tolist(), (t == k).tolist(), strict=True):
                cell = tally.setdefault(score, [0, 0])
                cell[0 if is_pos else 1] += 1
        return self

    def merge(self, other: ClassificationStats) -> ClassificationStats:
        if other.classes != self.classes or other.n_bins != self.n_bins:
            raise ValueError("can only merge statistics over the same classes and bins")
        tallies = []
        for mine, theirs in zip(self.tallies, other.tallies, strict=True):
            merged = {k: list(v) for k, v in mine.items()}
            for k, (a, b) in theirs.items():
                cell = merged.setdefault(k, [0, 0])
                cell[0] += a
                cell[1] += b
            tallies.append(merged)
        return ClassificationStats(self.classes, self.confusion + other.confusion, self.n_bins,
                                   self.unknown + other.unknown, self.scored + other.scored,
                                   self.log_loss_sum + other.log_loss_sum, self.bins + other.bins, tallies)

    def per_class(self) -> dict[str, dict[str, float | None]]:
        cm = self.confusion.astype(np.float64)
        tp = np.diag(cm)
        support, predicted = cm.sum(axis=1), cm.sum(axis=0)
        prec = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
        rec = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
        f1 = np.divide(2 * tp, support + predicted, out=np.zeros_like(tp), where=(support + predicted) > 0)
        out: dict[str, dict[str, float | None]] = {}
        for i, c in enumerate(self.classes):
            out[str(c)] = {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                           "support": float(support[i]),
                           "roc_auc": _auc(self.tallies[i]) if self.scored else None}
        return out

    def metrics(self) -> dict[str, float | None]:
        """Every figure by name (``None`` when undefined, e.g. no labelled row)."""
        n = self.n
        out: dict[str, float | None] = {"labelled": float(n)}
        if n == 0:
            return out
        cm = self.confusion.astype(np.float64)
        tp = np.diag(cm)
        support, predicted = cm.sum(axis=1), cm.sum(axis=0)
        out["accuracy"] = float(tp.sum() / n)
        per = self.per_class()
        for m in ("precision", "recall", "f1"):
            vals = np.array([per[str(c)][m] for c in self.classes], dtype=np.float64)
            out[f"{m}_macro"] = float(vals.mean())
            out[f"{m}_weighted"] = float((vals * support).sum() / support.sum())
        tps, sup, pred = tp.sum(), support.sum(), predicted.sum()
        out["precision_micro"] = float(tps / pred) if pred else 0.0
        out["recall_micro"] = float(tps / sup) if sup else 0.0
        out["f1_micro"] = float(2 * tps / (sup + pred)) if sup + pred else 0.0
        if len(self.classes) == 2:
            # the binary figures of the positive class (the greater label, as in scikit-learn)
            for m in ("precision", "recall", "f1"):
                out[m] = per[str(self.classes[1])][m]
        if self.scored:
            aucs = [per[str(c)]["roc_auc"] for c in self.classes]
            if len(self.classes) == 2:
                out["roc_auc"] = aucs[1]
            else:
                known = [a for a in aucs if a is not None]
                out["roc_auc"] = float(np.mean(known)) if len(known) == len(aucs) else None
                # weighted by prevalence: a class with no positive weighs nothing (as in scikit-learn)
                prevalence = [sum(v[0] for v in t.values()) for t in self.tallies]
                used = [(a, w) for a, w in zip(aucs, prevalence, strict=True) if w > 0]
                if any(a is None for a, _ in used):
                    out["roc_auc_weighted"] = None
                else:
                    out["roc_auc_weighted"] = float(sum(float(a or 0.0) * w for a, w in used) / sum(w for _, w in used))
            out["log_loss"] = self.log_loss_sum / self.scored
            count, conf, correct = self.bins[:, 0], self.bins[:, 1], self.bins[:, 2]
            out["ece"] = float(np.abs(correct - conf).sum() / count.sum())
        return out


@dataclass
class RegressionStats:
    """Error sums and the truth's mean / squared deviations (mergeable)."""

    n: int = 0
    abs_sum: float = 0.0
    sq_sum: float = 0.0
    ape_sum: float = 0.0
    mean: float = 0.0  # of the truth
    m2: float = 0.0  # sum of squared deviations of the truth from its mean

    @classmethod
    def zero(cls) -> RegressionStats:
        return cls()

    def add(self, truth: Sequence[float], predicted: Sequence[float]) -> RegressionStats:
        y = np.asarray(truth, dtype=np.float64)
        e = y - np.asarray(predicted, dtype=np.float64)
        if not len(y):
            return self
        self.abs_sum += float(np.abs(e).sum())
        self.sq_sum += float((e * e).sum())
        self.ape_sum += float((np.abs(e) / np.maximum(np.abs(y), _EPS)).sum())
        mean = float(y.mean())
        m2 = float(((y - mean) ** 2).sum())
        if np.ptp(y) == 0:
            mean, m2 = float(y[0]), 0.0
        self._combine(len(y), mean, m2)
        return self

    def _combine(self, n: int, mean: float, m2: float) -> None:
        if self.n == 0:
            self.n, self.mean, self.m2 = n, mean, m2
            return
        total = self.n + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.n * n / total
        self.mean += delta * n / total
        self.n = total

    def merge(self, other: RegressionStats) -> RegressionStats:
        out = RegressionStats(self.n, self.abs_sum + other.abs_sum, self.sq_sum + other.sq_sum,
                              self.ape_sum + other.ape_sum, self.mean, self.m2)
        if other.n:
            out._combine(other.n, other.mean, other.m2)
        return out

    def metrics(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {"labelled": float(self.n)}
        if not self.n:
            return out
        out["mae"] = self.abs_sum / self.n
        out["rmse"] = float(np.sqrt(self.sq_sum / self.n))
        out["mape"] = self.ape_sum / self.n
        if self.n < 2:
            out["r2"] = None
        elif self.m2 == 0:
            out["r2"] = 1.0 if self.sq_sum == 0 else 0.0
        else:
            out["r2"] = 1.0 - self.sq_sum / self.m2
        return out

"""A/B and canary comparison: live variants of one model tested against each other.

Rows carry their variant (``variant`` column; the runtime fills it from the record's
version or endpoint). Against the ``baseline`` variant (default: the one with most rows, the
first by name on a tie),
each other variant is tested on

* inputs: per feature, two-sample KS (numerical) or chi-squared on the contingency table
  (categorical), Bonferroni over the features;
* outputs: the prediction column the same way, and the score column by KS;
* accuracy on its labelled rows: two-proportion z-test (pooled standard error), with a
  Wald confidence interval on the difference;
* ROC AUC (binary, ``score`` = positive-class probability): DeLong's variance of each AUC,
  independent samples, z-test and confidence interval on the difference.

A family fires when its p-value is below ``alpha`` divided by the number of tests run for
that variant (Bonferroni over inputs, outputs, accuracy, AUC), so a variant's false-alarm
rate is at most ``alpha``. ``distance`` is the largest accuracy drop of a challenger
(baseline minus challenger) and ``p_value`` the smallest adjusted p-value; details per
challenger are in ``extra["variants"]``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 4000)
>>> ok = rng.random(4000) < np.r_[np.full(2000, 0.9), np.full(2000, 0.8)]
>>> det = VariantComparison(features=[]).fit({"variant": ["a", "b"]})
>>> r = det.update({"variant": ["a"] * 2000 + ["b"] * 2000, "prediction": np.where(ok, y, 1 - y),
...                 "truth": y}).result()
>>> r.is_drift, r.extra["variants"]["b"]["accuracy"]["ci"][1] < 0
(True, True)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from scipy.stats import chi2_contingency, ks_2samp, norm

from detectors.common._data import Data, as_float, columns, probability
from detectors.common._univariate import fingerprint
from detectors.common.state import ColumnBuffer
from detectors.performance._rows import label_list
from inferwatch.errors import DetectorError
from inferwatch.record import Detection

__all__ = ["VariantComparison", "delong", "two_proportions"]


def two_proportions(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> dict[str, Any]:
    """Two-sided z-test of ``k2/n2 - k1/n1`` (pooled), and a Wald interval on the difference."""
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    diff = p2 - p1
    p_value = 1.0 if se0 == 0 else float(2 * norm.sf(abs(diff) / se0))
    se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    z = norm.ppf(0.5 + confidence / 2)
    return {"baseline": p1, "value": p2, "difference": diff, "p_value": p_value,
            "ci": [float(diff - z * se), float(diff + z * se)], "n": [n1, n2]}


def _midranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x))
    i = 0
    while i < len(xs):
        j = i
        while j < len(xs) and xs[j] == xs[i]:
            j += 1
        ranks[order[i:j]] = 0.5 * (i + j - 1) + 1
        i = j
    return ranks


def delong(y: np.ndarray, score: np.ndarray) -> tuple[float, float] | None:
    """(AUC, DeLong variance) of a binary ``y`` (1 = positive); ``None`` with one class only.

    Structural components via midranks (Sun & Xu, 2014): ties count one half."""
    y = np.asarray(y).astype(bool)
    pos, neg = score[y], score[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        return None
    all_ranks = _midranks(np.concatenate([pos, neg]))
    v10 = (all_ranks[:m] - _midranks(pos)) / n  # per positive: share of negatives below
    v01 = 1.0 - (all_ranks[m:] - _midranks(neg)) / m  # per negative: share of positives above
    auc = float(v10.mean())
    var = (np.var(v10, ddof=1) / m if m > 1 else 0.0) + (np.var(v01, ddof=1) / n if n > 1 else 0.0)
    return auc, float(var)


def _two_sample(a: np.ndarray, b: np.ndarray) -> tuple[str, float] | None:
    """KS for numbers, chi-squared for categories; ``None`` if either side is empty."""
    fa, fb = as_float(a), as_float(b)
    if fa is not None and fb is not None and a.dtype.kind in "iuf" and b.dtype.kind in "iuf":
        fa, fb = fa[~np.isnan(fa)], fb[~np.isnan(fb)]
        if not len(fa) or not len(fb):
            return None
        return "ks", float(ks_2samp(fa, fb, method="asymp").pvalue)
    la = [str(v) for v in label_list(a) if v is not None]
    lb = [str(v) for v in label_list(b) if v is not None]
    if not la or not lb:
        return None
    cats = sorted(set(la) | set(lb))
    if len(cats) < 2:
        return "chi2", 1.0
    table = np.array([[la.count(c) for c in cats], [lb.count(c) for c in cats]])
    return "chi2", float(chi2_contingency(table, correction=False).pvalue)


class VariantComparison:
    """Parameters: ``variant`` (column), ``baseline`` (variant name; default the largest),
    ``features`` (input columns; default every column not named below), ``prediction``,
    ``score`` (positive-class probability, binary AUC), ``truth``, ``positive`` (class of
    ``score``; default the greater label), ``alpha``, ``confidence``, ``min_rows`` (per variant)."""

    name = "variants"
    kind = "performance"

    def __init__(
        self,
        variant: str = "variant",
        baseline: str | None = None,
        features: Sequence[str] | None = None,
        prediction: str = "prediction",
        score: str | None = None,
        truth: str = "truth",
        positive: Any = None,
        alpha: float = 0.05,
        confidence: float = 0.95,
        min_rows: int = 30,
    ) -> None:
        self.variant, self.baseline = variant, baseline
        self.features = list(features) if features is not None else None
        self.prediction, self.score, self.truth, self.positive = prediction, score, truth, positive
        self.alpha = probability("alpha", alpha)
        self.confidence = probability("confidence", confidence)
        self.min_rows = int(min_rows)
        self._fitted = False
        self._ref_key = ""
        self.fitted_features: list[str] = []
        self._window = ColumnBuffer.zero()

    def fit(self, reference: Data) -> Self:
        """Variants are compared with each other, not with the reference; the reference fixes the
        input columns compared (``features``, default: its columns other than the variant,
        prediction, score and truth; with none of those, every such column of the window)."""
        cols = columns(reference)
        if not cols:
            raise DetectorError(f"{self.name}: empty reference")
        roles = {self.variant, self.prediction, self.truth, self.score}
        self.fitted_features = (list(self.features) if self.features is not None
                                else [c for c in cols if c not in roles])
        self._ref_key = fingerprint(cols)
        self._fitted = True
        self._window = ColumnBuffer.zero()
        return self

    def update(self, batch: Data, ids: Sequence[str] | None = None) -> Self:
        if not self._fitted:
            raise DetectorError(f"{self.name}: call fit(reference) first")
        self._window.append(batch, ids=ids)
        return self

    def reset(self) -> Self:
        self._window = ColumnBuffer.zero()
        return self

    def merge(self, other: Self) -> Self:
        if not self._fitted or other._ref_key != self._ref_key:
            raise DetectorError(f"{self.name}: can only merge detectors fitted on the same reference")
        new = copy.copy(self)
        new._window = self._window.merge(other._window)
        return new

    @property
    def window_size(self) -> int:
        return self._window.n_rows

    def _compare(self, cols: dict[str, np.ndarray], base: np.ndarray, chal: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {"rows": [int(base.sum()), int(chal.sum())]}
        roles = {self.variant, self.prediction, self.truth, self.score}
        feats = self.fitted_features or (self.features if self.features is not None else
                                         [c for c in cols if c not in roles])
        tests: dict[str, float] = {}
        per_feature = {}
        for f in feats:
            if f in cols:
                res = _two_sample(cols[f][base], cols[f][chal])
                if res is not None:
                    per_feature[f] = res[1]
        if per_feature:
            out["inputs"] = {"p_values": per_feature}
            tests["inputs"] = min(1.0, min(per_feature.values()) * len(per_feature))
        outputs = {}
        for c in (self.prediction, self.score):
            if c is not None and c in cols:
                res = _two_sample(cols[c][base], cols[c][chal])
                if res is not None:
                    outputs[c] = res[1]
        if outputs:
            out["outputs"] = {"p_values": outputs}
            tests["outputs"] = min(1.0, min(outputs.values()) * len(outputs))
        if self.truth in cols and self.prediction in cols:
            t, p = label_list(cols[self.truth]), label_list(cols[self.prediction])
            lab = np.array([v is not None for v in t])
            right = np.array([a is not None and a == b for a, b in zip(t, p, strict=True)])
            n1, n2 = int((lab & base).sum()), int((lab & chal).sum())
            if min(n1, n2) >= self.min_rows:
                acc = two_proportions(int((right & base).sum()), n1, int((right & chal).sum()), n2, self.confidence)
                out["accuracy"] = acc
                tests["accuracy"] = acc["p_value"]
            if self.score is not None and self.score in cols and min(n1, n2) >= self.min_rows:
                auc = self._auc(t, as_float(cols[self.score]), lab, base, chal)
                if auc is not None:
                    out["roc_auc"] = auc
                    tests["roc_auc"] = auc["p_value"]
        out["tests"] = {k: min(1.0, v * len(tests)) for k, v in tests.items()}  # Bonferroni-adjusted
        return out

    def _auc(self, truth: list[Any], score: np.ndarray | None, lab: np.ndarray, base: np.ndarray,
             chal: np.ndarray) -> dict[str, Any] | None:
        if score is None:
            return None
        classes = sorted({v for v in truth if v is not None}, key=str)
        positive = self.positive if self.positive is not None else (classes[-1] if classes else None)
        y = np.array([v == positive for v in truth])
        res = []
        for side in (base, chal):
            keep = side & lab & ~np.isnan(score)
            r = delong(y[keep], score[keep])
            if r is None:
                return None
            res.append(r)
        (a1, v1), (a2, v2) = res
        diff, se = a2 - a1, float(np.sqrt(v1 + v2))
        z = norm.ppf(0.5 + self.confidence / 2)
        p_value = 1.0 if se == 0 else float(2 * norm.sf(abs(diff) / se))
        return {"baseline": a1, "value": a2, "difference": diff, "p_value": p_value,
                "ci": [diff - z * se, diff + z * se]}

    def result(self) -> Detection:
        if not self._fitted:
            raise DetectorError(f"{self.name}: call fit(reference) first")
        det = Detection(detector=self.name, kind="performance", model="", window_size=self._window.n_rows,
                        threshold=self.alpha)
        if not self._window.n_rows or not self._window.has(self.variant):
            return det
        cols = {c: self._window.column(c) for c in self._window.names()}
        names = np.array([str(v) for v in cols[self.variant].tolist()])
        counts = {v: int((names == v).sum()) for v in sorted(set(names.tolist()))}
        det.extra["rows_per_variant"] = counts
        base_name = self.baseline if self.baseline is not None else max(sorted(counts), key=counts.__getitem__)
        det.extra["baseline"] = base_name
        if base_name not in counts:
            return det
        base = names == base_name
        results: dict[str, Any] = {}
        for v in counts:
            if v == base_name or counts[v] < self.min_rows or counts[base_name] < self.min_rows:
                continue
            results[v] = self._compare(cols, base, names == v)
        det.extra["variants"] = results
        adjusted = [p for r in results.values() for p in r["tests"].values()]
        if adjusted:
            det.p_value = min(adjusted)
            det.is_drift = det.p_value < self.alpha
            fired = {v: sorted(k for k, p in r["tests"].items() if p < self.alpha) for v, r in results.items()}
            det.extra["fired"] = {v: f for v, f in fired.items() if f}
        drops = [-r["accuracy"]["difference"] for r in results.values() if "accuracy" in r]
        if drops:
            det.distance = max(drops)
        return det

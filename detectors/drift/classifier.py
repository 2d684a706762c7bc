"""Classifier two-sample drift test (multivariate), cross-validated.

A classifier learns to tell reference rows (label 0) from window rows (label 1) with
``n_folds``-fold stratified cross-validation; the out-of-fold probabilities of the two
groups are compared with a one-sided KS test (``alternative='greater'``: window rows get
higher probabilities), as alibi-detect's ``ClassifierDrift`` does with
``binarize_preds=False``. The distance is the out-of-fold ROC AUC (0.5 = no signal).
The reference is subsampled to ``max_reference`` rows; missing cells take the reference
median. Default model: scikit-learn's ``RandomForestClassifier`` (50 trees, single
thread: predictable on small machines); pass any classifier with ``predict_proba``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = ClassifierDrift().fit({"a": rng.normal(size=1000).tolist(), "b": rng.normal(size=1000).tolist()})
>>> det.update({"a": rng.normal(1.0, size=300).tolist(), "b": rng.normal(size=300).tolist()}).result().is_drift
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import ks_2samp
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from detectors.common._data import probability
from detectors.common._windowed import ReferenceSampleDetector
from detectors.common.state import ColumnBuffer
from inferwatch.record import Detection

__all__ = ["ClassifierDrift"]


class ClassifierDrift(ReferenceSampleDetector):
    """Parameters: ``p_val``, ``model`` (sklearn classifier), ``n_folds``, ``features``,
    ``max_reference``, ``seed``."""

    name = "classifier"

    def __init__(
        self,
        p_val: float = 0.05,
        model: Any = None,
        n_folds: int = 5,
        features: Sequence[str] | None = None,
        max_reference: int = 2000,
        seed: int = 0,
    ) -> None:
        super().__init__(features, max_reference, seed)
        if int(n_folds) < 2:
            raise ValueError(f"n_folds must be at least 2, got {n_folds!r}")
        self.p_val = probability("p_val", p_val)
        self.model = model
        self.n_folds = int(n_folds)

    def _result(self, window: ColumnBuffer) -> Detection:
        det = self._detection()
        det.threshold = self.p_val
        m = window.n_rows
        if m < self.n_folds:
            return det
        y_win = self._window_matrix(window, det)
        if y_win is None:
            return det
        x = np.vstack([self._x_ref, y_win])
        y = np.r_[np.zeros(len(self._x_ref)), np.ones(m)]
        model = (
            clone(self.model)
            if self.model is not None
            else RandomForestClassifier(n_estimators=50, min_samples_leaf=5, n_jobs=1, random_state=self.seed)
        )
        probs = np.empty(len(y))
        folds = StratifiedKFold(n_splits=self.n_folds, shuffle=True, random_state=self.seed)
        for train, test in folds.split(x, y):
            fitted = clone(model).fit(x[train], y[train])
            probs[test] = fitted.predict_proba(x[test])[:, 1]
        ks = ks_2samp(probs[y == 0], probs[y == 1], alternative="greater", method="asymp")
        det.p_value = float(ks.pvalue)
        det.is_drift = det.p_value < self.p_val
        det.distance = float(roc_auc_score(y, probs))
        det.extra["ks_statistic"] = float(ks.statistic)
        return det

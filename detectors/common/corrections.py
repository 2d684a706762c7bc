"""Multiple-testing corrections over per-feature p-values, as alibi-detect decides them.

* ``"bonferroni"``: drift when any ``p < alpha / n``.
* ``"none"``: drift when any ``p < alpha`` (each feature at its own level; the chance
  that some feature fires under no drift grows with the number of features).
* ``"fdr"`` (Benjamini-Hochberg): sort the p-values; drift when any ``p_(i) < alpha * i / n``
  (alibi-detect's ``utils.statstest.fdr``: strict ``<``). The drifted features are the ones
  at or below the largest such ``p_(i)``.

``n`` is the number of features actually tested (``nan`` p-values are not counted).
The batch p-value reported is the adjusted one (Bonferroni ``min(1, n * min p)``, BH
``min_i n p_(i) / i``, none ``min p``), so ``p_value < alpha`` reads the same as the decision.

>>> c = correct([0.001, 0.2, 0.5], alpha=0.05, method="bonferroni")
>>> c.is_drift, round(c.p_value, 6), c.feature_threshold, c.feature_drift.tolist()
(True, 0.003, 0.016666666666666666, [True, False, False])
>>> correct([0.02, 0.03, 0.5], alpha=0.05, method="fdr").feature_drift.tolist()
[True, True, False]
>>> correct([0.02, 0.03, 0.5], alpha=0.05, method="none").feature_drift.tolist()
[True, True, False]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["CORRECTIONS", "Correction", "correct"]

Method = Literal["bonferroni", "fdr", "none"]
CORRECTIONS: tuple[str, ...] = ("bonferroni", "fdr", "none")


@dataclass(frozen=True)
class Correction:
    is_drift: bool
    p_value: float
    """Adjusted batch-level p-value (compare with ``alpha``)."""
    feature_threshold: float
    """The per-feature p-value cut actually applied."""
    feature_drift: np.ndarray


def correct(p_values: Sequence[float] | np.ndarray, alpha: float, method: str = "bonferroni") -> Correction:
    """Batch decision over per-feature p-values (``nan`` or ``None`` p-values are ignored)."""
    p = np.asarray(p_values, dtype=np.float64)
    ok = ~np.isnan(p)
    drift = np.zeros(p.shape, dtype=bool)
    n = int(ok.sum())
    if n == 0:
        return Correction(False, float("nan"), float("nan"), drift)
    pv = p[ok]
    if method == "bonferroni":
        thr = alpha / n
        flags = pv < thr
        adjusted = min(1.0, float(pv.min()) * n)
    elif method == "none":
        thr = alpha
        flags = pv < thr
        adjusted = float(pv.min())
    elif method == "fdr":
        order = np.sort(pv)
        i = np.arange(1, n + 1)
        q = alpha * i / n
        below = order < q
        if below.any():
            k = int(np.flatnonzero(below).max())
            thr = float(q[k])
            flags = pv <= order[k]
        else:
            thr = float(q[0])
            flags = np.zeros(n, dtype=bool)
        adjusted = min(1.0, float((order * n / i).min()))
    else:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {method!r}")
    drift[ok] = flags
    return Correction(bool(flags.any()), adjusted, float(thr), drift)

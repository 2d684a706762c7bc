"""Fisher's exact drift test per binary feature (alibi-detect's ``FETDrift``).

For each feature the 2 x 2 table ``[[ones_window, ones_ref], [zeros_window, zeros_ref]]``
goes to ``scipy.stats.fisher_exact``; the distance is its odds ratio. Values must be
0/1 or False/True. Unlike alibi-detect (``alternative='greater'``), the default here is
``'two-sided'``: a monitor cares about a rate moving either way.

>>> det = FETDrift().fit({"flag": [0] * 900 + [1] * 100})
>>> det.update({"flag": [0] * 60 + [1] * 40}).result().is_drift
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import fisher_exact

from detectors.common._categorical import drop_missing
from detectors.common._univariate import FeatureDrift
from inferwatch.errors import DetectorError

__all__ = ["FETDrift"]

_ALTERNATIVES = ("two-sided", "greater", "less")


def _binary(values: np.ndarray) -> np.ndarray:
    v = drop_missing(values)
    try:
        b = v.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DetectorError("FETDrift needs 0/1 or False/True values") from exc
    if not np.isin(b, (0.0, 1.0)).all():
        raise DetectorError("FETDrift needs 0/1 or False/True values")
    return b


class FETDrift(FeatureDrift):
    """Fisher's exact test on the rate of ones of each binary feature.

    Parameters: ``p_val``, ``correction``, ``features`` (default: every boolean column or
    numeric column holding only 0 and 1), ``alternative`` (``'two-sided'``, ``'greater'``:
    more ones in the window, ``'less'``).
    """

    name = "fet"
    numeric_only = False

    def __init__(
        self,
        p_val: float = 0.05,
        correction: str = "bonferroni",
        features: Sequence[str] | None = None,
        alternative: str = "two-sided",
    ) -> None:
        super().__init__(p_val=p_val, correction=correction, features=features)
        if alternative not in _ALTERNATIVES:
            raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")
        self.alternative = alternative

    def _accepts(self, values: np.ndarray) -> bool:
        if values.dtype.kind == "b":
            return True
        if values.dtype.kind in "iuf":
            v = drop_missing(values)
            return len(v) > 0 and bool(np.isin(v, (0, 1)).all())
        return False

    def _numeric_state(self, state: object) -> bool:
        return True

    def _prepare(self, values: np.ndarray) -> np.ndarray | None:
        try:
            return _binary(values)
        except DetectorError:
            return None

    def _fit_feature(self, name: str, values: np.ndarray) -> tuple[int, int]:
        return int(values.sum()), len(values)

    def _test(self, refs: list[tuple[int, int]], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = np.empty(len(refs))
        odds = np.empty(len(refs))
        for i, ((ones_ref, n_ref), x) in enumerate(zip(refs, values, strict=True)):
            ones, n = int(x.sum()), len(x)
            table = np.array([[ones, ones_ref], [n - ones, n_ref - ones_ref]])
            res = fisher_exact(table, alternative=self.alternative)
            odds[i], p[i] = float(res[0]), float(res[1])
        return p, odds

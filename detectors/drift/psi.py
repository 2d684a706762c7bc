"""Population Stability Index per feature.

``PSI = sum_i (q_i - p_i) * ln(q_i / p_i)`` over reference-quantile bins (or categories),
with ``eps`` added to empty bins. By default a level-``p_val`` test (the null distribution
of PSI simulated from the reference, see :mod:`detectors.drift._distance`); with
``threshold`` the rule of thumb instead (< 0.1 stable, 0.1-0.2 moderate, > 0.2
significant), which has no level: on small windows it fires on null data by chance.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = PSIDrift().fit({"a": rng.normal(size=5000).tolist()})
>>> det.update({"a": rng.normal(0.8, size=1000).tolist()}).result().is_drift
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.drift._distance import BinnedDistance

__all__ = ["PSIDrift"]


class PSIDrift(BinnedDistance):
    """PSI per feature; parameters ``threshold`` (None: a test at ``p_val``), ``bins``, ``eps``,
    ``features``, ``p_val``, ``correction``, ``draws``."""

    name = "psi"

    def __init__(
        self,
        threshold: float | None = None,
        bins: int = 10,
        eps: float = 1e-4,
        features: Sequence[str] | None = None,
        p_val: float = 0.05,
        correction: str = "bonferroni",
        draws: int | None = None,
    ) -> None:
        super().__init__(threshold=threshold, bins=bins, features=features, p_val=p_val, correction=correction,
                         draws=draws)
        self.eps = float(eps)

    def _distance(self, p: np.ndarray, q: np.ndarray) -> float:
        p = np.maximum(p, self.eps)
        q = np.maximum(q, self.eps)
        return float(((q - p) * np.log(q / p)).sum())

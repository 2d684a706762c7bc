"""Hellinger distance per feature (in [0, 1]).

``H = sqrt(1/2 * sum_i (sqrt(p_i) - sqrt(q_i))**2)`` between the binned reference and
window distributions.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = HellingerDrift().fit({"a": rng.normal(size=5000).tolist()})
>>> det.update({"a": rng.normal(1.0, size=1000).tolist()}).result().is_drift
True
"""

from __future__ import annotations

import numpy as np

from detectors.drift._distance import BinnedDistance

__all__ = ["HellingerDrift"]


class HellingerDrift(BinnedDistance):
    """Hellinger distance per feature; parameters ``threshold`` (None: a test at ``p_val``, see
    :mod:`detectors.drift._distance`), ``bins``, ``features``, ``p_val``, ``correction``, ``draws``."""

    name = "hellinger"

    def _distance(self, p: np.ndarray, q: np.ndarray) -> float:
        return float(np.sqrt(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum()))

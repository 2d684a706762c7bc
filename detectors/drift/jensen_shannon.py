"""Jensen-Shannon distance per feature (base 2, in [0, 1]).

The square root of the JS divergence between the binned reference and window
distributions, as ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = JSDrift().fit({"a": rng.normal(size=5000).tolist()})
>>> det.update({"a": rng.normal(1.0, size=1000).tolist()}).result().is_drift
True
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import jensenshannon

from detectors.drift._distance import BinnedDistance

__all__ = ["JSDrift"]


class JSDrift(BinnedDistance):
    """Jensen-Shannon distance per feature; parameters ``threshold`` (None: a test at ``p_val``, see
    :mod:`detectors.drift._distance`), ``bins``, ``features``, ``p_val``, ``correction``, ``draws``."""

    name = "js"

    def _distance(self, p: np.ndarray, q: np.ndarray) -> float:
        return float(jensenshannon(p, q, base=2))

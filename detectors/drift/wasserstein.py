"""Wasserstein-1 (earth mover's) distance per numerical feature.

``scipy.stats.wasserstein_distance(reference, window)``, divided by the reference's
standard deviation when ``normalize`` (the default), so a distance reads in reference
standard deviations (0.1 = a tenth of a sigma of mass moved). By default a level-``p_val``
test (the null distribution simulated from the reference, see
:mod:`detectors.drift._distance`); with ``threshold``, a fixed cut instead (no level).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = WassersteinDrift().fit({"a": rng.normal(size=5000).tolist()})
>>> det.update({"a": rng.normal(0.5, size=1000).tolist()}).result().is_drift
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import wasserstein_distance

from detectors.drift._distance import ThresholdDrift

__all__ = ["WassersteinDrift"]


class WassersteinDrift(ThresholdDrift):
    """Wasserstein distance per feature; parameters ``threshold`` (None: a test at ``p_val``),
    ``normalize``, ``features``, ``p_val``, ``correction``, ``draws``."""

    name = "wasserstein"
    numeric_only = True

    def __init__(
        self,
        threshold: float | None = None,
        normalize: bool = True,
        features: Sequence[str] | None = None,
        p_val: float = 0.05,
        correction: str = "bonferroni",
        draws: int | None = None,
    ) -> None:
        super().__init__(threshold=threshold, features=features, p_val=p_val, correction=correction, draws=draws)
        self.normalize = bool(normalize)

    def _prepare(self, values: np.ndarray) -> np.ndarray | None:
        return super(ThresholdDrift, self)._prepare(values)

    def _fit_distance(self, values: np.ndarray) -> tuple[np.ndarray, float]:
        scale = float(np.std(values)) if self.normalize else 1.0
        return np.sort(values), scale if scale > 0 else 1.0

    def _distance_to(self, state: tuple[np.ndarray, float], x: np.ndarray) -> float:
        ref, scale = state
        return float(wasserstein_distance(ref, x)) / scale

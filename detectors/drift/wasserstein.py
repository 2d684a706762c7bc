"""Wasserstein-1 (earth mover's) distance per numerical feature.

``scipy.stats.wasserstein_distance(reference, window)``, divided by the reference's
standard deviation when ``normalize`` (the default), so the threshold reads in reference
standard deviations (0.1 = a tenth of a sigma of mass moved).

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
    """Wasserstein distance with a threshold; parameters ``threshold``, ``normalize``, ``features``."""

    name = "wasserstein"
    numeric_only = True

    def __init__(
        self, threshold: float = 0.1, normalize: bool = True, features: Sequence[str] | None = None
    ) -> None:
        super().__init__(threshold=threshold, features=features)
        self.normalize = bool(normalize)

    def _prepare(self, values: np.ndarray) -> np.ndarray | None:
        return super(ThresholdDrift, self)._prepare(values)

    def _fit_feature(self, name: str, values: np.ndarray) -> tuple[np.ndarray, float]:
        scale = float(np.std(values)) if self.normalize else 1.0
        return np.sort(values), scale if scale > 0 else 1.0

    def _test(
        self, refs: list[tuple[np.ndarray, float]], values: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        d = np.array([wasserstein_distance(r, x) / s for (r, s), x in zip(refs, values, strict=True)])
        return np.full(len(d), np.nan), d

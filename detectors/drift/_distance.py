"""Shared machinery of the distance-with-threshold drift measures (private).

PSI, Jensen-Shannon and Hellinger compare binned distributions: numerical features are
cut at reference quantiles (``bins`` equal-mass bins, open at both ends), categorical
features use their categories (categories new in the window get their own bins).
A feature drifts when its distance exceeds ``threshold``; the window drifts when any
feature does. There is no p-value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.common._categorical import count, drop_missing, is_categorical
from detectors.common._data import coerce_float, looks_numeric
from detectors.common._univariate import FeatureDrift
from inferwatch.record import Detection

__all__ = ["BinnedDistance", "Binned", "ThresholdDrift"]


class ThresholdDrift(FeatureDrift):
    """A per-feature distance compared with a fixed threshold."""

    numeric_only = False
    uses_p_values = False

    def __init__(self, threshold: float, features: Sequence[str] | None = None) -> None:
        super().__init__(features=features)
        if not float(threshold) > 0:
            raise ValueError(f"threshold must be positive, got {threshold!r}")
        self.threshold = float(threshold)

    def _prepare(self, values: np.ndarray) -> np.ndarray | None:
        return drop_missing(values)

    def _decide(self, det: Detection, tested: list[str], p: np.ndarray, dist: np.ndarray) -> Detection:
        flags = dist > self.threshold
        det.is_drift = bool(flags.any())
        det.threshold = self.threshold
        det.extra.pop("correction", None)
        det.feature_drift = {f: bool(v) for f, v in zip(tested, flags, strict=True)}
        return det

    def __repr__(self) -> str:
        return f"{type(self).__name__}(threshold={self.threshold}, features={self.features!r})"


@dataclass
class Binned:
    """A reference column as bin probabilities."""

    edges: np.ndarray | None  # inner edges for numbers; None for categories
    categories: list[Any]
    probs: np.ndarray


class BinnedDistance(ThresholdDrift):
    """Distances between binned reference and window distributions."""

    def __init__(self, threshold: float, bins: int = 10, features: Sequence[str] | None = None) -> None:
        super().__init__(threshold=threshold, features=features)
        if int(bins) < 2:
            raise ValueError(f"bins must be at least 2, got {bins!r}")
        self.bins = int(bins)

    def _accepts(self, values: np.ndarray) -> bool:
        return True

    def _numeric_state(self, state: Any) -> bool:
        return isinstance(state, Binned) and state.edges is not None

    def _fit_feature(self, name: str, values: np.ndarray) -> Binned:
        if is_categorical(values) and not looks_numeric(values):
            counts = count(values)
            total = sum(counts.values())
            return Binned(None, list(counts), np.array([c / total for c in counts.values()]))
        v, _ = coerce_float(values)
        v = v[~np.isnan(v)]
        edges = np.unique(np.quantile(v, np.linspace(0, 1, self.bins + 1)[1:-1]))
        hist = np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
        return Binned(edges, [], hist / hist.sum())

    def _pair(self, ref: Binned, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(reference probabilities, window probabilities) over the same bins."""
        if ref.edges is None:
            counts = count(x)
            total = max(sum(counts.values()), 1)
            new = [c for c in counts if c not in set(ref.categories)]
            p = np.concatenate([ref.probs, np.zeros(len(new))])
            q = np.array([counts.get(c, 0) / total for c in [*ref.categories, *new]])
            return p, q
        xv = x.astype(np.float64)
        hist = np.bincount(np.searchsorted(ref.edges, xv, side="right"), minlength=len(ref.edges) + 1)
        return ref.probs, hist / max(hist.sum(), 1)

    def _distance(self, p: np.ndarray, q: np.ndarray) -> float:
        raise NotImplementedError

    def _test(self, refs: list[Binned], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        d = np.array([self._distance(*self._pair(r, x)) for r, x in zip(refs, values, strict=True)])
        return np.full(len(d), np.nan), d

"""Shared machinery of the distance drift measures (private).

PSI, Jensen-Shannon and Hellinger compare binned distributions: numerical features are
cut at reference quantiles (``bins`` equal-mass bins, open at both ends), categorical
features use their categories (categories new in the window get their own bins).
Wasserstein compares the values themselves.

Two ways to decide:

* ``threshold`` given: a feature drifts when its distance exceeds it; the window drifts
  when any feature does. No p-value (the rule-of-thumb thresholds have no level: on small
  windows they fire on null data by chance alone).
* ``threshold=None`` (the default): a level-``p_val`` test. The distance's null
  distribution for a window of ``n`` values is simulated from the reference by splitting
  it at random into a window of ``n`` values and a reference of the rest and applying the
  same procedure (bins refitted on the rest), ``draws`` times. Each split is a real
  reference/window pair from the reference population, with a smaller reference than the
  one in use (``m - n`` instead of ``m`` rows), so the simulated distances are, if
  anything, larger than the real null ones: the test is conservative. When the reference
  has fewer than ``2 n`` values, both sides are drawn with replacement instead (a
  bootstrap; approximate). The p-value is the Monte Carlo one, ``(1 + #{null >= d}) /
  (draws + 1)``, with ``draws`` by default enough that the smallest attainable p-value is
  a quarter of the per-feature Bonferroni cut; the per-feature p-values go through
  ``correction`` (Bonferroni by default) like every other p-value detector. The null
  distances are computed once per feature and window size and kept (window sizes are
  rounded *down* to two significant digits first, which is conservative too: a smaller
  window's null distances are larger). The first window of a new size pays for the
  simulation (about 0.1-0.4 s per feature at 1,000 draws on a 5,000-row reference).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.common._categorical import count, drop_missing, is_categorical
from detectors.common._data import coerce_float, looks_numeric
from detectors.common._univariate import FeatureDrift
from inferwatch.record import Detection

__all__ = ["BinnedDistance", "Binned", "Fitted", "ThresholdDrift", "calibration_size"]

_SPLIT, _BOOTSTRAP = "simulated (reference splits)", "simulated (bootstrap)"
"""``extra["methods"]`` per feature: how its null distances were drawn."""

_KEEP = 32
"""Most window sizes whose null distances are kept per feature."""


def calibration_size(n: int) -> int:
    """``n`` rounded down to two significant digits (the window size calibrated for ``n``).

    >>> [calibration_size(n) for n in (7, 99, 100, 1000, 1234, 5999)]
    [7, 99, 100, 1000, 1200, 5900]
    """
    if n < 100:
        return n
    unit = 10 ** (len(str(n)) - 2)
    return n // unit * unit


@dataclass
class Fitted:
    """One fitted reference column: what the distance needs (``state``), the values to
    simulate null windows from (``pool``), and the null distances per window size."""

    name: str
    state: Any
    pool: np.ndarray
    null: dict[int, tuple[str, np.ndarray]] = field(default_factory=dict)


class ThresholdDrift(FeatureDrift):
    """A per-feature distance, decided by a fixed ``threshold`` or, when none is given, by a
    p-value from null windows simulated from the reference (see the module docstring)."""

    numeric_only = False

    def __init__(
        self,
        threshold: float | None = None,
        features: Sequence[str] | None = None,
        p_val: float = 0.05,
        correction: str = "bonferroni",
        draws: int | None = None,
    ) -> None:
        super().__init__(p_val=p_val, correction=correction, features=features)
        if threshold is not None and not float(threshold) > 0:
            raise ValueError(f"threshold must be positive, got {threshold!r}")
        if draws is not None and int(draws) < 99:
            raise ValueError(f"draws must be at least 99, got {draws!r}")
        self.threshold = None if threshold is None else float(threshold)
        self.draws = None if draws is None else int(draws)
        self.uses_p_values = self.threshold is None

    # -- what subclasses provide ---------------------------------------------------------
    def _fit_distance(self, values: np.ndarray) -> Any:
        """What the distance keeps of a (prepared) reference column."""
        raise NotImplementedError

    def _distance_to(self, state: Any, x: np.ndarray) -> float:
        """The distance between a fitted reference column and a window column."""
        raise NotImplementedError

    # -- FeatureDrift ------------------------------------------------------------------------
    def _prepare(self, values: np.ndarray) -> np.ndarray | None:
        return drop_missing(values)

    def _pool(self, state: Any, values: np.ndarray) -> np.ndarray:
        """The reference values null windows are drawn from (as the window's are read)."""
        return values

    def _refit(self, like: Any, values: np.ndarray) -> Any:
        """:meth:`_fit_distance` of part of a pool, for a column fitted as ``like``."""
        return self._fit_distance(values)

    def _fit_feature(self, name: str, values: np.ndarray) -> Fitted:
        state = self._fit_distance(values)
        return Fitted(name, state, self._pool(state, values))

    def _draws(self, n_features: int) -> int:
        """Null windows per feature and window size: enough that the smallest attainable
        p-value is a quarter of the per-feature Bonferroni cut (199 at least)."""
        return max(199, int(np.ceil(4 * max(n_features, 1) / self.p_val)))

    def _null(self, ref: Fitted, n: int) -> tuple[str, np.ndarray]:
        """How, and the null distances for windows of ``calibration_size(n)`` values (computed
        once)."""
        size = calibration_size(n)
        if size in ref.null:
            return ref.null[size]
        draws = self.draws if self.draws is not None else self._draws(len(self._ref or ()))
        seed = int.from_bytes(hashlib.sha1(f"{self._ref_key}/{ref.name}".encode()).digest()[:8], "big")
        rng = np.random.default_rng([seed, size])
        pool, m = ref.pool, len(ref.pool)
        split = m >= 2 * size
        out = np.empty(draws)
        for b in range(draws):
            if split:
                idx = rng.permutation(m)
                rest, win = pool[idx[size:]], pool[idx[:size]]
            else:  # too small a reference to split: a bootstrap of both sides
                rest, win = pool[rng.integers(0, m, m)], pool[rng.integers(0, m, size)]
            out[b] = self._distance_to(self._refit(ref.state, rest), win)
        if len(ref.null) >= _KEEP:
            ref.null.pop(next(iter(ref.null)))
        ref.null[size] = (_SPLIT if split else _BOOTSTRAP, out)
        return ref.null[size]

    def _test(self, refs: list[Fitted], values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        d = np.array([self._distance_to(r.state, x) for r, x in zip(refs, values, strict=True)])
        if self.threshold is not None:
            return np.full(len(d), np.nan), d
        p = np.empty(len(d))
        self._methods = []
        for i, (r, x) in enumerate(zip(refs, values, strict=True)):
            method, null = self._null(r, len(x))
            self._methods.append(method)
            # ties count against drift; the tolerance absorbs rounding between equal distances
            p[i] = (1 + np.count_nonzero(null >= d[i] - 1e-12 * max(abs(d[i]), 1.0))) / (len(null) + 1)
        return p, d

    def _decide(self, det: Detection, tested: list[str], p: np.ndarray, dist: np.ndarray) -> Detection:
        if self.threshold is None:
            return super()._decide(det, tested, p, dist)
        flags = dist > self.threshold
        det.is_drift = bool(flags.any())
        det.threshold = self.threshold
        det.extra.pop("correction", None)
        det.feature_drift = {f: bool(v) for f, v in zip(tested, flags, strict=True)}
        return det

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(threshold={self.threshold}, p_val={self.p_val}, "
                f"correction={self.correction!r}, features={self.features!r})")


@dataclass
class Binned:
    """A reference column as bin probabilities."""

    edges: np.ndarray | None  # inner edges for numbers; None for categories
    categories: list[Any]
    probs: np.ndarray


class BinnedDistance(ThresholdDrift):
    """Distances between binned reference and window distributions."""

    def __init__(
        self,
        threshold: float | None = None,
        bins: int = 10,
        features: Sequence[str] | None = None,
        p_val: float = 0.05,
        correction: str = "bonferroni",
        draws: int | None = None,
    ) -> None:
        super().__init__(threshold=threshold, features=features, p_val=p_val, correction=correction, draws=draws)
        if int(bins) < 2:
            raise ValueError(f"bins must be at least 2, got {bins!r}")
        self.bins = int(bins)

    def _accepts(self, values: np.ndarray) -> bool:
        return True

    def _numeric_state(self, state: Any) -> bool:
        return isinstance(state, Fitted) and state.state.edges is not None

    def _pool(self, state: Binned, values: np.ndarray) -> np.ndarray:
        if state.edges is None:  # categories as integer codes (the distances ignore labels)
            codes = {c: i for i, c in enumerate(state.categories)}
            return np.array([codes[v] for v in values.tolist()], dtype=np.int64)
        v, _ = coerce_float(values)
        return v[~np.isnan(v)]

    def _refit(self, like: Binned, values: np.ndarray) -> Binned:
        return self._categories(values) if like.edges is None else self._numbers(values)

    def _fit_distance(self, values: np.ndarray) -> Binned:
        if is_categorical(values) and not looks_numeric(values):
            return self._categories(values)
        v, _ = coerce_float(values)
        return self._numbers(v[~np.isnan(v)])

    @staticmethod
    def _categories(values: np.ndarray) -> Binned:
        counts = count(values)
        total = sum(counts.values())
        return Binned(None, list(counts), np.array([c / total for c in counts.values()]))

    def _numbers(self, v: np.ndarray) -> Binned:
        edges = np.unique(np.quantile(v, np.linspace(0, 1, self.bins + 1)[1:-1]))
        hist = np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
        return Binned(edges, [], hist / hist.sum())

    def _pair(self, ref: Binned, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(reference probabilities, window probabilities) over the same bins."""
        if ref.edges is None:
            counts = count(x)
            total = max(sum(counts.values()), 1)
            known = set(ref.categories)
            new = [c for c in counts if c not in known]
            p = np.concatenate([ref.probs, np.zeros(len(new))])
            q = np.array([counts.get(c, 0) / total for c in [*ref.categories, *new]])
            return p, q
        xv = x.astype(np.float64)
        hist = np.bincount(np.searchsorted(ref.edges, xv, side="right"), minlength=len(ref.edges) + 1)
        return ref.probs, hist / max(hist.sum(), 1)

    def _distance(self, p: np.ndarray, q: np.ndarray) -> float:
        raise NotImplementedError

    def _distance_to(self, state: Binned, x: np.ndarray) -> float:
        return self._distance(*self._pair(state, x))

"""A window kept as counts instead of values: bounded memory whatever the window's length (private).

A per-feature test against a *fixed* reference needs less of the window than its values:

* a categorical feature: its category counts (the chi-squared and Fisher tables);
* a numerical feature: for each distinct reference value ``e_j``, how many window values are
  below it and how many equal it (:class:`EdgeCounts`, *exact* mode). Between two adjacent
  reference values the reference CDF is flat and the window's CDF only rises, so the
  two-sample Kolmogorov-Smirnov supremum is attained at a reference value or just below one:
  ``D = max_j max(|R(e_j)/m - W(e_j)/n|, |R(e_j-)/m - W(e_j-)/n|)`` with ``R``/``W`` the
  reference/window counts ``<=`` (and ``<`` for ``e_j-``). Every term is the value of
  ``|F_ref - F_window|`` at a pooled point, computed as ``count/m - count/n`` as scipy's
  ``ks_2samp`` computes it, so the statistic, and the p-value from it, are scipy's exactly.

*Binned* mode keeps only the counts below coarser edges (the reference's quantiles, or the
buckets of an Elasticsearch ``range`` aggregation on them): the supremum over those edges is
at most the exact one, so the binned KS statistic is smaller and its p-value larger —
conservative, never more alarms than the exact test, less power for shifts that stay inside
one bin.

Both are monoids: :meth:`EdgeCounts.add` folds a batch in, :meth:`EdgeCounts.merge` adds two
windows' counts, so a window is read in record batches, merged across workers, or filled by
a cluster's aggregations.

>>> ref = np.array([1.0, 2.0, 2.0, 3.0])
>>> w = EdgeCounts.exact(ref).add(np.array([0.5, 2.0, 2.5, 4.0]))
>>> w.n, w.below.tolist(), w.upto.tolist()
(4, [1, 1, 3], [1, 2, 3])
>>> from scipy.stats import ks_2samp
>>> ks_statistic(np.sort(ref), w) == ks_2samp(ref, [0.5, 2.0, 2.5, 4.0]).statistic
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CategoryCounts", "EdgeCounts", "ks_statistic", "quantile_edges"]


def quantile_edges(ref_sorted: np.ndarray, bins: int) -> np.ndarray:
    """At most ``bins - 1`` distinct inner edges at the reference's quantiles (plus its
    minimum, so values below the reference fall in a bin of their own)."""
    q = np.quantile(ref_sorted, np.linspace(0.0, 1.0, bins + 1)[:-1], method="inverted_cdf")
    return np.unique(q)


@dataclass
class EdgeCounts:
    """A numerical window as counts at fixed edges (see the module docstring).

    ``below[j]``: window values ``< edges[j]``; ``upto[j]``: values ``<= edges[j]`` (exact
    mode only, ``None`` in binned mode). A batch is sorted once and the edges (sorted too)
    are located in it, which costs about a third of locating each value among the edges.
    """

    edges: np.ndarray
    below: np.ndarray
    upto: np.ndarray | None
    n: int = 0

    @classmethod
    def exact(cls, ref: np.ndarray) -> EdgeCounts:
        edges = np.unique(np.asarray(ref, dtype=np.float64))
        return cls(edges, np.zeros(len(edges), np.int64), np.zeros(len(edges), np.int64))

    @classmethod
    def binned(cls, edges: np.ndarray) -> EdgeCounts:
        e = np.unique(np.asarray(edges, dtype=np.float64))
        return cls(e, np.zeros(len(e), np.int64), None)

    @property
    def is_binned(self) -> bool:
        return self.upto is None

    def add(self, x: np.ndarray) -> EdgeCounts:
        """Fold in float64 values without ``nan``; returns self."""
        if not len(x):
            return self
        s = np.sort(x)
        self.below += s.searchsorted(self.edges, side="left")
        if self.upto is not None:
            self.upto += s.searchsorted(self.edges, side="right")
        self.n += len(x)
        return self

    def add_cells(self, cells: np.ndarray) -> EdgeCounts:
        """Fold in counts per cell (binned mode): ``cells[0]`` values below ``edges[0]``,
        ``cells[k]`` in ``[edges[k-1], edges[k])``, the last above the last edge — what a
        ``range`` aggregation on the edges answers."""
        c = np.asarray(cells, dtype=np.int64)
        if c.shape != (len(self.edges) + 1,) or self.upto is not None:
            raise ValueError(f"expected {len(self.edges) + 1} binned cells, got {c.shape}")
        self.below += np.cumsum(c)[:-1]
        self.n += int(c.sum())
        return self

    def merge(self, other: EdgeCounts) -> EdgeCounts:
        if not np.array_equal(self.edges, other.edges) or self.is_binned != other.is_binned:
            raise ValueError("can only merge counts at the same edges")
        upto = None if self.upto is None or other.upto is None else self.upto + other.upto
        return EdgeCounts(self.edges, self.below + other.below, upto, self.n + other.n)

    @property
    def tied(self) -> bool:
        """Whether a window value equals an edge (exact mode: a reference value; ties *inside*
        the window at values the reference does not hold are not seen in counts)."""
        return self.upto is not None and bool((self.upto != self.below).any())


def ks_statistic(ref_sorted: np.ndarray, w: EdgeCounts) -> float:
    """The two-sided KS statistic of the counted window against the sorted reference:
    scipy's ``ks_2samp`` statistic in exact mode, its binned lower bound otherwise."""
    m, n = float(len(ref_sorted)), float(w.n)
    if not m or not n:
        return float("nan")
    d = np.abs(ref_sorted.searchsorted(w.edges, side="left") / m - w.below / n).max(initial=0.0)
    if w.upto is not None:
        d = max(d, np.abs(ref_sorted.searchsorted(w.edges, side="right") / m - w.upto / n).max(initial=0.0))
    # above the last edge both CDFs reach 1 at the largest pooled value; below the first
    # edge the reference has nothing and the window's CDF is largest just below it: covered
    return float(d)


@dataclass
class CategoryCounts:
    """A categorical window as category -> count (missing cells excluded)."""

    counts: dict[Any, int] = field(default_factory=dict)

    def add(self, counts: dict[Any, int]) -> CategoryCounts:
        for k, v in counts.items():
            self.counts[k] = self.counts.get(k, 0) + int(v)
        return self

    def merge(self, other: CategoryCounts) -> CategoryCounts:
        return CategoryCounts(dict(self.counts)).add(other.counts)

    @property
    def n(self) -> int:
        return sum(self.counts.values())

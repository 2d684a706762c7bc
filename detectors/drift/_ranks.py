"""Two-sample rank statistics over many features at once (private).

The KS and Cramér-von Mises statistics of a window against a reference depend only on
where each window value falls in the sorted reference. Windows of the features tested
together usually have the same length, so they are sorted as one ``(features, rows)``
array; each row is located in its sorted reference column with one ``searchsorted``
(``side='right'``; the ``'left'`` position is searched only for window values that occur
in the reference), and everything after that is elementwise over the 2-D array.

The arithmetic reproduces scipy's: the KS statistic is the same ``count/n1 - count/n2``
difference at the same pooled point; the CVM rank sums are sums of multiples of 1/4
below 2**50, hence exact in any order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["cvm_statistics", "ks_statistics", "positions", "sorted_windows"]


def sorted_windows(values: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Windows grouped by length: ``(feature indices, sorted (k, m) float64 array)``."""
    lengths = np.array([len(v) for v in values])
    if len(lengths) and (lengths == lengths[0]).all():
        groups = [np.arange(len(values))]
    else:
        groups = [np.flatnonzero(lengths == m) for m in np.unique(lengths)]
    out = []
    for idx in groups:
        w = np.array([values[i] for i in idx], dtype=np.float64).reshape(len(idx), -1)
        w.sort(axis=1)
        out.append((idx, w))
    return out


def positions(refs: Sequence[np.ndarray], w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(right, left)``: per window value, the count of reference values ``<=`` and ``<`` it.

    ``refs[i]`` is the sorted reference of row ``i`` of the sorted window ``w``. Both are
    float64 ``(k, m)`` arrays; ``left is right`` when no window value occurs in its
    reference (the common case for continuous data).
    """
    k, m = w.shape
    right = np.empty((k, m))
    below = np.empty((k, m))  # the reference value just below or at each window value
    for i in range(k):
        r = refs[i]
        pos = r.searchsorted(w[i], side="right")
        right[i] = pos
        pos -= 1  # pos == 0 wraps to r[-1], which is then > the window value
        if len(r):
            r.take(pos, out=below[i])
        else:
            below[i] = np.nan
    tied_rows = np.flatnonzero((below == w).any(axis=1))
    if not len(tied_rows):
        return right, right
    left = right.copy()
    for i in tied_rows:
        left[i] = refs[i].searchsorted(w[i], side="left")
    return right, left


def ks_statistics(n1: np.ndarray, w: np.ndarray, right: np.ndarray, left: np.ndarray) -> np.ndarray:
    """scipy's two-sided ``ks_2samp`` statistic per row: reference sizes ``n1`` (k,), sorted
    windows ``w`` (k, m) and their :func:`positions`."""
    k, m = w.shape
    n1c = np.asarray(n1, dtype=np.float64)[:, None]
    cnt = np.arange(1, m + 1, dtype=np.float64)
    # F_ref - F_x at each window point (right-continuous), as scipy computes it
    diff = right / n1c
    diff -= cnt / m
    # only the last of tied window points carries the true F_x; at the others the
    # difference is too large, which matters for the maximum only
    distinct = w[:, 1:] > w[:, :-1]
    ties = not distinct.all()
    dmax = (np.where(np.c_[distinct, np.ones((k, 1), bool)], diff, -np.inf) if ties else diff).max(axis=1)
    dmin = np.clip(-diff.min(axis=1), 0.0, 1.0)
    # Just before the next distinct window point F_ref is largest while F_x is unchanged;
    # that value is attained at the last reference point below it (diff's buffer reused).
    if m > 1:
        before = np.divide(left[:, 1:], n1c, out=diff[:, :-1])
        before -= cnt[:-1] / m
        if ties:
            before = np.where(distinct, before, -np.inf)
        dmax = np.maximum(dmax, before.max(axis=1))
    dmax = np.maximum(np.maximum(dmax, left[:, 0] / n1c[:, 0] - 0 / m), 0.0)
    return np.where(dmin > dmax, dmin, dmax)


def cvm_statistics(
    n1: np.ndarray, ref_ties: np.ndarray, w: np.ndarray, right: np.ndarray, left: np.ndarray
) -> np.ndarray:
    """scipy's ``cramervonmises_2samp(ref, x)`` statistic per row.

    ``n1`` reference sizes (k,), ``ref_ties`` the reference's sum over distinct values of
    ``(c**3 - c) / 12`` (k,), ``w`` sorted windows (k, m) and their :func:`positions`.
    The pooled midrank of a window value is ``left + before + (right - left + c + 1) / 2``
    (``before`` window values below it, ``c`` equal to it); of a reference value not in
    the window ``i + 1 + (window values below it)``.
    """
    k, m = w.shape
    nx = np.asarray(n1, dtype=np.float64)
    j = np.arange(m, dtype=np.float64)
    a, b = left, right
    # reference values strictly between this window value and the next one
    a_next = np.empty_like(a)
    a_next[:, :-1] = a[:, 1:]
    a_next[:, -1] = nx
    a_next -= b
    between = a_next
    # every product and partial sum below is a multiple of 1/4 under 2**50: exact in any
    # summation order, so dot products (BLAS) give scipy's sums
    half = a + b
    half /= 2
    s_y = np.einsum("ij,ij->i", half, half)
    del half
    distinct = w[:, 1:] > w[:, :-1]
    if distinct.all():
        # no ties within a window: group = one value, before = j, after = j + 1
        s_x = between @ (j + 1) ** 2
        if a is not b:
            s_x += (b - a) @ (j + 0.5) ** 2
    else:
        first = np.ones((k, m), bool)
        first[:, 1:] = distinct
        last = np.ones((k, m), bool)
        last[:, :-1] = distinct
        start = np.maximum.accumulate(np.where(first, j, 0.0), axis=1)
        end = j + 1
        c = end - start
        s_y += np.where(last, (c**3 - c) / 12, 0.0).sum(axis=1)
        s_x = np.where(last, end**2 * between + ((start + end) / 2) ** 2 * (b - a), 0.0).sum(axis=1)
    s_x += ref_ties
    u = nx * s_x + m * s_y
    kk, n = nx * m, nx + m
    return u / (kk * n) - (4 * kk - 1) / (6 * n)

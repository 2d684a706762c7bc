"""``scipy.stats.kstwo.sf`` vectorised over features (private).

scipy evaluates the two-sided one-sample KS distribution one element at a time in Python
(``_ksstats._kolmogn``). For ``n > 140`` (every window of more than ~150 rows against a
larger reference) the common branches are reproduced here operation for operation - the
Pelz-Good series vectorised over features and terms, ``2 * smirnov`` (its exact sum
formed in extended precision all at once rather than term by term), and the Durbin
matrix (small statistics) with its ``n!/n**n`` factor cached per ``n`` - and everything
else (small ``n``, the Ruben-Gambino edges, statistics of 0.5 and more) is handed to
``kstwo.sf`` itself. Results equal scipy's to the last bit or so (tested).
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
from scipy import special
from scipy.stats import kstwo

__all__ = ["kstwo_sf"]

_PI2 = np.pi**2
_PI4 = np.pi**4
_PI6 = np.pi**6
_SQRT2PI = np.sqrt(2 * np.pi)
_SQRT3 = np.sqrt(3)
_MIN_LOG = -708
_E128 = 128
_EP128 = 2.0**_E128
_EM128 = 2.0**-_E128
_MINLOG = -7.08396418532264106224e2  # cephes' MINLOG, log(2**-1022)
# The Smirnov sum is evaluated in extended precision where numpy has it (x86: 80-bit)
_LD = np.longdouble
_LD_OK = np.finfo(_LD).eps < 1e-18
_SMIRNOV_FAST_MAX_N = 10_000


def _pelz_good_cdf(n: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scipy.stats._ksstats._kolmogn_PelzGood(n, x, cdf=True), vectorised.

    The four sums K0..K3 of all features are one (4, features) array; terms beyond a
    feature's own ``maxk`` are exact zeros (Horner on a zero start), so all features run
    the same number of Horner steps without changing any value.
    """
    z = np.sqrt(n) * x
    zsq, zthree, zfour, zsix = z**2, z**3, z**4, z**6
    qlog = -_PI2 / 8 / zsq
    q = np.exp(qlog)
    k1a = -zsq
    k1b = _PI2 / 4
    k2a = 6 * zsix + 2 * zfour
    k2b = (2 * zfour - 5 * zsq) * _PI2 / 4
    k2c = _PI4 * (1 - 2 * zsq) / 16
    k3d = _PI6 * (5 - 30 * zsq) / 64
    k3c = _PI4 * (-60 * zsq + 212 * zfour) / 16
    k3b = _PI2 * (135 * zfour - 96 * zsix) / 4
    k3a = -30 * zsix - 90 * z**8
    maxk = np.ceil(16 * z / np.pi)
    top = int(maxk.max())
    ks = np.arange(top, 0, -1, dtype=np.float64)[:, None]  # Horner runs k = maxk .. 1
    on = ks <= maxk[None, :]
    m = 2 * ks - 1
    msq, mfour, msix = m**2, m**4, m**6
    coeffs = np.stack(
        [
            np.ones_like(msq * z),
            k1a + k1b * msq,
            k2a + k2b * msq + k2c * mfour,
            k3a + k3b * msq + k3c * mfour + k3d * msix,
        ],
        axis=1,
    )  # (top, 4, features)
    coeffs *= on[:, None, :]
    qpower = np.power(q[None, :], 8 * ks)  # (top, features)
    K = np.zeros((4, len(z)))
    for t in range(top):
        K *= qpower[t]
        K += coeffs[t]
    K *= q
    K *= _SQRT2PI
    K /= np.stack([z, 6 * zfour, 72 * z**7, 6480 * z**10])
    q2 = np.exp(-_PI2 / 2 / zsq)
    ksq = ks**2
    qp = np.where(on, q2[None, :] ** ksq, 0.0)
    sqrt3z = _SQRT3 * z
    kspi = np.pi * ks
    k2extra = np.sum(ksq * qp, axis=0)
    k3extra = np.sum((sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp, axis=0)
    K[2] += k2extra * (_PI2 * _SQRT2PI / (-36 * zthree))
    K[3] += k3extra * (_PI2 * _SQRT2PI / (216 * zsix))
    K /= np.power(n[None, :] * 1.0, np.arange(4)[:, None] / 2.0)
    return K[0] + K[1] + K[2] + K[3], qlog


@functools.lru_cache(maxsize=32)
def _nfact_over_npow(n: int) -> tuple[float, int]:
    """``n! / n**n`` as (mantissa, binary exponent), by scipy's running product."""
    p, expnt = 1.0, 0
    for i in range(1, n + 1):
        p = i * p / n
        if abs(p) < _EM128:
            p *= _EP128
            expnt -= _E128
    m, e = np.frexp(p)
    return float(m), int(e) + expnt


def _dmtw_cdf(n: int, d: float) -> float:
    """scipy.stats._ksstats._kolmogn_DMTW(n, d, cdf=True) for 0.5 < n*d and d < 1.

    Same matrix powers as scipy; the final ``n!/n**n`` factor is cached per ``n``
    (scipy multiplies it in one factor at a time), which changes the CDF by a few ulps.
    """
    nd = n * d
    k = int(np.ceil(nd))
    h = k - nd
    m = 2 * k - 1
    H = np.zeros([m, m])
    intm = np.arange(1, m + 1)
    v = 1.0 - h**intm
    w = np.empty(m)
    fac = 1.0
    for j in intm:
        w[j - 1] = fac
        fac /= j
        v[j - 1] *= fac
    tt = max(2 * h - 1.0, 0) ** m - 2 * h**m
    v[-1] = (1.0 + tt) * fac
    for i in range(1, m):
        H[i - 1 :, i] = w[: m - i + 1]
    H[:, 0] = v
    H[-1, :] = np.flip(v, axis=0)
    Hpwr = np.eye(np.shape(H)[0])
    nn = n
    expnt = 0
    Hexpnt = 0
    while nn > 0:
        if nn % 2:
            Hpwr = np.matmul(Hpwr, H)
            expnt += Hexpnt
        H = np.matmul(H, H)
        Hexpnt *= 2
        if np.abs(H[k - 1, k - 1]) > _EP128:
            H /= _EP128
            Hexpnt += _E128
        nn = nn // 2
    p = float(Hpwr[k - 1, k - 1])
    if p == 0.0:
        return 0.0
    fm, fe = _nfact_over_npow(n)
    pm, pe = np.frexp(p)
    return float(np.ldexp(pm * fm, int(pe) + fe + expnt))


def _log_factorials(n: int) -> np.ndarray:
    """``log(i!)`` for ``i = 0..n`` in extended precision.

    Running products (exact to a relative ~n * eps each) of blocks of 1000 factors, then
    one log per entry: the error stays ~1e-16 absolute, unlike a running sum of logs.
    """
    out = np.zeros(n + 1, dtype=_LD)
    carry = _LD(0)
    for lo in range(1, n + 1, 1000):
        hi = min(lo + 1000, n + 1)
        prod = np.cumprod(np.arange(lo, hi, dtype=_LD))
        out[lo:hi] = carry + np.log(prod)
        carry = out[hi - 1]
    return out


@functools.lru_cache(maxsize=4)
def _smirnov_terms(n: int) -> tuple[np.ndarray, ...]:
    """What the terms of :func:`_smirnov_sf` need that depends on ``n`` only (v = 0..n-1)."""
    v = np.arange(0, n, dtype=_LD)
    lf = _log_factorials(n)
    iv = np.arange(0, n)
    log_c = lf[n] - lf[iv] - lf[n - iv]
    return log_c, n - v, (n - v) / n, v / n, v - 1


def _smirnov_sf(n: int, x: float) -> float:
    """``scipy.special.smirnov(n, x)`` for ``1/n < x < 0.5``, ``n <= 10000``, ``2 n x**2 <= 708``.

    The same Birnbaum-Tingey sum as scipy's lower sum, ``x * sum_v C(n, v) (1 - x - v/n)**(n-v)
    (x + v/n)**(v-1)`` over ``0 <= v < n (1 - x)``, with every term formed from logs in
    extended precision and summed at once instead of one term at a time in double-double:
    agrees with scipy to 3e-16 relative up to n = 2000 and 1e-14 at n = 10000 (measured),
    3-4x faster.
    """
    nxfl = math.floor(n * Fraction(x))  # exact floor(n x), as scipy's double-double
    nv = n - nxfl  # v = 0 .. n - nxfl - 1
    log_c, n_v, n_v_over_n, v_over_n, v_1 = (a[:nv] for a in _smirnov_terms(n))
    xl = _LD(x)
    base2 = np.maximum(n_v_over_n - xl, 0)
    with np.errstate(divide="ignore"):
        logs = log_c + n_v * np.log(base2) + v_1 * np.log(xl + v_over_n)
    return float(xl * np.exp(logs).sum())


def _smirnov(n: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``scipy.special.smirnov`` with the fast sum where it applies (see :func:`_smirnov_sf`)."""
    out = np.empty(len(x))
    for i, (ni, xi) in enumerate(zip(n.tolist(), x.tolist(), strict=True)):
        nn = int(ni)
        if (-2 * nn * xi * xi) < _MINLOG:
            out[i] = 0.0
        elif _LD_OK and 140 < nn <= _SMIRNOV_FAST_MAX_N and 1 / nn < xi < 0.5 and nn * xi * xi >= 2.2:
            out[i] = _smirnov_sf(nn, xi)
        else:
            out[i] = special.smirnov(nn, xi)
    return out


def kstwo_sf(d: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Survival function of the two-sided KS statistic ``d`` for sample size ``n``."""
    d = np.asarray(d, float)
    n = np.asarray(n, float)
    out = np.full(d.shape, np.nan)
    t = n * d
    nx2 = t * d
    big = (n > 140) & (d > 0) & (d < 0.5) & (t > 1) & (t < n - 1)
    zero = big & (nx2 >= 370)
    out[zero] = 0.0
    smir = big & (nx2 >= 2.2) & (nx2 < 370)
    if smir.any():
        out[smir] = np.clip(2 * _smirnov(n[smir], d[smir]), 0, 1)
    dmtw = big & (nx2 < 2.2) & (n <= 100000) & (n * d**1.5 <= 1.4)
    pg = big & (nx2 < 2.2) & ~dmtw
    if pg.any():
        cdf, qlog = _pelz_good_cdf(n[pg], d[pg])
        cdf = np.where(qlog < _MIN_LOG, 0.0, cdf)
        out[pg] = np.clip(1.0 - cdf, 0, 1)
    for i in np.flatnonzero(dmtw):
        out[i] = min(max(1.0 - _dmtw_cdf(int(n[i]), float(d[i])), 0.0), 1.0)
    rest = np.isnan(out)
    if rest.any():
        out[rest] = kstwo.sf(d[rest], n[rest])
    return out

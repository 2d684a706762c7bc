"""``scipy.stats.kstwo.sf`` vectorised over features (private).

scipy evaluates the two-sided one-sample KS distribution one element at a time in Python
(``_ksstats._kolmogn``). For ``n > 140`` (every window of more than ~150 rows against a
larger reference) the common branches are reproduced here operation for operation - the
Pelz-Good series vectorised, ``2 * smirnov`` - and everything else (small ``n``, the
Durbin-matrix branch, the Ruben-Gambino edges) is handed to ``kstwo.sf`` itself. Results
equal scipy's to the last bit or so (tested).
"""

from __future__ import annotations

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


def _pelz_good_cdf(n: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scipy.stats._ksstats._kolmogn_PelzGood(n, x, cdf=True), vectorised."""
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
    maxk = np.ceil(16 * z / np.pi).astype(int)
    K = np.zeros((len(z), 4))
    for k in range(int(maxk.max()), 0, -1):
        on = k <= maxk
        m = 2 * k - 1
        msq, mfour, msix = m**2, m**4, m**6
        qpower = np.power(q[on], 8 * k)
        coeffs = np.stack([np.ones(on.sum()), k1a[on] + k1b * msq, k2a[on] + k2b[on] * msq + k2c[on] * mfour,
                           k3a[on] + k3b[on] * msq + k3c[on] * mfour + k3d[on] * msix], axis=1)
        K[on] *= qpower[:, None]
        K[on] += coeffs
    K *= q[:, None]
    K *= _SQRT2PI
    K /= np.stack([z, 6 * zfour, 72 * z**7, 6480 * z**10], axis=1)
    q2 = np.exp(-_PI2 / 2 / zsq)
    k2extra = np.zeros(len(z))
    k3extra = np.zeros(len(z))
    for i in range(len(z)):
        ks = np.arange(maxk[i], 0, -1)
        ksq = ks**2
        sqrt3z = _SQRT3 * z[i]
        kspi = np.pi * ks
        qp = q2[i] ** ksq
        k2extra[i] = np.sum(ksq * qp)
        k3extra[i] = np.sum((sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp)
    K[:, 2] += k2extra * (_PI2 * _SQRT2PI / (-36 * zthree))
    K[:, 3] += k3extra * (_PI2 * _SQRT2PI / (216 * zsix))
    K /= np.power(n[:, None] * 1.0, np.arange(4) / 2.0)
    return K[:, 0] + K[:, 1] + K[:, 2] + K[:, 3], qlog


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
    out[smir] = np.clip(2 * special.smirnov(n[smir], d[smir]), 0, 1)
    pg = big & (nx2 < 2.2) & ~((n <= 100000) & (n * d**1.5 <= 1.4))
    if pg.any():
        cdf, qlog = _pelz_good_cdf(n[pg], d[pg])
        cdf = np.where(qlog < _MIN_LOG, 0.0, cdf)
        out[pg] = np.clip(1.0 - cdf, 0, 1)
    rest = np.isnan(out)
    if rest.any():
        out[rest] = kstwo.sf(d[rest], n[rest])
    return out

"""Maximum Mean Discrepancy drift test with a permutation p-value (multivariate).

As alibi-detect's ``MMDDrift``: Gaussian RBF kernel ``exp(-|x-y|^2 / (2 sigma^2))`` with
``sigma`` from the median heuristic on the reference (``sqrt(median pairwise squared
distance / 2)``, alibi's ``sigma_median``), the unbiased MMD^2 (zero kernel diagonal), and
``p = mean(MMD^2 <= MMD^2 of each permutation)`` over ``n_permutations`` random splits of the
pooled sample. Faster: the reference kernel matrix and its products with the permutation
indicators are computed once at ``fit`` (the permutations are drawn once per window size
from ``seed``), so a window costs two kernel blocks and two matrix products instead of
``n_permutations`` re-indexings of the pooled kernel matrix. ``max_reference`` caps the
reference rows kept (a seeded random subsample).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = {"a": rng.normal(size=300).tolist(), "b": rng.normal(size=300).tolist()}
>>> det = MMDDrift(n_permutations=100).fit(ref)
>>> det.update({"a": rng.normal(0.8, size=100).tolist(), "b": rng.normal(size=100).tolist()}).result().is_drift
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.common._data import probability
from detectors.common._windowed import ReferenceSampleDetector
from detectors.common.state import ColumnBuffer
from inferwatch.record import Detection

__all__ = ["MMDDrift", "sigma_median", "sq_dists"]


def sq_dists(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances."""
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.maximum(d, 0.0)


def sigma_median(x: np.ndarray) -> float:
    """alibi-detect's ``sigma_median(x, x, dist)`` bandwidth."""
    d = sq_dists(x, x)
    n = len(x)
    k = n + (d.size - n) // 2 - 1
    med = float(np.partition(d.ravel(), k)[k])
    sigma = (0.5 * med) ** 0.5
    return sigma if sigma > 0 else 1.0


class MMDDrift(ReferenceSampleDetector):
    """Parameters: ``p_val``, ``n_permutations``, ``sigma`` (default: median heuristic),
    ``features`` (default: all numerical columns), ``max_reference``, ``seed``."""

    name = "mmd"

    def __init__(
        self,
        p_val: float = 0.05,
        n_permutations: int = 100,
        sigma: float | None = None,
        features: Sequence[str] | None = None,
        max_reference: int = 5000,
        seed: int = 0,
    ) -> None:
        super().__init__(features, max_reference, seed)
        if int(n_permutations) < 1:
            raise ValueError(f"n_permutations must be positive, got {n_permutations!r}")
        self.p_val = probability("p_val", p_val)
        self.n_permutations = int(n_permutations)
        self.sigma = sigma
        self._sigma = 1.0
        self._k_rr = np.empty((0, 0))
        self._perm_cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _kernel(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.exp(-sq_dists(x, y) / (2.0 * self._sigma**2))

    def _fit_reference(self, x: np.ndarray) -> None:
        self._sigma = float(self.sigma) if self.sigma is not None else sigma_median(x)
        k = self._kernel(x, x)
        np.fill_diagonal(k, 0.0)
        self._k_rr = k
        self._perm_cache = {}

    def _perms(self, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Permutation indicators for a window of ``m`` rows: (z_ref, z_win, z_ref' K_rr z_ref)."""
        if m not in self._perm_cache:
            n = len(self._x_ref)
            rng = np.random.default_rng([self.seed, m])
            z = np.zeros((n + m, self.n_permutations))
            for p in range(self.n_permutations):
                z[rng.permutation(n + m)[-m:], p] = 1.0
            z_r, z_x = z[:n], z[n:]
            q_rr = np.einsum("ip,ip->p", z_r, self._k_rr @ z_r)
            if len(self._perm_cache) > 8:
                self._perm_cache.clear()
            self._perm_cache[m] = (z_r, z_x, q_rr)
        return self._perm_cache[m]

    def _result(self, window: ColumnBuffer) -> Detection:
        det = self._detection()
        det.threshold = self.p_val
        m = window.n_rows
        if m < 2:
            return det
        y = self._window_matrix(window, det)
        if y is None:
            return det
        n = len(self._x_ref)
        k_xr = self._kernel(y, self._x_ref)  # m x n
        k_xx = self._kernel(y, y)
        np.fill_diagonal(k_xx, 0.0)
        # row sums of the pooled kernel matrix [[K_rr, K_rx], [K_xr, K_xx]]
        r_ref = self._k_rr.sum(1) + k_xr.sum(0)
        r_win = k_xr.sum(1) + k_xx.sum(1)
        total = float(r_ref.sum() + r_win.sum())

        def mmd2(ztz: np.ndarray, ztr: np.ndarray) -> np.ndarray:
            s_yy = ztz
            s_xy = ztr - ztz
            s_xx = total - 2.0 * ztr + ztz
            return s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2.0 * s_xy / (n * m)

        observed = float(mmd2(np.array([k_xx.sum()]), np.array([r_win.sum()]))[0])
        z_r, z_x, q_rr = self._perms(m)
        cross = np.einsum("ip,ip->p", z_x, k_xr @ z_r)  # z_x' K_xr z_r
        q_xx = np.einsum("ip,ip->p", z_x, k_xx @ z_x)
        ztz = q_rr + 2.0 * cross + q_xx
        ztr = z_r.T @ r_ref + z_x.T @ r_win
        permuted = mmd2(ztz, ztr)
        p = float((observed <= permuted).mean())
        det.p_value = p
        det.is_drift = p < self.p_val
        det.distance = observed
        det.extra["distance_threshold"] = float(np.sort(permuted)[::-1][int(self.p_val * len(permuted))])
        det.extra["sigma"] = self._sigma
        return det

"""Seed sweeps: every ``numpy.random.default_rng(seed)`` of a test run shifted by one number.

``INFERWATCH_SEED_SWEEP=k`` (bench/seed_sweep.py sets it) makes ``default_rng(s)`` return
``default_rng([*s, TAG, k])`` for every explicit seed ``s`` in the tests *and* in the code under
test (reservoir draws, permutation and bootstrap seeds), so one run of the suite with ``k`` sees
other data and other draws than the fixed seeds everybody runs. A statistical assertion
designed for its false-failure probability passes for (almost) every ``k``; one that holds only
for a lucky seed shows up. Unset (the default): nothing is patched.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["install_from_env", "sweep_seed"]

_TAG = 0x5EED
_original = np.random.default_rng


def sweep_seed() -> int | None:
    raw = os.environ.get("INFERWATCH_SEED_SWEEP", "").strip()
    if not raw:
        return None
    value = int(raw)  # a typo is an error, not a silent unswept run
    if value < 0:
        raise ValueError(f"INFERWATCH_SEED_SWEEP must be >= 0, got {raw!r}")
    return value


def _shifted(k: int) -> Any:
    def default_rng(seed: Any = None) -> np.random.Generator:
        if seed is None or isinstance(seed, np.random.SeedSequence | np.random.BitGenerator | np.random.Generator):
            return _original(seed)
        entropy = [int(v) for v in np.atleast_1d(np.asarray(seed, dtype=object)).tolist()]
        return _original([*entropy, _TAG, k])

    return default_rng


def install_from_env() -> int | None:
    """Patch ``numpy.random.default_rng`` when ``INFERWATCH_SEED_SWEEP`` is set; returns ``k``."""
    k = sweep_seed()
    if k is not None:
        np.random.default_rng = _shifted(k)
    return k

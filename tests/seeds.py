"""Seed sweeps: every explicit seed of a test run shifted by one number.

``INFERWATCH_SEED_SWEEP=k`` (bench/seed_sweep.py sets it) derives every explicitly seeded random
stream from ``(seed, TAG, k)`` instead of ``seed``, in the tests *and* in the code under test:

- numpy: ``default_rng(s)`` (reservoir draws, permutation and bootstrap seeds, test data),
  ``RandomState(s)`` — which is what scikit-learn's and scipy's ``random_state=<int>`` become
  (``check_random_state``: isolation forests, MinCovDet, gradient boosting, shuffled folds) —
  and the legacy global ``np.random.seed(s)``;
- the standard library: ``random.Random(s)``, ``random.seed(s)`` and ``rng.seed(s)``;
- unseeded global streams (numpy's and ``random``'s global state, torch's default generator,
  which starts from a fixed seed in every process) are seeded per test from ``(k, test id)`` by
  :func:`reseed_globals` (an autouse fixture in tests/conftest.py), so a swept run is as
  reproducible as a normal one but sees other draws.

So one run of the suite with ``k`` sees other data and other draws than the fixed seeds everybody
runs. A statistical assertion designed for its false-failure probability passes for (almost)
every ``k``; one that holds only for a lucky seed shows up. Unset (the default): nothing is
patched. Hypothesis draws its own examples (random locally, derandomized in CI:
tests/conftest.py); bench/seed_sweep.py passes ``--hypothesis-seed=k`` for those.

``INFERWATCH_SEED_RECORD=path`` (with a sweep) appends the id of every test that creates a
seeded stream, or an unseeded numpy one, to ``path``: how bench/seed_sweep.py finds the tests
whose outcome can depend on chance. Subprocesses (``inferwatch demo --seed 3`` in a test) get
the same patches through bench/sweep_site/sitecustomize.py, which the sweep puts on PYTHONPATH.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import random
import sys
from typing import Any

import numpy as np

__all__ = ["install_from_env", "reseed_globals", "swept", "sweep_seed"]

_TAG = 0x5EED
_original_default_rng = np.random.default_rng
_OriginalRandomState = np.random.RandomState
_original_np_seed = np.random.seed
_original_py_seed = random.Random.seed

_record_path: str | None = None
_recorded: set[str] = set()


def sweep_seed() -> int | None:
    raw = os.environ.get("INFERWATCH_SEED_SWEEP", "").strip()
    if not raw:
        return None
    value = int(raw)  # a typo is an error, not a silent unswept run
    if value < 0:
        raise ValueError(f"INFERWATCH_SEED_SWEEP must be >= 0, got {raw!r}")
    return value


def swept(seed: int) -> int:
    """``seed`` itself, or during a sweep one derived from ``(seed, TAG, k)``: for the seeds that
    reach no generator above (a window's reservoir draws are a hash of its pane key, which a
    test picks through the time it adds rows at)."""
    k = sweep_seed()
    if k is None:
        return seed
    _record()
    return int(_words([abs(seed)], k, 1)[0])


def _record() -> None:
    if _record_path is None:
        return
    current = os.environ.get("PYTEST_CURRENT_TEST")
    if current:
        _recorded.add(current.rsplit(" (", 1)[0])


def _flush_record() -> None:
    if _record_path is not None and _recorded:
        with open(_record_path, "a", encoding="utf-8") as f:
            f.writelines(f"{name}\n" for name in sorted(_recorded))
        _recorded.clear()


def _entropy(seed: Any) -> list[int] | None:
    """The non-negative integers of an integer seed (or sequence of them); None otherwise."""
    try:
        values = np.atleast_1d(np.asarray(seed, dtype=object)).tolist()
    except (TypeError, ValueError):
        return None
    if not values or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        return None
    return [abs(int(v)) for v in values]


def _words(entropy: list[int], k: int, n: int = 4) -> np.ndarray:
    """``n`` 32-bit words from ``(entropy, TAG, k)``: a seed for the legacy generators."""
    return np.random.SeedSequence([*entropy, _TAG, k]).generate_state(n, np.uint32)


class _AnyRandomState(type):
    """Instances of the original class count as instances of the shifted one (isinstance checks
    in scikit-learn and scipy see the name ``np.random.RandomState``)."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, _OriginalRandomState)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, _OriginalRandomState)


def _install(k: int) -> None:
    def default_rng(seed: Any = None) -> np.random.Generator:
        if isinstance(seed, np.random.SeedSequence | np.random.BitGenerator | np.random.Generator):
            return _original_default_rng(seed)
        _record()
        entropy = None if seed is None else _entropy(seed)
        if entropy is None:
            return _original_default_rng(seed)
        return _original_default_rng([*entropy, _TAG, k])

    class RandomState(_OriginalRandomState, metaclass=_AnyRandomState):  # type: ignore[misc]
        def __init__(self, seed: Any = None) -> None:
            if isinstance(seed, np.random.BitGenerator):
                super().__init__(seed)
                return
            _record()
            entropy = None if seed is None else _entropy(seed)
            super().__init__(seed if entropy is None else _words(entropy, k))

        def seed(self, seed: Any = None) -> None:
            entropy = None if seed is None else _entropy(seed)
            if entropy is not None:
                _record()
            super().seed(seed if entropy is None else _words(entropy, k))

    def np_seed(seed: Any = None) -> None:
        entropy = None if seed is None else _entropy(seed)
        if entropy is not None:
            _record()
        _original_np_seed(seed if entropy is None else _words(entropy, k))

    def py_seed(self: random.Random, a: Any = None, version: int = 2) -> None:
        if isinstance(a, int) and not isinstance(a, bool):
            _record()
            a = int.from_bytes(_words([abs(a)], k, 8).tobytes(), "little")
        elif isinstance(a, str | bytes | bytearray):
            _record()
            a = hashlib.sha512(bytes(a, "utf-8") if isinstance(a, str) else bytes(a)).hexdigest() + f"/{_TAG}/{k}"
        _original_py_seed(self, a, version)

    np.random.default_rng = default_rng
    np.random.RandomState = RandomState  # type: ignore[misc]
    np.random.seed = np_seed
    random.Random.seed = py_seed  # type: ignore[method-assign]
    random.seed = random._inst.seed  # type: ignore[attr-defined]  # re-bound: the module's function is the old bound method


def reseed_globals(test_id: str) -> None:
    """Seed the global streams (numpy's, ``random``'s, torch's default generator if torch is
    loaded) from ``(k, test_id)`` during a sweep; nothing otherwise."""
    k = sweep_seed()
    if k is None:
        return
    digest = int.from_bytes(hashlib.sha256(test_id.encode()).digest()[:8], "little")
    words = _words([digest], k)
    _original_np_seed(words)
    _original_py_seed(random._inst, int.from_bytes(words.tobytes(), "little"))  # type: ignore[attr-defined]
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(int(words[0]) << 32 | int(words[1]))


def install_from_env() -> int | None:
    """Patch the seeded constructors when ``INFERWATCH_SEED_SWEEP`` is set; returns ``k``."""
    global _record_path
    k = sweep_seed()
    if k is None or getattr(np.random.default_rng, "_inferwatch_sweep", None) is not None:
        return k
    _install(k)
    np.random.default_rng._inferwatch_sweep = k  # type: ignore[attr-defined]
    _record_path = os.environ.get("INFERWATCH_SEED_RECORD") or None
    if _record_path is not None:
        atexit.register(_flush_record)
    return k

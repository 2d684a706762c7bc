"""Environment flags parsed strictly, and optional extras that fail in CI instead of skipping."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_flag(name: str, environ: dict[str, str] | None = None) -> bool:
    """``1/true/yes/on`` -> True, ``0/false/no/off`` or empty/unset -> False (any case);
    anything else raises, so ``CI=flase`` is an error rather than a silent true.

    >>> env_flag("CI", {"CI": "false"}), env_flag("CI", {"CI": "True"}), env_flag("CI", {})
    (False, True, False)
    """
    raw = (os.environ if environ is None else environ).get(name, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"environment variable {name}={raw!r}: expected one of 1/true/yes/on or 0/false/no/off/empty")


def in_ci() -> bool:
    return env_flag("CI")


def missing(message: str) -> None:
    """What a test does when something it needs is not on this machine: skip locally, fail in CI
    (``make test`` installs it there, so a skip would hide a check)."""
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``; when it is missing, skip locally but fail in CI (the extra that
    provides it is installed there, so a skip would hide a check)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing(f"{module} missing: install the {extra!r} extra ({exc})")
        raise  # not reached: missing() skips or fails

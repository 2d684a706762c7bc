"""Shared fixtures of the whole suite (unit and integration)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from inferwatch.config import Config, load_config
from tests.optional import in_ci
from tests.seeds import install_from_env, reseed_globals

# One protobuf implementation for the whole run, fixed before anything imports protobuf: the old
# generated modules of seldon-core and kserve (tests/realclients.py) need the pure-Python one, and
# whichever module imports protobuf first (e.g. the compiled Open Inference Protocol messages in
# collectors/oip_proto, imported by a test module at collection) would otherwise choose for everyone.
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")


# Hypothesis: a fixed, derandomized profile in CI (the same examples every run, so a red CI run is
# reproducible and a green one is not luck); the default random profile locally. CI is parsed
# strictly (tests/optional.py): CI=false is false, a typo is an error.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
if in_ci():
    settings.load_profile("ci")

# bench/seed_sweep.py: the same tests with every seed shifted (tests/seeds.py)
_SWEEP = install_from_env()


@pytest.fixture(autouse=True)
def _sweep_global_streams(request: pytest.FixtureRequest) -> None:
    """During a seed sweep, numpy's, random's and torch's global streams seeded per test."""
    if _SWEEP is not None:
        reseed_globals(request.node.nodeid)


@pytest.fixture
def embedded_config(tmp_path: Path) -> Config:
    """An embedded (SQLite) configuration in a fresh folder, collector on a free port."""
    return load_config(None, env={}, overrides={"data_dir": str(tmp_path / "data"), "collector.port": 0})

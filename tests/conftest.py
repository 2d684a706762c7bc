"""Shared fixtures of the whole suite (unit and integration)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inferwatch.config import Config, load_config

# One protobuf implementation for the whole run, fixed before anything imports protobuf: the old
# generated modules of seldon-core and kserve (tests/realclients.py) need the pure-Python one, and
# whichever module imports protobuf first (e.g. the compiled Open Inference Protocol messages in
# collectors/oip_proto, imported by a test module at collection) would otherwise choose for everyone.
os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")


@pytest.fixture
def embedded_config(tmp_path: Path) -> Config:
    """An embedded (SQLite) configuration in a fresh folder, collector on a free port."""
    return load_config(None, env={}, overrides={"data_dir": str(tmp_path / "data"), "collector.port": 0})

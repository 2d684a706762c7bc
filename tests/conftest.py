"""Shared fixtures of the whole suite (unit and integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferwatch.config import Config, load_config


@pytest.fixture
def embedded_config(tmp_path: Path) -> Config:
    """An embedded (SQLite) configuration in a fresh folder, collector on a free port."""
    return load_config(None, env={}, overrides={"data_dir": str(tmp_path / "data"), "collector.port": 0})

"""A running collector + audit pipeline (SQLite log and store, a free port) and an HTTP client for
it: what the collector's end-to-end unit tests start, as the fixtures ``pipe`` and ``client``::

    pipe, client = collector_fixtures({"collector.max_body_bytes": 100_000}, timeout=10)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferwatch.config import load_config
from inferwatch.pipeline import Pipeline


@contextmanager
def collector_pipeline(tmp_path: Path, **overrides: Any) -> Iterator[Pipeline]:
    """The collector and audit roles on a fresh data directory; ``overrides`` are config keys
    (``{"collector.max_body_bytes": 100_000}``)."""
    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path / "d"), "collector.port": 0, **overrides})
    p = Pipeline(cfg, ["collector", "audit"])
    p.start()
    try:
        yield p
    finally:
        p.stop()


@contextmanager
def collector_client(pipe: Pipeline, timeout: float) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{pipe.bound_port}", timeout=timeout) as c:
        yield c


def collector_fixtures(overrides: dict[str, Any], timeout: float) -> tuple[Any, Any]:
    """The fixtures ``pipe`` (the running pipeline) and ``client`` (an HTTP client to its collector)."""

    @pytest.fixture
    def pipe(tmp_path: Path) -> Iterator[Pipeline]:
        with collector_pipeline(tmp_path, **overrides) as p:
            yield p

    @pytest.fixture
    def client(pipe: Pipeline) -> Iterator[httpx.Client]:
        with collector_client(pipe, timeout) as c:
            yield c

    return pipe, client

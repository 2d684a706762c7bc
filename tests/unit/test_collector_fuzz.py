"""The short fuzz run of ``make test``: generated deliveries of every kind against the in-process
collector, every answer checked by the oracle of tests/fuzzing.py (the long campaign is
bench/fuzz_collector.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from inferwatch.config import load_config
from tests.fuzzing import Delivery, Harness, batches, binary_events, deliveries, records, structured_events

MB = 1 << 20


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    logging.getLogger("inferwatch").setLevel(logging.CRITICAL)
    cfg = load_config(None, env={}, overrides={"data_dir": str(tmp_path_factory.mktemp("fuzz")),
                                               "collector.port": 0, "collector.max_body_bytes": MB})
    loop = asyncio.new_event_loop()
    # a request using 5 s of this process's CPU is a hang; wall-clock time is not asserted (on a
    # shared machine it includes time the process was not scheduled): bench/fuzz_collector.py
    # reports the slowest answers
    h = Harness(cfg, max_seconds=5.0)
    yield h, loop
    loop.run_until_complete(h.aclose())
    loop.close()
    logging.getLogger("inferwatch").setLevel(logging.NOTSET)


def _check(h: Harness) -> None:
    t = h.tally
    assert not t.crashes, t.crashes[:3]
    assert not t.cpu_hangs, t.cpu_hangs[:3]
    assert not t.violations, t.violations[:3]


@pytest.mark.parametrize("strategy", [binary_events(), structured_events(), batches(), records(), deliveries],
                         ids=["binary", "structured", "batch", "records", "any"])
def test_every_delivery_is_answered_by_the_oracle(harness, strategy):
    h, loop = harness

    @settings(max_examples=60, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def send(d: Delivery) -> None:
        loop.run_until_complete(h.send(d))

    send()
    _check(h)

"""The shipper under a dead destination: bounded, never blocking, every drop counted and logged,
everything kept sent in order once the destination is back (also after a restart)."""

from __future__ import annotations

import logging
import threading

import pytest

from inferwatch.shipper import ShipMetrics, Shipper
from tests.waiting import wait_until


class Destination:
    def __init__(self) -> None:
        self.up = False
        self.got: list[bytes] = []

    def send(self, items):
        if not self.up:
            raise ConnectionError("down")
        self.got += [v for _, _, v in items]


def encode(batch):
    return [("t", b"k", v) for v in batch]


def _dropped(m: ShipMetrics, reason: str) -> float:
    return m.registry.get_sample_value("inferwatch_ship_dropped_total", {"source": "test", "reason": reason}) or 0.0


def test_a_full_spool_drops_counted_and_logged_then_drains_in_order(tmp_path, caplog):
    dest, m = Destination(), ShipMetrics()
    # each item is 1 (key) + 99 bytes: ten fit in 1000 bytes
    s = Shipper(encode, dest.send, tmp_path / "s.db", source="test", spool_max_bytes=1000, metrics=m,
                max_backoff_s=0.05).start()
    values = [f"{i:03d}".encode() * 33 for i in range(40)]
    with caplog.at_level(logging.ERROR, logger="inferwatch.shipper"):
        for v in values:
            assert s.submit(v)
        wait_until(lambda: s.pending() == len(s.spool), 10, "the writer to spool what fits", every=0.01)
    assert len(s.spool) == 10 and s.dropped == 30 and _dropped(m, "spool_full") == 30
    assert any("spool_full" in r.getMessage() for r in caplog.records)
    assert m.registry.get_sample_value("inferwatch_ship_send_failures_total", {"source": "test"}) >= 1
    dest.up = True
    assert s.flush(10)
    assert dest.got == values[:10]
    s.close()


def test_a_full_queue_never_blocks_and_counts(tmp_path):
    gate = threading.Event()

    def slow_encode(batch):
        gate.wait(10)
        return encode(batch)

    dest, m = Destination(), ShipMetrics()
    dest.up = True
    s = Shipper(slow_encode, dest.send, tmp_path / "s.db", source="test", max_queue=5, batch=1, metrics=m).start()
    accepted = [s.submit(b"x%d" % i) for i in range(20)]  # the writer holds one, the queue five
    assert accepted.count(False) >= 14 and _dropped(m, "queue_full") == accepted.count(False)
    gate.set()
    assert s.flush(10)
    assert len(dest.got) == accepted.count(True)
    s.close()


def test_what_is_spooled_survives_a_restart(tmp_path):
    dest = Destination()
    s = Shipper(encode, dest.send, tmp_path / "s.db", source="test", max_backoff_s=0.05).start()
    for i in range(5):
        s.submit(b"v%d" % i)
    wait_until(lambda: len(s.spool) == 5, 10, "the spool", every=0.01)
    assert not s.close(timeout=0.2)
    dest.up = True
    s2 = Shipper(encode, dest.send, tmp_path / "s.db", source="test").start()
    assert s2.flush(10) and dest.got == [b"v%d" % i for i in range(5)]
    s2.close()


def test_an_encoder_bug_is_counted_not_fatal(tmp_path):
    calls = []

    def flaky(batch):
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return encode(batch)

    dest, m = Destination(), ShipMetrics()
    dest.up = True
    s = Shipper(flaky, dest.send, tmp_path / "s.db", source="test", batch=1, metrics=m).start()
    s.submit(b"a")
    wait_until(lambda: s.dropped == 1, 10, "the drop", every=0.01)
    s.submit(b"b")
    assert s.flush(10) and dest.got == [b"b"] and _dropped(m, "encode_error") == 1
    s.close()


def test_decorator_logs_errors_and_reraises(tmp_path):
    from inferwatch import sdk

    logged = []

    class Fake:
        def log(self, *args, **kwargs):
            logged.append((args, kwargs))

    @sdk.monitor(model="m", client=Fake())  # type: ignore[arg-type]
    def predict(x):
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        predict([1, 2])
    (args, kwargs), = logged
    assert args == ([1, 2],) and kwargs["outputs"] == {} and "bad input" in kwargs["meta"]["error"]

"""Admission bounds and the log breaker."""

from __future__ import annotations

import threading
import time

import pytest

from inferwatch.admission import Admission, Breaker, Overloaded


def test_bounds_hold_under_concurrent_admission() -> None:
    adm = Admission(max_requests=8, max_bytes=1000, retry_after_s=2)
    peak = {"requests": 0, "bytes": 0}
    lock = threading.Lock()
    refused = []

    def client(n: int) -> None:
        for _ in range(200):
            try:
                t = adm.admit(50 + n)
            except Overloaded as exc:
                refused.append(exc.retry_after)
                continue
            with t:
                with lock:
                    peak["requests"] = max(peak["requests"], adm.requests)
                    peak["bytes"] = max(peak["bytes"], adm.bytes)
                try:
                    t.grow(10)
                except Overloaded as exc:
                    refused.append(exc.retry_after)
                time.sleep(0.001)  # hold the share a little, so that the clients overlap

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert adm.requests == 0 and adm.bytes == 0
    assert peak["requests"] <= 8 and peak["bytes"] <= 1000
    assert refused and set(refused) == {2} and adm.refused == len(refused)


def test_growing_past_the_byte_bound_is_refused_and_releases_cleanly() -> None:
    adm = Admission(max_requests=4, max_bytes=100)
    a = adm.admit(0)
    b = adm.admit(0)
    a.grow(90)
    with pytest.raises(Overloaded):
        b.grow(20)
    b.release()
    a.release()
    a.release()  # idempotent
    assert (adm.requests, adm.bytes) == (0, 0)


def test_one_large_request_alone_is_admitted() -> None:
    adm = Admission(max_requests=4, max_bytes=100)
    with adm.admit(500), pytest.raises(Overloaded):
        adm.admit(1)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_breaker_probes_one_at_a_time_and_closes_on_success() -> None:
    clock = Clock()
    br = Breaker(probe_interval_s=1.0, clock=clock)
    assert br.allow() and not br.open
    br.failure(OSError("down"))
    assert br.open and not br.allow()
    clock.t = 1.0
    assert br.allow()  # the probe
    assert not br.allow()  # only one at a time
    br.failure("still down")
    clock.t = 1.5
    assert not br.allow()
    clock.t = 2.0
    assert br.allow() and br.down_for_s == 2.0
    br.success()
    assert not br.open and br.allow() and br.allow()

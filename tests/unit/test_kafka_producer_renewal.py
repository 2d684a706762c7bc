"""After a long broker outage kafka-python's producer stayed disconnected for good (the fault
suite's five-minute Kafka outage: every append timed out while new clients worked). An append
that fails or is not acknowledged within ``kafka.append_timeout_s`` now drops the producer, and
the next append makes a new one. Checked here with a stand-in for the client's producer class."""

from __future__ import annotations

from typing import Any

import kafka
import pytest

from inferwatch.config import KafkaConfig
from inferwatch.errors import LogError
from inferwatch.kafka_log import KafkaLog


class _Future:
    def __init__(self, ok: bool):
        self.ok = ok

    def get(self, timeout: float | None = None) -> Any:
        if not self.ok:
            raise kafka.errors.KafkaTimeoutError("not acknowledged")
        return None


class _Producer:
    made: list[_Producer] = []
    stuck = True

    def __init__(self, **kwargs: Any):
        self.kwargs = kwargs
        self.sent: list[tuple[str, bytes]] = []
        self.closed = False
        self.stuck = _Producer.stuck
        _Producer.made.append(self)

    def send(self, topic: str, key: bytes | None = None, value: bytes = b"") -> _Future:
        assert not self.closed, "KafkaProducer already closed!"
        self.sent.append((topic, value))
        return _Future(not self.stuck)

    def flush(self, timeout: float | None = None) -> None:
        self.flush_timeout = timeout
        if self.stuck:
            raise kafka.errors.KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def test_a_producer_that_cannot_deliver_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka, "KafkaProducer", _Producer)
    _Producer.made.clear()
    _Producer.stuck = True
    lg = KafkaLog(KafkaConfig(append_timeout_s=7.5))
    with pytest.raises(LogError, match="append to 't' failed"):
        lg.append("t", [(b"k", b"v1")])
    first = _Producer.made[0]
    assert first.flush_timeout == 7.5 and first.closed  # bounded wait, then dropped
    with pytest.raises(LogError):
        lg.append("t", [(b"k", b"v2")])  # a new producer (stuck as well)
    assert len(_Producer.made) == 2
    _Producer.stuck = False
    lg.append("t", [(b"k", b"v3")])  # the broker is back: the third producer delivers
    assert len(_Producer.made) == 3 and _Producer.made[2].sent == [("t", b"v3")]
    lg.append("t", [(b"k", b"v4")])  # and is kept while it works
    assert len(_Producer.made) == 3 and not _Producer.made[2].closed
    assert _Producer.made[2].kwargs["enable_idempotence"] is True

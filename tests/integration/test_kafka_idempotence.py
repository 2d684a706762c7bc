"""The log's Kafka producer is idempotent with every setting that idempotence needs, and the
consumer groups use static membership when configured (checked on the real client objects)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from inferwatch.config import load_config
from inferwatch.kafka_log import KafkaLog

pytestmark = pytest.mark.integration


def test_producer_settings_make_retries_idempotent(stack_env: dict[str, str], require_service: Callable[[str], None],
                                                   kafka_topic: str) -> None:
    require_service("kafka")
    cfg = load_config(None, env={**stack_env, "INFERWATCH_KAFKA_GROUP_INSTANCE_ID": "member-7"})
    lg = KafkaLog(cfg.kafka)
    try:
        lg.append(kafka_topic, [(b"k", b"v")])
        c = lg.producer.config
        assert c["enable_idempotence"] is True
        assert c["acks"] in (-1, "all")  # every in-sync replica
        assert c["retries"] >= 2**31 - 1  # retried until the delivery timeout, never dropped early
        assert c["max_in_flight_requests_per_connection"] <= 5  # what keeps order under idempotence
        consumer = lg.consumer(kafka_topic, f"g-{kafka_topic}")
        try:
            kc = consumer._consumer.config  # type: ignore[attr-defined]
            assert kc["group_instance_id"] == f"member-7.g-{kafka_topic}"
            assert kc["session_timeout_ms"] == cfg.kafka.session_timeout_ms == 10_000
            assert kc["enable_auto_commit"] is False
        finally:
            consumer.close()
    finally:
        lg.close()

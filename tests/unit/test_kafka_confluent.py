"""``kafka.client``: choosing the Kafka client library of the log's consumers, and the
connection settings librdkafka gets (the broker round trips are in
tests/integration/test_kafka_log.py and test_secure_stack.py, over both clients)."""

from __future__ import annotations

import pytest

from inferwatch.config import KafkaConfig, load_config
from inferwatch.errors import ConfigError
from inferwatch.kafka_confluent import confluent_config
from tests.optional import require


def test_the_client_is_chosen_by_config_or_environment():
    assert load_config(None, env={}).kafka.client == "kafka-python"
    assert load_config(None, env={"INFERWATCH_KAFKA_CLIENT": "confluent"}).kafka.client == "confluent"
    with pytest.raises(ConfigError, match=r"kafka\.client"):
        load_config(None, env={"INFERWATCH_KAFKA_CLIENT": "librdkafka"})


def test_security_settings_reach_librdkafka_under_its_names():
    """Every SASL/TLS setting kafka-python gets is given to librdkafka too; librdkafka itself
    accepts the names and values (it refuses unknown properties when the client is made)."""
    confluent_kafka = require("confluent_kafka", extra="confluent")  # skips locally, fails in CI
    cfg = KafkaConfig(bootstrap_servers="127.0.0.1:1,127.0.0.1:2", client_id="iw-test",
                      security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                      sasl_username="alice", sasl_password="s3cret")
    conf = confluent_config(cfg)
    assert conf == {"bootstrap.servers": "127.0.0.1:1,127.0.0.1:2", "client.id": "iw-test",
                    "security.protocol": "sasl_plaintext", "sasl.mechanism": "SCRAM-SHA-256",
                    "sasl.username": "alice", "sasl.password": "s3cret"}
    consumer = confluent_kafka.Consumer({**conf, "group.id": "g"})
    consumer.close()
    with pytest.raises(confluent_kafka.KafkaException):  # the check above could fail: a wrong name is refused
        confluent_kafka.Consumer({**conf, "group.id": "g", "sasl.user": "alice"})
    tls = confluent_config(KafkaConfig(security_protocol="SSL", ssl_cafile="/ca.pem", ssl_certfile="/c.pem",
                                       ssl_keyfile="/k.pem"))
    assert {k: tls[k] for k in ("security.protocol", "ssl.ca.location", "ssl.certificate.location",
                                "ssl.key.location")} == {"security.protocol": "ssl", "ssl.ca.location": "/ca.pem",
                                                         "ssl.certificate.location": "/c.pem",
                                                         "ssl.key.location": "/k.pem"}


def test_librdkafka_repeats_pass_once_per_interval():
    """During an outage librdkafka logs the failed connection at every retry, per consumer: the
    repeats (differing only in timing and instance) are thinned to one per interval."""
    import logging

    from inferwatch.kafka_confluent import _OncePerInterval

    f = _OncePerInterval(interval=3600)

    def line(msg: str) -> logging.LogRecord:
        return logging.LogRecord("inferwatch.kafka.librdkafka", logging.ERROR, __file__, 1, "%s [%s] %s",
                                 ("FAIL", "inferwatch#consumer-1", msg), None)

    refused = "127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused (after {}ms in state CONNECT)"
    passed = [f.filter(line(refused.format(ms))) for ms in (0, 3, 0, 12)]
    other = line("127.0.0.1:9/1: Disconnected: connection closed by peer (after 1417ms in state UP)")
    assert passed == [True, False, False, False] and f.filter(other)
    assert not f.filter(logging.LogRecord("x", logging.ERROR, __file__, 1, "%s [%s] %s",
                                          ("FAIL", "inferwatch#consumer-7", refused.format(5)), None))

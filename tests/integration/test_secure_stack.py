"""Kafka over SASL_SSL (SCRAM-SHA-256) and Elasticsearch over HTTPS with basic auth or an API
key, on the stack's secure mode (its own instance: ``python -m stack up --secure``), with the
real clients; and a pipeline run on it whose every log line and output is searched for the
credentials.

The secure instance lives in ``$INFERWATCH_SECURE_STACK_DIR`` (default ``<repo>/.stack-secure``)
on ports 29xxx (``INFERWATCH_SECURE_STACK_PORT_OFFSET`` moves them); the session starts what is
not running and stops only what it started.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contracts import KAFKA_CLIENTS
from tests.faults.harness import Role, free_port
from tests.integration.conftest import REPO_ROOT, unavailable
from tests.optional import env_flag
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

SERVICES = ("elasticsearch", "kafka", "esproxy")


def _ports() -> list[str]:
    base = 29000 + int(os.environ.get("INFERWATCH_SECURE_STACK_PORT_OFFSET", "0"))
    ports = {"elasticsearch": 200, "elasticsearch-transport": 300, "kafka": 92, "kafka-controller": 93,
             "elasticsearch-tls": 243, "prometheus": 90, "pushgateway": 91, "alertmanager": 94, "webhook": 95}
    return [f"--{name}-port={base + p}" for name, p in ports.items()]


def _stack(*args: str, data_dir: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERWATCH_")}
    env.setdefault("INFERWATCH_STACK_ES_HEAP", "512m")
    return subprocess.run([sys.executable, "-m", "stack", *args, "--data-dir", str(data_dir)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def _running(data_dir: Path) -> dict[str, Any]:
    out = _stack("status", "--json", data_dir=data_dir, timeout=60)
    try:
        return {s["service"]: s["pid"] for s in json.loads(out.stdout)["services"]}
    except (ValueError, KeyError):
        return {}


@pytest.fixture(scope="session")
def secure_env() -> Iterator[dict[str, str]]:
    """The INFERWATCH_* endpoints and credentials of the secure stack instance."""
    data_dir = Path(os.environ.get("INFERWATCH_SECURE_STACK_DIR") or REPO_ROOT / ".stack-secure").resolve()
    before = _running(data_dir)
    up = _stack("up", "--secure", *_ports(), *SERVICES, data_dir=data_dir)
    started = [s for s, pid in _running(data_dir).items() if pid is not None and pid != before.get(s)]
    try:
        if up.returncode != 0:
            unavailable("secure stack did not come up:\n" + "\n".join(up.stderr.splitlines()[-40:]))
        env = json.loads(_stack("env", "--json", data_dir=data_dir, timeout=60).stdout)
        assert env["INFERWATCH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        yield env
    finally:
        if started and not env_flag("INFERWATCH_KEEP_STACK"):
            _stack("down", *started, data_dir=data_dir, timeout=180)


def _creds(env: dict[str, str]) -> dict[str, str]:
    return dict(json.loads((Path(env["INFERWATCH_STACK_DIR"]) / "secure" / "credentials.json").read_text()))


def _api_key(env: dict[str, str]) -> str:
    c = _creds(env)
    return base64.b64encode(f"{c['es_api_key_id']}:{c['es_api_key_secret']}".encode()).decode()


def _kafka(env: dict[str, str], **overrides: Any) -> dict[str, Any]:
    conf = {"bootstrap_servers": env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"], "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": env["INFERWATCH_KAFKA_SASL_USERNAME"],
            "sasl_plain_password": env["INFERWATCH_KAFKA_SASL_PASSWORD"],
            "ssl_cafile": env["INFERWATCH_KAFKA_SSL_CAFILE"], "bootstrap_timeout_ms": 8000}
    conf.update(overrides)
    return {k: v for k, v in conf.items() if v is not None}


def test_kafka_accepts_scram_over_tls_and_refuses_everything_else(secure_env: dict[str, str]) -> None:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(**_kafka(secure_env))
    try:
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()
    log = Path(secure_env["INFERWATCH_STACK_DIR"]) / "logs" / "kafka.log"
    seen = log.read_text(errors="replace").count("Failed authentication")
    refused = {
        "wrong password": _kafka(secure_env, sasl_plain_password="not-the-password"),
        "unknown user": _kafka(secure_env, sasl_plain_username="mallory"),
        "plaintext": {"bootstrap_servers": secure_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"],
                      "bootstrap_timeout_ms": 5000},
        "tls without our CA": _kafka(secure_env, ssl_cafile=None),
    }
    for what, conf in refused.items():
        with pytest.raises(KafkaError):
            KafkaAdminClient(**conf).list_topics()
        assert what
    # the broker itself says the two bad logins failed authentication (not a timeout elsewhere)
    wait_until(lambda: log.read_text(errors="replace").count("Failed authentication") >= seen + 2, 30,
               "the broker to log the failed authentications")


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_inferwatch_kafka_log_round_trip_over_sasl_ssl(secure_env: dict[str, str], client: str) -> None:
    """The log over SASL_SSL, its consumers on each client library (the same SASL and TLS
    settings, mapped to librdkafka's names for confluent-kafka)."""
    from inferwatch.config import load_config
    from inferwatch.kafka_log import KafkaLog

    cfg = load_config(None, env={**secure_env, "INFERWATCH_KAFKA_CLIENT": client})
    assert cfg.kafka.client == client and cfg.kafka.security_protocol == "SASL_SSL"
    lg = KafkaLog(cfg.kafka)
    topic = f"inferwatch-secure-{uuid.uuid4().hex[:10]}"
    try:
        lg.create_topics([topic])
        lg.append(topic, [(b"m", f"v{i}".encode()) for i in range(10)])
        consumer = lg.consumer(topic, f"g-{topic}")
        got: list[bytes] = []
        deadline = time.monotonic() + 60
        while len(got) < 10 and time.monotonic() < deadline:
            got += [e.value for e in consumer.poll(100, timeout=0.5)]
        consumer.close()
        assert sorted(got) == sorted(f"v{i}".encode() for i in range(10))
    finally:
        lg.delete_topics([topic])
        lg.close()


@pytest.mark.parametrize("auth", ["basic", "api_key"])
def test_audit_store_over_https_with_basic_auth_or_api_key(secure_env: dict[str, str], auth: str) -> None:
    from inferwatch.config import load_config
    from inferwatch.record import InferenceRecord
    from sinks.elasticsearch import ElasticsearchAuditStore

    env = dict(secure_env, INFERWATCH_ELASTICSEARCH_INDEX_PREFIX=f"iwsec-{uuid.uuid4().hex[:8]}")
    if auth == "api_key":
        env.update(INFERWATCH_ELASTICSEARCH_USERNAME="", INFERWATCH_ELASTICSEARCH_PASSWORD="",
                   INFERWATCH_ELASTICSEARCH_API_KEY=_api_key(secure_env))
    cfg = load_config(None, env=env)
    with ElasticsearchAuditStore(cfg.elasticsearch) as store:
        rec = InferenceRecord(id=f"r-{uuid.uuid4().hex[:6]}", model="sec", inputs={"x": [1.0, 2.0]})
        assert store.write_records([rec]) == 2
        store.es.indices.refresh(index=f"{cfg.elasticsearch.index_prefix}-*")
        hits = store.es.search(index=f"{cfg.elasticsearch.index_prefix}-records-*", query={"match_all": {}})
        assert hits["hits"]["total"]["value"] == 2
        store.es.indices.delete(index=f"{cfg.elasticsearch.index_prefix}-*")


def test_elasticsearch_refuses_missing_or_wrong_credentials_and_unverified_tls(secure_env: dict[str, str]) -> None:
    from elastic_transport import TlsError
    from elasticsearch import AuthenticationException, Elasticsearch

    host, ca = secure_env["INFERWATCH_ELASTICSEARCH_HOSTS"], secure_env["INFERWATCH_ELASTICSEARCH_CA_CERTS"]
    user = secure_env["INFERWATCH_ELASTICSEARCH_USERNAME"]
    for kwargs in ({}, {"basic_auth": (user, "wrong")}, {"api_key": "Zm9vOmJhcg=="}):
        with pytest.raises(AuthenticationException):
            Elasticsearch(host, ca_certs=ca, max_retries=0, **kwargs).info()
    with pytest.raises(TlsError):  # our CA is needed: the system trust store does not know it
        Elasticsearch(host, basic_auth=(user, secure_env["INFERWATCH_ELASTICSEARCH_PASSWORD"]), max_retries=0).info()
    # and the right ones work
    ok = Elasticsearch(host, ca_certs=ca, api_key=_api_key(secure_env), max_retries=0).info()
    assert ok["version"]["number"].split(".")[0] == "9"


@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_pipeline_on_the_secure_stack_never_prints_a_secret(secure_env: dict[str, str], tmp_path: Path,
                                                            client: str) -> None:
    """Collector + audit roles over SASL_SSL Kafka and HTTPS Elasticsearch at DEBUG level, the
    collector itself behind TLS (the stack's certificate for 127.0.0.1) and a bearer token: the
    records arrive, requests without the token or without TLS are refused, and no log line, no
    command output and no error holds a credential; with the audit role's consumers on each
    Kafka client library (librdkafka's log lines go to the same log)."""
    import secrets as secrets_module

    from elasticsearch import Elasticsearch

    tag = uuid.uuid4().hex[:8]
    port = free_port()
    token = "tok-" + secrets_module.token_hex(16)
    tls = Path(secure_env["INFERWATCH_STACK_DIR"]) / "secure"
    env = {**secure_env, "INFERWATCH_LOG_BACKEND": "kafka", "INFERWATCH_AUDIT_BACKEND": "elasticsearch",
           "INFERWATCH_LOG_RECORDS_TOPIC": f"iwsec-{tag}.records",
           "INFERWATCH_LOG_DETECTIONS_TOPIC": f"iwsec-{tag}.detections",
           "INFERWATCH_LOG_DEADLETTER_TOPIC": f"iwsec-{tag}.deadletter",
           "INFERWATCH_AUDIT_GROUP": f"iwsec-{tag}", "INFERWATCH_ELASTICSEARCH_INDEX_PREFIX": f"iwsec-{tag}",
           "INFERWATCH_COLLECTOR_PORT": str(port), "INFERWATCH_DATA_DIR": str(tmp_path / "data"),
           "INFERWATCH_LOG_LEVEL": "DEBUG", "INFERWATCH_KAFKA_PARTITIONS": "1",
           "INFERWATCH_COLLECTOR_AUTH_TOKENS": token, "INFERWATCH_COLLECTOR_TLS_CERTFILE": str(tls / "server.crt"),
           "INFERWATCH_COLLECTOR_TLS_KEYFILE": str(tls / "server.key"), "INFERWATCH_KAFKA_CLIENT": client}
    creds = _creds(secure_env)
    secrets = [creds["kafka_password"], creds["es_password"], creds["kafka_admin_password"], token,
               base64.b64encode(f"{creds['es_username']}:{creds['es_password']}".encode()).decode()]
    role = Role(["collector", "audit"], env, tmp_path / "logs")
    es = Elasticsearch(secure_env["INFERWATCH_ELASTICSEARCH_HOSTS"], ca_certs=secure_env["INFERWATCH_ELASTICSEARCH_CA_CERTS"],
                       basic_auth=(creds["es_username"], creds["es_password"]))
    ca = str(tls / "ca.pem")
    auth = {"Authorization": f"Bearer {token}"}
    try:
        role.start()
        url = f"https://127.0.0.1:{port}"
        wait_until(lambda: _get(url + "/readyz", headers=auth, verify=ca) == 200, 90, "the collector to be ready")
        records = [{"id": f"{tag}-{i}", "model": "secure", "inputs": {"x": [float(i)]}} for i in range(20)]
        assert httpx.post(url + "/v1/records", json=records, timeout=30, verify=ca).status_code == 401
        assert httpx.post(url + "/v1/records", json=records, timeout=30, verify=ca,
                          headers={"Authorization": "Bearer " + token[:-2]}).status_code == 401
        assert _get(url.replace("https", "http") + "/healthz") == 0  # no plain HTTP
        assert httpx.post(url + "/v1/records", json=records, timeout=30, verify=ca, headers=auth).status_code == 202

        def audited() -> int:
            es.indices.refresh(index=f"iwsec-{tag}-records-*", ignore_unavailable=True, allow_no_indices=True)
            return int(es.count(index=f"iwsec-{tag}-records-*", ignore_unavailable=True,
                                allow_no_indices=True)["count"])

        wait_until(lambda: audited() == 20, 120, "20 audit documents over HTTPS")
    finally:
        role.stop(60)
        es.options(ignore_status=404).indices.delete(index=f"iwsec-{tag}-*")
    shown = subprocess.run([sys.executable, "-m", "inferwatch.cli", "config"], capture_output=True, text=True,
                           env={**os.environ, **env}, timeout=60, cwd=tmp_path)
    texts = {"role log": role.log_text(), "inferwatch config": shown.stdout + shown.stderr}
    # the log did record the run (at DEBUG level), and the configuration was printed, masked
    assert "audit started" in texts["role log"] and "collector listening on https" in texts["role log"]
    assert ("consuming with confluent-kafka" in texts["role log"]) == (client == "confluent")
    assert "****" in texts["inferwatch config"]
    for where, text in texts.items():
        for s in secrets:
            assert s not in text, f"a credential appears in the {where}"


def _get(url: str, **kw: Any) -> int:
    try:
        return httpx.get(url, timeout=2, **kw).status_code
    except httpx.HTTPError:
        return 0

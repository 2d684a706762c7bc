"""Fixtures for the integration tests: the real services of ``python -m stack``.

``stack_env`` (session) is the dict of ``INFERWATCH_*`` endpoints:

* when any of the endpoint variables is set in the environment, that running stack is used
  (variables not set take the stack's defaults) and nothing is started or stopped;
* otherwise the local stack is used if it is already healthy, or started with
  ``python -m stack up`` for the session; the services test sessions started are stopped by
  the last session to finish (``INFERWATCH_KEEP_STACK=1`` leaves them running), while a stack
  someone started by hand is left alone.

A missing or unhealthy service skips the tests that need it, or fails them when ``CI`` or
``INFERWATCH_REQUIRE_STACK=1`` is set. ``kafka_topic`` and ``es_index`` are fresh, uniquely
named per test and deleted afterwards; ``es_client`` is the official ``elasticsearch`` client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.optional import env_flag
from tests.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `stack` is a top-level folder of the repo, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from stack import _health  # noqa: E402

ENDPOINT_VARS = (
    "INFERWATCH_KAFKA_BOOTSTRAP_SERVERS",
    "INFERWATCH_ELASTICSEARCH_HOSTS",
    "INFERWATCH_PROMETHEUS_URL",
    "INFERWATCH_PUSHGATEWAY_URL",
    "INFERWATCH_ALERTMANAGER_URL",
)
SERVICE_OF_VAR = {
    "INFERWATCH_KAFKA_BOOTSTRAP_SERVERS": "kafka",
    "INFERWATCH_ELASTICSEARCH_HOSTS": "elasticsearch",
    "INFERWATCH_PROMETHEUS_URL": "prometheus",
    "INFERWATCH_PUSHGATEWAY_URL": "pushgateway",
    "INFERWATCH_ALERTMANAGER_URL": "alertmanager",
}
UP_TIMEOUT_S = 900  # a cold `up` downloads jars and Debian packages


def stack_required() -> bool:
    """True when a missing service must fail the test rather than skip it."""
    return env_flag("CI") or env_flag("INFERWATCH_REQUIRE_STACK")


def drop_es_store(store: Any) -> None:
    """Delete an Elasticsearch audit store's indices and index templates (its own prefix), and close it."""
    names = list(store.es.indices.get(index=f"{store.prefix}-*", allow_no_indices=True).body)
    if names:
        store.es.indices.delete(index=",".join(names))
    for name in ("records", "detections", "deadletters"):
        store.es.options(ignore_status=404).indices.delete_index_template(name=f"{store.prefix}-{name}")
    store.close()


def unavailable(message: str) -> None:
    """Skip, or fail under CI / INFERWATCH_REQUIRE_STACK=1."""
    if stack_required():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _stack(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stack", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def probe(env: dict[str, str], service: str) -> _health.Health:
    """A quick health check of one service at the endpoints in ``env``."""
    if service == "kafka":
        first = env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"].split(",")[0].strip()
        host, _, port = first.rpartition(":")
        return _health.kafka_health(host or "127.0.0.1", int(port))
    if service == "elasticsearch":
        return _health.elasticsearch_health(env["INFERWATCH_ELASTICSEARCH_HOSTS"].split(",")[0].rstrip("/"))
    var = {
        "prometheus": "INFERWATCH_PROMETHEUS_URL",
        "pushgateway": "INFERWATCH_PUSHGATEWAY_URL",
        "alertmanager": "INFERWATCH_ALERTMANAGER_URL",
    }[service]
    return _health.http_ready(env[var].rstrip("/") + "/-/ready")


@pytest.fixture(scope="session")
def stack_env() -> Iterator[dict[str, str]]:
    """The ``INFERWATCH_*`` endpoints of a running stack (started for the session if needed)."""
    defaults = _stack("env", "--json")
    if defaults.returncode != 0:
        unavailable(f"`python -m stack env` failed: {defaults.stderr.strip()}")
    env: dict[str, str] = json.loads(defaults.stdout)

    if any(os.environ.get(var) for var in ENDPOINT_VARS):
        for var in (*ENDPOINT_VARS, "INFERWATCH_STACK_DIR"):
            if os.environ.get(var):
                env[var] = os.environ[var]
        yield env
        return

    # several test sessions may share the stack: each registers, and the last one out stops
    # what sessions started (never what a person started with `python -m stack up`)
    stack_dir = Path(env["INFERWATCH_STACK_DIR"])
    sessions = stack_dir / "run" / "test-sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    me = sessions / str(os.getpid())
    me.write_text("")
    started_file = stack_dir / "run" / "started-by-tests.json"

    before = _pids()
    if any(pid is None for pid in before.values()) or _stack("status").returncode != 0:
        try:
            up = _stack("up", timeout=UP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            up = subprocess.CompletedProcess(
                [], 1, "", f"`python -m stack up` did not finish in {UP_TIMEOUT_S}s"
            )
        after = _pids()
        started = {name for name, pid in after.items() if pid is not None and pid != before.get(name)}
        if started:
            previous = set(json.loads(started_file.read_text())) if started_file.is_file() else set()
            started_file.write_text(json.dumps(sorted(previous | started)))
        if up.returncode != 0:
            _leave(me, sessions, started_file)
            tail = "\n".join(up.stderr.strip().splitlines()[-60:])
            unavailable(f"`python -m stack up` failed (exit {up.returncode}):\n{tail}")
    try:
        yield env
    finally:
        _leave(me, sessions, started_file)


def _pids() -> dict[str, int | None]:
    status = _stack("status", "--json")
    try:
        return {s["service"]: s["pid"] for s in json.loads(status.stdout)["services"]}
    except (ValueError, KeyError):
        return {}


def _leave(me: Path, sessions: Path, started_file: Path) -> None:
    """Unregister this session; the last session out stops the services test sessions started."""
    me.unlink(missing_ok=True)
    others = []
    for entry in sessions.glob("*"):
        try:
            os.kill(int(entry.name), 0)
            others.append(entry)
        except (ValueError, ProcessLookupError):
            entry.unlink(missing_ok=True)
        except PermissionError:
            others.append(entry)
    if others or env_flag("INFERWATCH_KEEP_STACK") or not started_file.is_file():
        return
    names = json.loads(started_file.read_text())
    started_file.unlink(missing_ok=True)
    if names:
        _stack("down", *names, timeout=180)


@pytest.fixture(scope="session")
def require_service(stack_env: dict[str, str]) -> Callable[[str], None]:
    """``require_service("kafka")``: skip (or fail under CI) unless that service is healthy."""
    checked: dict[str, _health.Health] = {}

    def require(service: str) -> None:
        health = checked.get(service)
        if health is None or not health.ok:
            health = checked[service] = probe(stack_env, service)
        if not health.ok:
            unavailable(f"{service} is not available: {health.detail}")

    return require


# --- Kafka ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_admin(stack_env: dict[str, str], require_service: Callable[[str], None]) -> Iterator[Any]:
    """kafka-python's ``KafkaAdminClient`` on the stack's broker."""
    require_service("kafka")
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=stack_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"],
        client_id="inferwatch-tests-admin",
        request_timeout_ms=30000,
    )
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture
def kafka_topic(kafka_admin: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh topic (1 partition, RF 1) with a unique name, deleted after the test."""
    from kafka.admin import NewTopic

    test = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    name = f"inferwatch-test-{test}-{uuid.uuid4().hex[:10]}"
    kafka_admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)], timeout_ms=30000)
    wait_until(lambda: name in kafka_admin.list_topics(), 30, f"topic {name} to appear in the metadata", every=0.2)
    try:
        yield name
    finally:
        try:
            kafka_admin.delete_topics([name], timeout_ms=30000)
        except Exception as exc:
            print(f"could not delete topic {name}: {exc!r}", file=sys.stderr)


# --- Elasticsearch -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def es_client(stack_env: dict[str, str], require_service: Callable[[str], None]) -> Iterator[Any]:
    """The official ``elasticsearch`` client (same major as the node) on the stack's node."""
    require_service("elasticsearch")
    from elasticsearch import Elasticsearch

    hosts = [h.strip() for h in stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"].split(",") if h.strip()]
    client = Elasticsearch(hosts, request_timeout=30, max_retries=2, retry_on_timeout=True)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def es_index(es_client: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, unique index name (not created: the test or a template creates it), deleted after."""
    name = f"inferwatch-test-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        try:
            es_client.indices.delete(index=name, ignore_unavailable=True)
        except Exception as exc:
            print(f"could not delete index {name}: {exc!r}", file=sys.stderr)

"""Smoke tests of the local service stack (``python -m stack``) with the real clients.

Each test proves one service does what the pipeline relies on, on fresh names: Kafka
produce/consume (and no topic auto-creation), Elasticsearch templates/bulk/search/flattened/
upserts through the official client (product check included), Pushgateway -> Prometheus,
file-registered scrape targets, rules -> Alertmanager, and promtool over alerts/.
"""

from __future__ import annotations

import glob
import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.optional import env_flag
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
ALERTS = REPO_ROOT / "alerts"


def unavailable(message: str) -> None:
    """Skip, or fail under CI / INFERWATCH_REQUIRE_STACK=1 (as the conftest's fixtures do)."""
    if env_flag("CI") or env_flag("INFERWATCH_REQUIRE_STACK"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# --- helpers -----------------------------------------------------------------------------------


def _http(
    method: str, url: str, body: bytes | None = None, content_type: str = "application/json"
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    return wait_until(check, timeout, what, every=interval)


def _prom_query(prometheus: str, query: str) -> list[dict[str, Any]]:
    status, body = _http("GET", f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    assert status == 200, body
    data = json.loads(body)
    assert data["status"] == "success", data
    return data["data"]["result"]


def _push(pushgateway: str, job: str, text: str, method: str = "PUT") -> None:
    status, body = _http(
        method, f"{pushgateway}/metrics/job/{job}", text.encode(), "text/plain; version=0.0.4"
    )
    assert status in (200, 202), body


@pytest.fixture
def prometheus(stack_env: dict[str, str], require_service: Callable[[str], None]) -> str:
    require_service("prometheus")
    return stack_env["INFERWATCH_PROMETHEUS_URL"].rstrip("/")


@pytest.fixture
def pushgateway(stack_env: dict[str, str], require_service: Callable[[str], None]) -> str:
    require_service("pushgateway")
    return stack_env["INFERWATCH_PUSHGATEWAY_URL"].rstrip("/")


@pytest.fixture
def alertmanager(stack_env: dict[str, str], require_service: Callable[[str], None]) -> str:
    require_service("alertmanager")
    return stack_env["INFERWATCH_ALERTMANAGER_URL"].rstrip("/")


@pytest.fixture
def push_job(pushgateway: str) -> Iterator[str]:
    """A unique Pushgateway job name whose group is deleted after the test."""
    job = f"inferwatch-smoke-{uuid.uuid4().hex[:10]}"
    try:
        yield job
    finally:
        _http("DELETE", f"{pushgateway}/metrics/job/{job}")


# --- Kafka ---------------------------------------------------------------------------------------


def test_kafka_produce_and_consume(stack_env: dict[str, str], kafka_topic: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    bootstrap = stack_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    sent = [(f"key-{i % 3}".encode(), f'{{"n": {i}}}'.encode()) for i in range(25)]
    for key, value in sent:
        producer.send(kafka_topic, key=key, value=value, headers=[("type", b"smoke")])
    producer.flush(timeout=30)
    producer.close()

    consumer = KafkaConsumer(
        kafka_topic,
        bootstrap_servers=bootstrap,
        group_id=f"inferwatch-smoke-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    got: list[Any] = []
    deadline = time.monotonic() + 30
    while len(got) < len(sent) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got.extend(records)
    consumer.commit()
    consumer.close()
    assert [(r.key, r.value) for r in got] == sent
    assert all(r.headers == [("type", b"smoke")] for r in got)


def test_kafka_does_not_auto_create_topics(stack_env: dict[str, str], kafka_admin: Any) -> None:
    from kafka import KafkaConsumer

    missing = f"inferwatch-test-never-created-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(
        bootstrap_servers=stack_env["INFERWATCH_KAFKA_BOOTSTRAP_SERVERS"], allow_auto_create_topics=True
    )
    try:
        assert not consumer.partitions_for_topic(missing)
    finally:
        consumer.close()
    assert missing not in kafka_admin.list_topics()


# --- Elasticsearch -----------------------------------------------------------------------------


def test_elasticsearch_client_matches_node_major(es_client: Any) -> None:
    import elasticsearch

    info = es_client.info()  # the client's product check runs on every response
    assert info["tagline"] == "You Know, for Search"
    node_major = info["version"]["number"].split(".")[0]
    client_major = elasticsearch.__versionstr__.split(".")[0]
    assert node_major == client_major, (
        f"node {info['version']['number']}, client {elasticsearch.__versionstr__}"
    )
    assert es_client.ping()
    headers = es_client.perform_request("GET", "/_cluster/health").meta.headers
    assert headers.get("X-Elastic-Product") == "Elasticsearch"


def test_elasticsearch_template_bulk_search_flattened_upsert(es_client: Any, es_index: str) -> None:
    from elasticsearch import helpers

    template = f"{es_index}-template"
    es_client.indices.put_index_template(
        name=template,
        index_patterns=[f"{es_index}*"],
        priority=500,
        template={
            # best_compression is zstd through Elasticsearch's native access
            "settings": {"number_of_shards": 1, "number_of_replicas": 0, "index.codec": "best_compression"},
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "model": {"type": "keyword"},
                    "version": {"type": "keyword"},
                    "timestamp": {"type": "date"},
                    "latency_ms": {"type": "float"},
                    "request": {"type": "text"},
                    "meta": {"type": "flattened"},
                },
            },
        },
    )
    try:
        # documents go under "_source": helpers.bulk reads top-level keys such as "version" or
        # "routing" as action metadata, and our records have a "version" field
        docs = [
            {
                "_index": es_index,
                "_id": f"req-{i}",
                "_source": {
                    "model": "iris" if i % 2 else "wine",
                    "version": "v1",
                    "timestamp": f"2026-01-01T00:00:{i:02d}Z",
                    "latency_ms": float(i),
                    "request": f"petal length {i} sepal width" if i % 2 else f"alcohol {i} acidity",
                    "meta": {"namespace": "prod", "headers": {"x-request-id": f"r{i}"}},
                },
            }
            for i in range(20)
        ]
        ok, errors = helpers.bulk(es_client, docs, refresh="wait_for")
        assert (ok, errors) == (20, [])

        mapping = es_client.indices.get_mapping(index=es_index)[es_index]["mappings"]
        assert mapping["properties"]["meta"]["type"] == "flattened"  # the template applied

        hits = es_client.search(index=es_index, query={"match": {"request": "petal"}}, size=50)["hits"]
        assert hits["total"]["value"] == 10
        assert {h["_source"]["model"] for h in hits["hits"]} == {"iris"}

        flat = es_client.search(index=es_index, query={"term": {"meta.headers.x-request-id": "r7"}})["hits"]
        assert [h["_id"] for h in flat["hits"]] == ["req-7"]

        aggs = es_client.search(
            index=es_index,
            size=0,
            aggs={
                "by_model": {
                    "terms": {"field": "model"},
                    "aggs": {"p_latency": {"avg": {"field": "latency_ms"}}},
                }
            },
        )["aggregations"]["by_model"]["buckets"]
        assert {b["key"]: (b["doc_count"], b["p_latency"]["value"]) for b in aggs} == {
            "iris": (10, 10.0),
            "wine": (10, 9.0),
        }

        # the request half arrives, then the response half merges into the same document
        es_client.update(
            index=es_index,
            id="req-99",
            doc={"model": "iris", "request": "first half"},
            doc_as_upsert=True,
            refresh="wait_for",
        )
        es_client.update(
            index=es_index, id="req-99", doc={"latency_ms": 3.5}, doc_as_upsert=True, refresh="wait_for"
        )
        merged = es_client.get(index=es_index, id="req-99")["_source"]
        assert merged == {"model": "iris", "request": "first half", "latency_ms": 3.5}
        assert es_client.count(index=es_index)["count"] == 21
    finally:
        es_client.indices.delete_index_template(name=template)


# --- Prometheus, Pushgateway, Alertmanager -----------------------------------------------------


def test_pushed_metric_is_scraped_by_prometheus(pushgateway: str, prometheus: str, push_job: str) -> None:
    run = uuid.uuid4().hex[:10]
    _push(
        pushgateway,
        push_job,
        f'# TYPE inferwatch_stack_smoke_total counter\ninferwatch_stack_smoke_total{{run="{run}"}} 42\n',
    )
    result = _wait_for(
        "the pushed sample in Prometheus",
        lambda: _prom_query(prometheus, f'inferwatch_stack_smoke_total{{run="{run}"}}'),
    )
    assert result[0]["value"][1] == "42"
    assert result[0]["metric"]["job"] == push_job  # honor_labels keeps the pushed job label


def test_prometheus_scrapes_registered_file_targets(stack_env: dict[str, str], prometheus: str) -> None:
    stack_dir = stack_env.get("INFERWATCH_STACK_DIR")
    targets_dir = Path(stack_dir) / "prometheus" / "targets" if stack_dir else None
    if targets_dir is None or not targets_dir.is_dir():
        unavailable(f"no file_sd targets folder under INFERWATCH_STACK_DIR={stack_dir!r}")
    assert targets_dir is not None
    marker = uuid.uuid4().hex[:10]

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f'inferwatch_stack_smoke_info{{marker="{marker}"}} 1\n'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    target = f"127.0.0.1:{server.server_address[1]}"
    target_file = targets_dir / f"smoke-{marker}.json"
    target_file.write_text(json.dumps([{"targets": [target], "labels": {"smoke": marker}}]))
    try:
        result = _wait_for(
            "Prometheus to scrape the registered target",
            lambda: _prom_query(prometheus, f'up{{job="inferwatch",instance="{target}"}} == 1'),
        )
        assert result[0]["metric"]["smoke"] == marker
        _wait_for(
            "the target's own metric",
            lambda: _prom_query(prometheus, f'inferwatch_stack_smoke_info{{marker="{marker}"}}'),
        )
    finally:
        target_file.unlink(missing_ok=True)
        server.shutdown()
        server.server_close()


def test_alertmanager_v2_api_roundtrip(alertmanager: str) -> None:
    run = uuid.uuid4().hex[:10]
    alert = {
        "labels": {"alertname": "InferwatchStackSmoke", "severity": "info", "run": run},
        "annotations": {"summary": "posted by test_stack_smoke"},
        "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 120)),
    }
    status, body = _http("POST", f"{alertmanager}/api/v2/alerts", json.dumps([alert]).encode())
    assert status == 200, body

    def read_back() -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"filter": f'run="{run}"'})
        status, body = _http("GET", f"{alertmanager}/api/v2/alerts?{query}")
        assert status == 200, body
        return json.loads(body)

    got = _wait_for("the alert in Alertmanager", read_back, timeout=15)
    assert got[0]["labels"]["alertname"] == "InferwatchStackSmoke"
    assert got[0]["annotations"]["summary"] == "posted by test_stack_smoke"
    assert got[0]["status"]["state"] == "active"


def test_rules_loaded_and_deadletter_alert_reaches_alertmanager(
    prometheus: str, pushgateway: str, alertmanager: str, push_job: str
) -> None:
    status, body = _http("GET", f"{prometheus}/api/v1/rules")
    assert status == 200, body
    rules = {r["name"] for g in json.loads(body)["data"]["groups"] for r in g["rules"]}
    assert {
        "InferwatchDriftDetected",
        "InferwatchRecordsDeadLettered",
        "InferwatchTargetDown",
        "InferwatchConsumerLagHigh",
    } <= rules

    source = f"smoke-{uuid.uuid4().hex[:10]}"
    series = f'inferwatch_records_deadlettered_total{{source="{source}",stage="decode"}}'
    _push(pushgateway, push_job, f"# TYPE inferwatch_records_deadlettered_total counter\n{series} 0\n")
    _wait_for("the zero sample", lambda: _prom_query(prometheus, series))
    # wait (bounded) until two scrapes have seen 0, so that the next value is an increase
    _wait_for("two scrapes of the zero sample",
              lambda: _prom_query(prometheus, f"count_over_time({series}[5m]) >= 2"), timeout=120)
    _push(pushgateway, push_job, f"# TYPE inferwatch_records_deadlettered_total counter\n{series} 3\n")

    def in_alertmanager() -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"filter": f'source="{source}"'})
        status, body = _http("GET", f"{alertmanager}/api/v2/alerts?{query}")
        assert status == 200, body
        return json.loads(body)

    got = _wait_for("InferwatchRecordsDeadLettered in Alertmanager", in_alertmanager, timeout=60)
    assert got[0]["labels"]["alertname"] == "InferwatchRecordsDeadLettered"
    assert got[0]["labels"]["stage"] == "decode"


# --- promtool / amtool over alerts/ --------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        unavailable(
            f"{name} is not installed (it comes with Debian's prometheus packages; `python -m stack up` installs them)"
        )
    assert found is not None
    return found


def test_promtool_check_rules() -> None:
    files = sorted(glob.glob(str(ALERTS / "*.rules.yml")))
    assert files, "no alerts/*.rules.yml"
    proc = subprocess.run(
        [_tool("promtool"), "check", "rules", *files], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_test_rules() -> None:
    files = sorted(glob.glob(str(ALERTS / "tests" / "*.yml")))
    assert files, "no alerts/tests/*.yml"
    proc = subprocess.run(
        [_tool("promtool"), "test", "rules", *files], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_amtool_check_example_config() -> None:
    proc = subprocess.run(
        [_tool("amtool"), "check-config", str(ALERTS / "alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr

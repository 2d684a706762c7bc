"""The proxy while its Kafka is stopped mid-run: no model request fails, and after Kafka is back every
exchange reaches the audit store exactly once.

A Kafka of its own (``python -m stack up kafka`` in a temporary data directory, other ports), so the
shared stack is never touched; Elasticsearch is the stack's.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from collectors.proxy import LoggingProxy
from inferwatch.config import ProxyConfig
from inferwatch.ingest import Ingestor
from inferwatch.metrics import Metrics
from tests.integration.scaled import scaled_path
from tests.llm_standin import free_port, serve_app
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
N_BEFORE, N_DURING, N_AFTER = 100, 100, 100


class OwnKafka:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port, self.controller = free_port(), free_port()

    def _stack(self, *args: str) -> None:
        r = subprocess.run([sys.executable, "-m", "stack", *args, "--data-dir", str(self.data_dir)],
                           cwd=REPO, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
        if r.returncode:
            raise AssertionError(f"stack {' '.join(args)} failed: {r.stdout[-2000:]} {r.stderr[-2000:]}")

    def up(self) -> None:
        self._stack("up", "kafka", "--kafka-port", str(self.port), "--kafka-controller-port", str(self.controller))

    def down(self) -> None:
        self._stack("down")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def own_kafka(tmp_path_factory) -> Iterator[OwnKafka]:
    k = OwnKafka(tmp_path_factory.mktemp("own-kafka"))
    k.up()
    try:
        yield k
    finally:
        k.down()


async def model(scope, receive, send):
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    rows = orjson.loads(body)["instances"]
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": orjson.dumps({"predictions": [sum(r) for r in rows]})})


def test_kafka_stopped_mid_run_fails_no_request_and_loses_nothing(stack_env, own_kafka, tmp_path):
    env = dict(stack_env, INFERWATCH_KAFKA_BOOTSTRAP_SERVERS=own_kafka.bootstrap)
    with scaled_path(env, "proxy-outage", **{"kafka.bootstrap_servers": own_kafka.bootstrap}) as s, \
            serve_app(model) as upstream:
        proxy = LoggingProxy(ProxyConfig(upstream=upstream, port=0, spool_path=str(tmp_path / "spool.db")), s.cfg)
        proxy.start(Ingestor(s.log, s.cfg, Metrics()))
        url = f"http://127.0.0.1:{proxy.port}"
        statuses: list[int] = []
        ids: list[str] = []
        try:
            with httpx.Client(timeout=30) as http:
                def send(n: int, start: int) -> None:
                    for i in range(start, start + n):
                        r = http.post(url + "/v1/models/adder:predict", content=orjson.dumps(
                            {"instances": [[i, 1], [i, 2]]}), headers={"x-request-id": f"out-{i}"})
                        statuses.append(r.status_code)
                        assert r.json() == {"predictions": [i + 1, i + 2]}
                        ids.append(r.headers["x-request-id"])

                send(N_BEFORE, 0)
                assert proxy.shipper is not None and proxy.shipper.flush(120)
                own_kafka.down()  # Kafka gone; traffic goes on
                during = threading.Thread(target=send, args=(N_DURING, N_BEFORE))
                during.start()
                during.join(600)
                wait_until(lambda: proxy.shipper.spool_items > 0, 60, "exchanges waiting in the spool")  # type: ignore[union-attr]
                assert proxy.shipper.last_error is not None or proxy.shipper.spool_items > 0  # type: ignore[union-attr]
                own_kafka.up()  # same data directory: the topics are still there
                send(N_AFTER, N_BEFORE + N_DURING)
                assert proxy.shipper.flush(600), f"spool not drained: {proxy.shipper.pending()} left"  # type: ignore[union-attr]
                assert proxy.shipper.dropped == 0  # type: ignore[union-attr]
        finally:
            proxy.stop()
        n = N_BEFORE + N_DURING + N_AFTER
        assert statuses == [200] * n and len(set(ids)) == n
        s.start_audit()
        wait_until(lambda: s.count() >= 2 * n, 300, "every exchange in Elasticsearch")
        docs = s.docs()
        assert len(docs) == 2 * n  # two rows each, each document exactly once
        assert sorted({d["record_id"] for d in docs}) == sorted(ids)
        on_log = [r.id for r in s.records_on_log()]
        assert set(on_log) == set(ids)  # a retried append may repeat a record on the topic; the audit counts it once
        print(f"records on the topic: {len(on_log)} for {n} exchanges ({len(on_log) - n} repeated by retries)")

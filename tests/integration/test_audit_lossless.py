"""The scaled path end to end, under faults: 100,000 records posted to the collector are all
searchable in Elasticsearch exactly once after (a) the audit consumer is killed with SIGKILL
mid-stream and restarted, (b) Elasticsearch is stopped (until the audit role reports not ready and
counts the error while the collector keeps accepting records) and started again, and
(c) the whole topic is replayed from offset 0.

Every record carries a fixed timestamp, so all documents land in one daily index, where an
``_id`` is unique: a count equal to N then means every record is there exactly once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from inferwatch.config import load_config
from inferwatch.kafka_log import KafkaLog
from tests.contracts import KAFKA_CLIENTS
from tests.waiting import wait_until as _wait

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
N = int(os.environ.get("INFERWATCH_LOSSLESS_RECORDS", "100000"))
#: the second client library runs the same faults on fewer records (CI time: the full run is the
#: longest test of the suite); the default client keeps the 100,000
N_CONFLUENT = int(os.environ.get("INFERWATCH_LOSSLESS_RECORDS_CONFLUENT", str(min(N, 30000))))
BATCH = 500


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Role:
    """One `inferwatch run --role ...` process."""

    def __init__(self, role: str, cfg: Path, log_dir: Path, *extra: str):
        self.args = [sys.executable, "-m", "inferwatch.cli", "run", "--role", role, "--config", str(cfg), *extra]
        self.log_path = log_dir / f"{role}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Role:
        self.proc = subprocess.Popen(self.args, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT,
                                     cwd=self.log_path.parent)  # the installed package, not the checkout
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def _stack(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "stack", *args], cwd=REPO, check=True, timeout=300,
                   stdin=subprocess.DEVNULL, capture_output=True)




@pytest.mark.parametrize("client", KAFKA_CLIENTS)
def test_100k_records_exactly_once_through_kill_outage_and_replay(stack_env, tmp_path, client):
    n = N_CONFLUENT if client == "confluent" else N
    tag = uuid.uuid4().hex[:8]
    port = _free_port()
    cfg_path = tmp_path / "inferwatch.yaml"
    cfg_path.write_text(f"""
data_dir: {tmp_path / 'data'}
log_level: INFO
collector: {{port: {port}}}
log: {{backend: kafka, records_topic: iwt-{tag}.records, detections_topic: iwt-{tag}.detections,
       deadletter_topic: iwt-{tag}.deadletter}}
audit: {{backend: elasticsearch, batch_size: 2000}}
kafka: {{bootstrap_servers: "{stack_env['INFERWATCH_KAFKA_BOOTSTRAP_SERVERS']}", partitions: 3, client: {client}}}
elasticsearch: {{hosts: ["{stack_env['INFERWATCH_ELASTICSEARCH_HOSTS']}"], index_prefix: iwt-{tag},
                 max_backoff_s: 5}}
""")
    cfg = load_config(cfg_path, env={})
    from elasticsearch import Elasticsearch

    es = Elasticsearch(stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"], request_timeout=30)
    index = f"iwt-{tag}-records-*"
    lg = KafkaLog(cfg.kafka)

    def count() -> int:
        try:
            es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
            return int(es.count(index=index, ignore_unavailable=True, allow_no_indices=True)["count"])
        except Exception:
            return -1

    collector = Role("collector", cfg_path, tmp_path).start()
    audit = Role("audit", cfg_path, tmp_path, "--metrics-port", "0").start()
    roles = [collector, audit]
    posted = {"ok": 0, "errors": []}

    def post_all() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            for start in range(0, n, BATCH):
                body = [{"model": "lossless", "id": f"r{i}", "timestamp": "2026-02-03T04:05:06Z",
                         "inputs": {"x": [i], "label": [f"item {i}"]}, "outputs": {"y": [i % 2]}}
                        for i in range(start, min(n, start + BATCH))]
                for attempt in range(20):
                    r = c.post("/v1/records", json=body)
                    if r.status_code == 202:
                        posted["ok"] += len(body)
                        break
                    if r.status_code != 503:
                        posted["errors"].append(r.text)
                        return
                    time.sleep(0.5 * (attempt + 1))
                else:
                    posted["errors"].append("503 twenty times")
                    return

    try:
        _wait(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
              if _port_open(port) else False, 60, "the collector")
        poster = threading.Thread(target=post_all)
        poster.start()

        # (a) SIGKILL the audit consumer mid-stream, then restart it
        _wait(lambda: count() >= n // 5, 240, f"{n // 5} documents")
        audit.kill()
        at_kill = count()
        assert 0 < at_kill < n
        if client == "confluent":  # the role ran on the client asked for
            assert "consuming with confluent-kafka" in audit.log_path.read_text(errors="replace"), audit.tail()
        audit_port = _free_port()
        audit = Role("audit", cfg_path, tmp_path, "--metrics-port", str(audit_port)).start()
        roles.append(audit)

        # (b) Elasticsearch down while records keep arriving, for as long as it takes the audit
        # role to notice (not ready, the error counted) and the collector to accept two more
        # batches; then up again, and the role ready again
        _wait(lambda: count() >= n // 2, 240, f"{n // 2} documents")
        posted_before = posted["ok"]
        _stack("down", "elasticsearch")
        _wait(lambda: _ready(audit_port) is False, 180, "the audit role to report not ready")
        # not ready in its metrics too (a store that retries inside the batching engine raises
        # nothing, so the role need not count an error: readiness is what it must report)
        _wait(lambda: _metric(audit_port, "inferwatch_ready", "audit") == 0.0, 60,
              "the audit role's inferwatch_ready to be 0")
        _wait(lambda: posted["ok"] >= min(n, posted_before + 2 * BATCH), 180, "records accepted during the outage")
        assert audit.alive(), audit.tail()
        _stack("up", "elasticsearch")
        _wait(lambda: _ready(audit_port) is True, 300, "the audit role to be ready again")

        poster.join(600)
        assert not posted["errors"], posted["errors"][:3]
        assert posted["ok"] == n
        _wait(lambda: lg.group_lag(cfg.log.records_topic, cfg.audit.group) == 0, 600, "the audit consumer to catch up")
        assert count() == n, audit.tail()
        assert audit.alive(), audit.tail()
        _check_documents(es, index, n)

        # (c) replay the whole topic from offset 0
        audit.stop()
        subprocess.run([sys.executable, "-m", "inferwatch.cli", "replay", "--config", str(cfg_path), "--yes"],
                       cwd=tmp_path, check=True, timeout=120)
        assert lg.group_lag(cfg.log.records_topic, cfg.audit.group) == n
        audit = Role("audit", cfg_path, tmp_path, "--metrics-port", "0").start()
        roles.append(audit)
        _wait(lambda: lg.group_lag(cfg.log.records_topic, cfg.audit.group) == 0, 600, "the replay")
        # every message was read again (lag n -> 0) and rewrote the same documents: Elasticsearch
        # reports the identical merges as no-ops, and the count does not move
        assert count() == n
        _check_documents(es, index, n)
    finally:
        for r in roles:
            r.stop()
        _stack("up", "elasticsearch")
        try:
            names = list(es.indices.get(index=f"iwt-{tag}-*", allow_no_indices=True).body)
            if names:
                es.indices.delete(index=",".join(names))
        finally:
            lg.delete_topics([cfg.log.records_topic, cfg.log.detections_topic, cfg.log.deadletter_topic])
            lg.close()
            es.close()


def _ready(port: int) -> bool | None:
    """The role's /readyz answer (None while it does not answer)."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return None


def _metric(port: int, name: str, role: str) -> float | None:
    """The value of ``name{role=...}`` on the role's /metrics (None when absent or unreachable)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith(name + "{") and f'role="{role}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _check_documents(es, index: str, n: int) -> None:
    indices = list(es.indices.get(index=index).body)
    assert len(indices) == 1, indices  # one daily index: _id is unique, so count == n is exactly-once
    sample = es.search(index=index, query={"ids": {"values": ["r7-0", f"r{n // 2}-0", f"r{n - 1}-0"]}})["hits"]["hits"]
    assert len(sample) == 3
    for h in sample:
        i = int(h["_id"][1:-2])
        assert h["_source"]["input"] == {"x": i, "label": f"item {i}"}
        assert h["_source"]["output"] == {"y": i % 2}
    # full-text search finds a document by its payload
    hits = es.search(index=index, query={"match_phrase": {"payload_text": f"item {n - 3}"}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == [f"r{n - 3}-0"]

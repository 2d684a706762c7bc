"""Malformed payloads on the scaled path: undecodable bodies and documents Elasticsearch rejects
both land in the dead-letter topic and the dead-letter index, with their reasons; and
`inferwatch search` finds them in Elasticsearch exactly as it would in SQLite."""

from __future__ import annotations

import subprocess
import sys
import uuid

import httpx
import orjson
import pytest

from inferwatch.audit import SearchQuery
from inferwatch.config import load_config
from inferwatch.kafka_log import KafkaLog
from inferwatch.pipeline import Pipeline
from inferwatch.record import DeadLetter
from tests.integration.scaled import delete_test_indices
from tests.waiting import wait_until

pytestmark = pytest.mark.integration



def test_bad_payloads_reach_the_deadletter_topic_and_index(stack_env, tmp_path):
    tag = uuid.uuid4().hex[:8]
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(f"""
data_dir: {tmp_path / 'data'}
collector: {{port: 0}}
log: {{backend: kafka, records_topic: iwt-{tag}.records, detections_topic: iwt-{tag}.detections,
       deadletter_topic: iwt-{tag}.deadletter}}
audit: {{backend: elasticsearch, group: audit-{tag}}}
kafka: {{bootstrap_servers: "{stack_env['INFERWATCH_KAFKA_BOOTSTRAP_SERVERS']}"}}
elasticsearch: {{hosts: ["{stack_env['INFERWATCH_ELASTICSEARCH_HOSTS']}"], index_prefix: iwt-{tag}}}
""")
    cfg = load_config(cfg_path, env={})
    pipe = Pipeline(cfg, ["collector", "audit"])
    try:
        pipe.start()
        with httpx.Client(base_url=f"http://127.0.0.1:{pipe.bound_port}", timeout=30) as c:
            ce = {"Ce-Source": "test", "Ce-Specversion": "1.0"}
            bad_json = c.post("/", content=b"\xff{not json", headers={
                **ce, "Ce-Type": "io.seldon.serving.inference.request", "Ce-Modelid": "m", "Ce-Requestid": "a",
                "Ce-Id": "a-1"})
            no_protocol = c.post("/", content=b'[1, {"a": 2}]', headers={
                **ce, "Ce-Type": "org.kubeflow.serving.inference.request", "Ce-Id": "b",
                "Ce-Inferenceservicename": "m"})
            # decodes fine, but Elasticsearch refuses it (a meta keyword longer than Lucene's 32,766 bytes)
            unmappable = c.post("/v1/records", json={"model": "m", "id": "c", "meta": {"note": "x" * 40000},
                                                     "inputs": {"x": [1]}})
            good = c.post("/v1/records", json={"model": "m", "id": "d", "inputs": {"x": [2]}})
        assert bad_json.status_code == 400 and no_protocol.status_code == 400
        assert "expected" in no_protocol.json()["error"]
        assert unmappable.status_code == 202 and good.status_code == 202

        store = pipe.store
        assert store is not None

        def letters():
            store.refresh()  # type: ignore[attr-defined]
            return store.search(SearchQuery(kind="deadletters"))

        wait_until(lambda: len(letters()) >= 3, 60, "three dead letters")
        assert sorted(d["stage"] for d in letters()) == ["decode", "decode", "index"]
        by_id = {d["id"]: d for d in letters()}
        assert by_id[bad_json.json()["deadletter"]]["source"] == "cloudevents"
        raw = DeadLetter.from_json(orjson.dumps(by_id[bad_json.json()["deadletter"]])).raw
        assert raw == b"\xff{not json"
        index_letter = next(d for d in letters() if d["stage"] == "index")
        assert "failed to parse field [meta]" in index_letter["reason"]
        assert store.get("d-0") is not None and store.get("c-0") is None

        # the dead-letter topic holds all three too (the index rejection was appended by the audit role)
        lg = KafkaLog(cfg.kafka)
        assert lg.size(cfg.log.deadletter_topic) == 3
        lg.close()
    finally:
        pipe.stop()

    out = subprocess.run([sys.executable, "-m", "inferwatch.cli", "search", "--config", str(cfg_path),
                          "--kind", "deadletters", "--format", "json"], cwd=tmp_path, capture_output=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    lines = [orjson.loads(x) for x in out.stdout.splitlines()]
    assert len(lines) == 3 and {d["stage"] for d in lines} == {"decode", "index"}
    out = subprocess.run([sys.executable, "-m", "inferwatch.cli", "search", "--config", str(cfg_path),
                          "--id", "d", "--format", "json"], cwd=tmp_path, capture_output=True, timeout=60)
    assert [orjson.loads(x)["doc_id"] for x in out.stdout.splitlines()] == ["d-0"]

    delete_test_indices(stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"], tag)
    KafkaLog(cfg.kafka).delete_topics([cfg.log.records_topic, cfg.log.detections_topic, cfg.log.deadletter_topic])

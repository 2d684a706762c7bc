"""A consumer killed with SIGKILL mid-stream and restarted audits every record exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from inferwatch.audit import SearchQuery
from inferwatch.record import InferenceRecord
from inferwatch.sqlite_log import SQLiteLog
from sinks.sqlite_audit import SQLiteAuditStore

N_RECORDS = 6000
ROWS = 2


def _fill(log_path):
    lg = SQLiteLog(log_path)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    batch = []
    for i in range(N_RECORDS):
        r = InferenceRecord(id=f"r{i}", model="m", timestamp=t0 + timedelta(milliseconds=i),
                            inputs={"x": [i, -i]}, outputs={"y": [i % 3, i % 5]}, request=f'{{"n": {i}}}')
        batch.append((b"m", r.to_json()))
    lg.append("inferwatch.records", batch)
    lg.close()


def _start(cfg_path, env):
    return subprocess.Popen([sys.executable, "-m", "inferwatch.cli", "run", "--role", "audit",
                             "--config", str(cfg_path), "--metrics-port", "0"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_sigkill_mid_stream_then_restart_audits_exactly_once(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _fill(data / "log.db")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {data}\naudit:\n  batch_size: 100\nlog_level: WARNING\n")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    kills = 0
    audit_db = data / "audit.db"
    for target in (1500, 3500):  # kill twice, at different depths of the stream
        proc = _start(cfg, env)
        deadline = time.monotonic() + 60
        seen = 0
        while time.monotonic() < deadline and seen < target:
            time.sleep(0.02)
            if audit_db.exists():
                try:
                    seen = SQLiteAuditStore(audit_db).count(SearchQuery())
                except Exception:
                    seen = 0
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        kills += 1
        store = SQLiteAuditStore(audit_db)
        assert store.count(SearchQuery()) < N_RECORDS * ROWS, "killed after the end: the test proves nothing"
    # a last run to the end
    proc = _start(cfg, env)
    consumer = SQLiteLog(data / "log.db").consumer("inferwatch.records", "inferwatch-audit")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and consumer.lag() > 0:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0].decode()
    assert consumer.lag() == 0, out
    store = SQLiteAuditStore(audit_db)
    docs = store.search(SearchQuery(limit=N_RECORDS * ROWS + 10))
    ids = [d["doc_id"] for d in docs]
    assert kills == 2
    assert len(ids) == len(set(ids)) == N_RECORDS * ROWS
    assert set(ids) == {f"r{i}-{j}" for i in range(N_RECORDS) for j in range(ROWS)}
    for d in docs[:: 997]:
        i = int(d["record_id"][1:])
        assert d["input"]["x"] == (i if d["row"] == 0 else -i)

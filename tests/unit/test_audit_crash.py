"""A consumer killed with SIGKILL mid-stream and restarted audits every record exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from inferwatch.audit import SearchQuery
from inferwatch.record import InferenceRecord
from inferwatch.sqlite_log import SQLiteLog
from sinks.sqlite_audit import SQLiteAuditStore
from tests.waiting import wait_until

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
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cfg_path.parent)


@pytest.mark.slow
def test_sigkill_mid_stream_then_restart_audits_exactly_once(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _fill(data / "log.db")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {data}\naudit:\n  batch_size: 100\nlog_level: WARNING\n")
    env = dict(os.environ)  # the installed package (make test installs the checkout), not the cwd
    audit_db = data / "audit.db"

    def audited() -> int:
        if not audit_db.exists():
            return 0
        try:
            return SQLiteAuditStore(audit_db).count(SearchQuery())
        except Exception:  # the database is being created by the child
            return 0

    at_kill: list[int] = []
    for target in (1500, 3500):  # kill twice, at different depths of the stream
        proc = _start(cfg, env)
        # wait for the depth itself (bounded): a kill before any document would prove nothing
        wait_until(lambda t=target, p=proc: audited() >= t or p.poll() is not None, 120, f"{target} documents audited",
                   every=0.02)
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        at_kill.append(audited())
    # each kill landed mid-stream, and the restart made progress before the second one
    assert at_kill[0] >= 1500 and at_kill[1] >= 3500, at_kill
    assert at_kill[-1] < N_RECORDS * ROWS, f"killed after the end: the test proves nothing ({at_kill})"
    # a last run to the end
    proc = _start(cfg, env)
    consumer = SQLiteLog(data / "log.db").consumer("inferwatch.records", "inferwatch-audit")
    wait_until(lambda: consumer.lag() == 0 or proc.poll() is not None, 300, "the audit role to drain the log", every=0.1)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0].decode()
    assert consumer.lag() == 0, out
    store = SQLiteAuditStore(audit_db)
    docs = store.search(SearchQuery(limit=N_RECORDS * ROWS + 10))
    ids = [d["doc_id"] for d in docs]
    # (distinct ids are guaranteed by the store's primary key; what can fail is a lost or a foreign row)
    assert len(ids) == N_RECORDS * ROWS
    assert set(ids) == {f"r{i}-{j}" for i in range(N_RECORDS) for j in range(ROWS)}
    for d in docs[:: 997]:
        i = int(d["record_id"][1:])
        assert d["input"]["x"] == (i if d["row"] == 0 else -i)

from __future__ import annotations

import uuid

import pytest

from inferwatch.sqlite_log import SQLiteLog
from sinks.sqlite_audit import SQLiteAuditStore
from tests.contracts import AuditStoreContract, LogContract


class TestSQLiteLog(LogContract):
    @pytest.fixture
    def log(self, tmp_path):
        lg = SQLiteLog(tmp_path / "log.db")
        yield lg
        lg.close()

    @pytest.fixture
    def topic(self):
        return "t-" + uuid.uuid4().hex


class TestSQLiteAudit(AuditStoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        s = SQLiteAuditStore(tmp_path / "audit.db")
        yield s
        s.close()


def test_sqlite_log_readers_in_other_processes_see_appends(tmp_path):
    import subprocess
    import sys

    lg = SQLiteLog(tmp_path / "log.db")
    lg.append("t", [(None, b"one")])
    code = (
        "import sys; from inferwatch.sqlite_log import SQLiteLog;"
        f"c = SQLiteLog({str(tmp_path / 'log.db')!r}).consumer('t', 'other');"
        "b = c.poll(10, timeout=2); c.commit(b); print(len(b))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    assert lg.consumer("t", "other").lag() == 0

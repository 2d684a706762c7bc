"""Smoke test of `inferwatch demo` as a user runs it (a subprocess, JSON summary)."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest


@pytest.mark.slow
def test_demo_finds_drift_in_the_shifted_phase_only(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "inferwatch.cli", "demo", "--data-dir", str(tmp_path / "demo"), "--json",
         "--seed", "3"], capture_output=True, timeout=300)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    s = orjson.loads(out.stdout)
    assert s["ok"] is True
    assert s["audited_documents"] == s["rows_sent"]
    assert s["deadletters"] == 2
    assert s["phases"]["shifted"]["windows"] >= 2
    assert s["phases"]["shifted"]["drift"] == s["phases"]["shifted"]["windows"]
    # held-out traffic: a Bonferroni-corrected 5% test may fire by chance, but not in most windows
    assert s["phases"]["held-out"]["drift"] <= 1
    assert s["detections_stored"] == len(s["windows"])
    assert (tmp_path / "demo" / "audit.db").exists()
    assert b"inferwatch_drift_detected" in (tmp_path / "demo" / "metrics.prom").read_bytes()

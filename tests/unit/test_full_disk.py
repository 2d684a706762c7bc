"""Embedded mode on a full disk: the collector answers 503 (and keeps answering health and
metrics), the audit and detect roles back off, and when space returns everything resumes with
nothing acknowledged lost and nothing counted twice.

The full disk is real: the data directory is a 24 MiB tmpfs mount, filled with a ballast file
until writes fail with SQLITE_FULL / ENOSPC; deleting the ballast frees the space. Mounting needs
root (CAP_SYS_ADMIN); without it the test is skipped, saying so.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inferwatch.audit import SearchQuery
from inferwatch.config import load_config
from inferwatch.pipeline import Pipeline
from tests.optional import missing
from tests.waiting import wait_until


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        missing(f"cannot mount a small tmpfs here ({exc}); the full-disk test needs root")
    if done.returncode != 0:
        missing(f"cannot mount a small tmpfs here ({done.stderr.strip()}); the full-disk test needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def _fill(path: Path) -> None:
    """Write a ballast file until the filesystem is full."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (256 * 1024))
                f.flush()
        except OSError:
            pass
    try:
        os.sync()
    except OSError:
        pass


def test_a_full_disk_is_503_then_everything_resumes(small_disk: Path) -> None:
    cfg = load_config(None, env={}, overrides={
        "data_dir": str(small_disk / "data"), "collector.port": 0, "collector.append_deadline_s": 5,
        "collector.retry_after_s": 1})
    pipe = Pipeline(cfg, ["collector", "audit"])
    pipe.start()
    acked: set[str] = set()
    tag = uuid.uuid4().hex[:6]
    try:
        url = f"http://127.0.0.1:{pipe.bound_port}"
        with httpx.Client(base_url=url, timeout=30) as c:
            def send(i: int) -> int:
                batch = [{"id": f"{tag}-{i}-{j}", "model": "m", "inputs": {"x": [float(j)] * 20}} for j in range(50)]
                r = c.post("/v1/records", json=batch)
                if r.status_code == 202:
                    acked.update(b["id"] for b in batch)
                return r.status_code

            assert send(0) == 202
            _fill(small_disk / "ballast")
            codes = [send(i) for i in range(1, 40)]
            assert 503 in codes, codes  # the full disk was felt ...
            assert all(code in (202, 503) for code in codes), codes  # ... and answered, never a crash
            r = c.post("/v1/records", json=[{"id": f"{tag}-x", "model": "m", "inputs": {"x": [1.0]}}])
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            # reads keep working while the disk is full
            assert c.get("/healthz").status_code == 200
            assert "inferwatch_collector_shed_requests_total" in c.get("/metrics").text
            assert pipe.alive()
            (small_disk / "ballast").unlink()  # space returns
            resumed = wait_until(lambda: send(1000) == 202, 60, "the collector to accept again")
            assert resumed
            for i in range(1001, 1006):
                wait_until(lambda i=i: send(i) == 202, 30, "appends to succeed")
        assert pipe.wait_idle(timeout=120), "the audit role did not catch up"
        store = pipe.store
        assert store is not None
        docs = store.search(SearchQuery(model="m", limit=100_000))
        ids = [d["record_id"] for d in docs if d.get("row") == 0]
        assert set(ids) >= acked  # nothing acknowledged was lost
        assert len(ids) == len(set(ids))  # nothing doubled
        assert pipe.alive()
    finally:
        pipe.stop()


def test_restarting_on_a_full_disk_stays_up_and_resumes(small_disk: Path) -> None:
    cfg = load_config(None, env={}, overrides={
        "data_dir": str(small_disk / "data"), "collector.port": 0, "collector.append_deadline_s": 5,
        "collector.retry_after_s": 1})
    first = Pipeline(cfg, ["collector", "audit"])
    first.start()
    first.stop()
    _fill(small_disk / "ballast")
    pipe = Pipeline(cfg, ["collector", "audit"])  # opening the stores on a full disk must not fail the process
    pipe.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{pipe.bound_port}", timeout=30) as c:
            rec = [{"id": "after-restart", "model": "m", "inputs": {"x": [1.0]}}]
            r = c.post("/v1/records", json=rec)
            assert r.status_code in (202, 503)
            assert c.get("/healthz").status_code == 200 and pipe.alive()
            (small_disk / "ballast").unlink()
            wait_until(lambda: c.post("/v1/records", json=rec).status_code == 202, 60, "appends after space returned")
        assert pipe.wait_idle(timeout=120)
        assert pipe.store is not None and pipe.store.count(SearchQuery(id="after-restart")) == 1
    finally:
        pipe.stop()

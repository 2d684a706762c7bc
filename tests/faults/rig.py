"""A pipeline under fault on its own stack instance: three role processes (collector, audit,
detect) over Kafka and Elasticsearch, a retrying client, and the measurements of the table.

The fault stack is a separate ``python -m stack`` instance (``$INFERWATCH_FAULT_STACK_DIR``,
default ``<repo>/.stack-faults``, ports 39xxx), because faults kill and pause its services.
Each scenario gets fresh topics, consumer groups and indices.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.faults.harness import REPO, FaultResult, Role, Sender, TcpProxy, free_port, signal_pidfile
from tests.optional import env_flag

MODEL = "faultm"
WINDOW = 200
#: records are stamped from here, one second apart: all in one daily index, where an _id is
#: unique, and windows with distinct times (a detection's id includes its window's times)
T0 = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)


class FaultStack:
    """The faults' own stack instance: Kafka and Elasticsearch that may be killed and paused."""

    SERVICES = ("elasticsearch", "kafka")

    def __init__(self) -> None:
        self.data_dir = Path(os.environ.get("INFERWATCH_FAULT_STACK_DIR") or REPO / ".stack-faults").resolve()
        base = 39000 + int(os.environ.get("INFERWATCH_FAULT_STACK_PORT_OFFSET", "0"))
        ports = {"elasticsearch": 200, "elasticsearch-transport": 300, "kafka": 92, "kafka-controller": 93,
                 "elasticsearch-tls": 243, "prometheus": 90, "pushgateway": 91, "alertmanager": 94, "webhook": 95}
        self.port_flags = [f"--{name}-port={base + p}" for name, p in ports.items()]
        self.started: set[str] = set()

    def stack(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFERWATCH_")}
        env.setdefault("INFERWATCH_STACK_ES_HEAP", "512m")
        env.setdefault("INFERWATCH_STACK_KAFKA_HEAP", "384m")
        return subprocess.run([sys.executable, "-m", "stack", *args, "--data-dir", str(self.data_dir)],
                              cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)

    def pids(self) -> dict[str, int | None]:
        out = self.stack("status", "--json", timeout=300)  # the machine may be very busy
        try:
            return {s["service"]: s["pid"] for s in json.loads(out.stdout)["services"]}
        except (ValueError, KeyError):
            return {}

    def up(self, *services: str) -> None:
        before = self.pids()
        names = services or self.SERVICES
        res = self.stack("up", "--timeout", "600", *self.port_flags, *names)
        after = self.pids()
        self.started |= {s for s in names if after.get(s) and after.get(s) != before.get(s)}
        if res.returncode != 0:
            raise RuntimeError("fault stack did not come up:\n" + "\n".join(res.stderr.splitlines()[-30:]))

    def env(self) -> dict[str, str]:
        return dict(json.loads(self.stack("env", "--json", timeout=300).stdout))

    def pid_file(self, service: str) -> Path:
        return self.data_dir / "run" / f"{service}.pid"

    def kill(self, service: str) -> None:
        signal_pidfile(self.pid_file(service), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.pids().get(service) is not None and time.monotonic() < deadline:
            time.sleep(0.2)

    def pause(self, service: str) -> None:
        signal_pidfile(self.pid_file(service), signal.SIGSTOP)

    def resume(self, service: str) -> None:
        signal_pidfile(self.pid_file(service), signal.SIGCONT)

    def down_started(self) -> None:
        if self.started and not env_flag("INFERWATCH_KEEP_STACK"):
            self.stack("down", *sorted(self.started), timeout=180)


def _reference(path: Path) -> None:
    rng = random.Random(7)
    path.write_text("x\n" + "\n".join(f"{rng.gauss(0, 1):.6f}" for _ in range(2000)) + "\n")


@dataclass
class Rig:
    """One scenario: fresh names, three role processes, a sender thread, the measurements."""

    stack: FaultStack
    work: Path
    name: str
    es_proxy: bool = False
    detect_instances: int = 1
    audit_instances: int = 1
    #: records spread over this many models (partitions are keyed by model); detections are
    #: expected for the first ``detect_models`` of them, the ones with a reference
    models: int = 1
    detect_models: int = 1
    #: rows in a detect window
    window: int = WINDOW
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    roles: dict[str, Role] = field(default_factory=dict)
    proxy: TcpProxy | None = None
    ports: dict[str, int] = field(default_factory=dict)
    sender: Sender | None = None
    _stop_sending: threading.Event = field(default_factory=threading.Event)
    #: set when the scenario is torn down: a send still retrying gives up (a failed scenario's
    #: collector may never answer again)
    _abort: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    sent_count: int = 0

    def __post_init__(self) -> None:
        self.base_env = self.stack.env()
        self.prefix = f"iwf-{self.tag}"
        es_hosts = self.base_env["INFERWATCH_ELASTICSEARCH_HOSTS"]
        if self.es_proxy:
            host, _, port = es_hosts.replace("http://", "").rpartition(":")
            self.proxy = TcpProxy((host, int(port)))
            es_hosts = f"http://{self.proxy.address}"
        self.data = self.work / f"data-{self.tag}"
        self.data.mkdir(parents=True)
        self.env = {**self.base_env, "INFERWATCH_ELASTICSEARCH_HOSTS": es_hosts,
                    "INFERWATCH_LOG_BACKEND": "kafka", "INFERWATCH_AUDIT_BACKEND": "elasticsearch",
                    "INFERWATCH_LOG_RECORDS_TOPIC": f"{self.prefix}.records",
                    "INFERWATCH_LOG_DETECTIONS_TOPIC": f"{self.prefix}.detections",
                    "INFERWATCH_LOG_DEADLETTER_TOPIC": f"{self.prefix}.deadletter",
                    "INFERWATCH_AUDIT_GROUP": f"{self.prefix}-audit", "INFERWATCH_DETECT_GROUP": f"{self.prefix}-detect",
                    "INFERWATCH_ELASTICSEARCH_INDEX_PREFIX": self.prefix, "INFERWATCH_DATA_DIR": str(self.data),
                    "INFERWATCH_ELASTICSEARCH_REQUEST_TIMEOUT": "10", "INFERWATCH_ELASTICSEARCH_MAX_BACKOFF_S": "2",
                    "INFERWATCH_DETECT_WINDOW": json.dumps({"type": "count", "size": self.window}),
                    "INFERWATCH_DETECT_DETECTORS": json.dumps([{"type": "ks", "p_val": 0.05}]),
                    "INFERWATCH_DETECT_BATCH_SIZE": "100", "INFERWATCH_COLLECTOR_APPEND_DEADLINE_S": "3",
                    "INFERWATCH_LOG_LEVEL": "INFO"}
        ref = self.work / f"ref-{self.tag}.csv"
        _reference(ref)
        for model in self.reference_models:
            out = subprocess.run([sys.executable, "-m", "inferwatch.cli", "reference", "add", model, str(ref)],
                                 env={**os.environ, **self.env}, capture_output=True,
                                 text=True, timeout=120, cwd=self.work)
            if out.returncode != 0:
                raise RuntimeError(f"reference add failed: {out.stderr[-2000:]}")
        self.ports = {"collector": free_port()}
        logs = self.work / f"logs-{self.tag}"
        self.roles["collector"] = Role(["collector"], {**self.env, "INFERWATCH_COLLECTOR_PORT": str(self.ports["collector"])},
                                       logs, name="collector")
        for i in range(1, self.audit_instances + 1):
            name = "audit" if i == 1 else f"audit{i}"
            self.ports[name] = free_port()
            self.roles[name] = Role(["audit"], {**self.env, "INFERWATCH_METRICS_PORT": str(self.ports[name]),
                                                "INFERWATCH_KAFKA_GROUP_INSTANCE_ID": f"audit-{i}"}, logs, name=name)
        for i in range(1, self.detect_instances + 1):
            self.ports[f"detect{i}"] = free_port()
            self.roles[f"detect{i}"] = Role(["detect"], {**self.env, "INFERWATCH_METRICS_PORT": str(self.ports[f"detect{i}"]),
                                                         "INFERWATCH_KAFKA_GROUP_INSTANCE_ID": f"detect-{i}"},
                                            logs, name=f"detect{i}")
        self.sender = Sender(f"http://127.0.0.1:{self.ports['collector']}/v1/records", timeout=5.0,
                             give_up_after=1800)

    # -- roles -------------------------------------------------------------------------------------
    def start(self, *names: str) -> None:
        for n in names or tuple(self.roles):
            self.roles[n].start()

    def ready_url(self, role: str) -> str:
        return f"http://127.0.0.1:{self.ports[role]}/readyz"

    def ready(self, role: str) -> bool:
        try:
            return httpx.get(self.ready_url(role), timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def all_ready(self) -> bool:
        return all(self.ready(r) for r in self.roles)

    def wait_ready(self, timeout: float = 240) -> float:
        """Seconds until every role answers ready (raises after ``timeout``)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.all_ready():
                return time.monotonic() - t0
            time.sleep(0.5)
        raise AssertionError(f"{self.name}: roles not ready after {timeout}s: "
                             f"{ {r: self.ready(r) for r in self.roles} }")

    def roles_up(self) -> bool:
        return all(r.running for r in self.roles.values())

    # -- traffic -----------------------------------------------------------------------------------
    def model_of(self, i: int) -> str:
        return MODEL if i % self.models == 0 else f"{MODEL}-{i % self.models}"

    @property
    def reference_models(self) -> list[str]:
        return [self.model_of(i) for i in range(self.detect_models)]

    def record(self, i: int) -> dict[str, Any]:
        rng = random.Random(i)
        ts = (T0 + timedelta(seconds=i)).isoformat()
        return {"id": f"{self.tag}-{i}", "model": self.model_of(i), "timestamp": ts,
                "inputs": {"x": [rng.gauss(0, 1)]}}

    def _expected_windows(self, acked: set[str]) -> dict[str, int]:
        """Model -> full windows of its acknowledged records (one detection each)."""
        per_model: dict[str, int] = {m: 0 for m in self.reference_models}
        for a in acked:
            m = self.model_of(int(a.rsplit("-", 1)[1]))
            if m in per_model:
                per_model[m] += 1
        return {m: n // self.window for m, n in per_model.items()}

    def _expected_detections(self, acked: set[str]) -> int:
        return sum(self._expected_windows(acked).values())

    def start_sending(self, rate: float = 100.0, batch: int = 10) -> None:
        assert self.sender is not None

        def run() -> None:
            assert self.sender is not None
            i = 0
            while not self._stop_sending.is_set():
                t0 = time.monotonic()
                self.sender.send([self.record(j) for j in range(i, i + batch)], stop=self._abort.is_set)
                i += batch
                self.sent_count = i
                pause = batch / rate - (time.monotonic() - t0)
                if pause > 0:
                    time.sleep(pause)

        self._thread = threading.Thread(target=run, name=f"sender-{self.name}", daemon=True)
        self._thread.start()

    def stop_sending(self) -> None:
        self._stop_sending.set()
        if self._thread is not None:
            self._thread.join(1900)

    # -- measurements ------------------------------------------------------------------------------
    def _es(self) -> Any:
        from elasticsearch import Elasticsearch

        return Elasticsearch(self.base_env["INFERWATCH_ELASTICSEARCH_HOSTS"], request_timeout=60)

    def audited_ids(self) -> dict[str, int]:
        """Record id -> number of audit documents holding it."""
        es = self._es()
        try:
            es.indices.refresh(index=f"{self.prefix}-records-*", ignore_unavailable=True, allow_no_indices=True)
            out: dict[str, int] = {}
            res = es.search(index=f"{self.prefix}-records-*", size=10_000, source=["record_id"], query={"match_all": {}},
                            ignore_unavailable=True, allow_no_indices=True, scroll="2m")
            sid = res.get("_scroll_id")
            hits = res["hits"]["hits"]
            while hits:
                for h in hits:
                    rid = h["_source"]["record_id"]
                    out[rid] = out.get(rid, 0) + 1
                res = es.scroll(scroll_id=sid, scroll="2m")
                sid, hits = res.get("_scroll_id"), res["hits"]["hits"]
            return out
        finally:
            es.close()

    def detections(self) -> int:
        es = self._es()
        try:
            es.indices.refresh(index=f"{self.prefix}-detections*", ignore_unavailable=True, allow_no_indices=True)
            q = {"bool": {"filter": [{"terms": {"model": self.reference_models}}, {"term": {"detector": "ks"}}]}}
            return int(es.count(index=f"{self.prefix}-detections*", query=q, ignore_unavailable=True,
                                allow_no_indices=True)["count"])
        finally:
            es.close()

    def detection_windows(self) -> dict[str, list[int]]:
        """Model -> the window numbers (``extra.window_seq``) of its ks detection documents, one
        entry per document: a window with two documents (two ids) appears twice."""
        es = self._es()
        try:
            q = {"bool": {"filter": [{"terms": {"model": self.reference_models}}, {"term": {"detector": "ks"}}]}}
            res = es.search(index=f"{self.prefix}-detections*", query=q, size=10_000, source=["model", "extra"],
                            ignore_unavailable=True, allow_no_indices=True)
            out: dict[str, list[int]] = {}
            for h in res["hits"]["hits"]:
                src = h["_source"]
                out.setdefault(src["model"], []).append(int(src["extra"]["window_seq"]))
            return {m: sorted(v) for m, v in out.items()}
        finally:
            es.close()

    def log_tails(self, result: FaultResult, keep: int = 12) -> str:
        """The last ``keep`` lines (INFO and above, each cut to 200 characters) of the roles a failed
        result points at: the detect roles for wrong detections, the others for lost or doubled records."""
        dets_wrong = not result.windows_ok or result.detections_expected != result.detections_found
        records_wrong = result.lost or result.duplicated or not result.roles_up
        names = [n for n in self.roles if (dets_wrong and n.startswith("detect"))
                 or (records_wrong and not n.startswith("detect"))]
        out = []
        for n in names:
            lines = [ln[:200] for ln in self.roles[n].log_text().splitlines() if " DEBUG " not in ln][-keep:]
            out.append(f"    {n} (last {len(lines)} lines):" + "".join(f"\n      {ln}" for ln in lines))
        return "\n".join(out)

    def settle(self, timeout: float = 600) -> tuple[dict[str, int], int]:
        """Wait until the audit trail holds every acknowledged record and the detections stop
        growing at the expected count (bounded); returns (audited ids, detections)."""
        assert self.sender is not None
        expected = self._expected_detections(self.sender.acked)
        t0 = time.monotonic()
        ids: dict[str, int] = {}
        dets = 0
        while time.monotonic() - t0 < timeout:
            ids, dets = self.audited_ids(), self.detections()
            if self.sender.acked <= ids.keys() and dets >= expected:
                break
            time.sleep(2)
        return ids, dets

    def result(self, fault: str, recovery_s: float | None, note: str = "") -> FaultResult:
        assert self.sender is not None
        ids, dets = self.settle()
        acked = self.sender.acked
        lost = len(acked - ids.keys())
        duplicated = sum(n - 1 for n in ids.values() if n > 1)
        expected = self._expected_detections(acked)
        # every model's windows numbered 0..n-1, each once: none lost, none with two ids
        windows = self.detection_windows()
        wanted = {m: list(range(n)) for m, n in self._expected_windows(acked).items() if n}
        det_dups = sum(len(v) - len(set(v)) for v in windows.values())
        if windows != wanted:
            note = (note + "; " if note else "") + f"windows {_spans(windows)} != expected {_spans(wanted)}"
        extra = [f"{k}: {v}" for k, v in sorted(self.sender.answers.items())]
        return FaultResult(fault, sent=len(self.sender.sent), acknowledged=len(acked), audited=len(ids.keys() & acked),
                           duplicated=duplicated + det_dups, lost=lost, detections_expected=expected,
                           detections_found=dets, recovery_s=recovery_s, roles_up=self.roles_up(),
                           windows_ok=windows == wanted,
                           note=(note + "; " if note else "") + "answers " + ", ".join(extra))

    def close(self) -> None:
        self._abort.set()
        self.stop_sending()
        for r in self.roles.values():
            if r.running:
                r.stop(60)
        if self.proxy is not None:
            self.proxy.close()
        try:
            es = self._es()
            es.options(ignore_status=404).indices.delete(index=f"{self.prefix}-*")
            es.close()
        except Exception:
            pass


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def _spans(windows: dict[str, list[int]]) -> str:
    """{model: [0, 1, 2, 2, 5]} as "{model: 0-2,2,5}": each run of consecutive window numbers as its
    first and last (a number seen twice starts a new run)."""
    def runs(v: list[int]) -> str:
        spans: list[list[int]] = []
        for x in v:
            if spans and x == spans[-1][1] + 1:
                spans[-1][1] = x
            else:
                spans.append([x, x])
        return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return "{" + ", ".join(f"{m}: {runs(v)}" for m, v in sorted(windows.items())) + "}"

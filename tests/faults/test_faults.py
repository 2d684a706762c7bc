"""The fault suite on the real services: every fault with the collector, audit and detect roles
as separate processes, a client that retries until it gets 202, and the table of the issue.

Each scenario streams records through the fault and after it, then waits (bounded) until the
audit trail and the detections settle and checks: 0 acknowledged records lost, 0 duplicated
audit documents, exactly one detection per full window (a record counted twice would shift the
windows), every role still running at the end. The table is printed at the end of the session
(and written to ``$INFERWATCH_FAULT_TABLE`` when set).

The five-minute outages run when ``INFERWATCH_FAULTS_LONG=1``, which ``make test`` (and so CI)
and ``make faults`` set; a plain ``pytest`` run has the outages of 10 and 60 seconds only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import RESULTS, FaultResult
from tests.faults.rig import FaultStack, Rig
from tests.integration.conftest import unavailable
from tests.optional import env_flag

pytestmark = [pytest.mark.integration, pytest.mark.faults]

LONG = env_flag("INFERWATCH_FAULTS_LONG")


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[FaultStack]:
    stack = FaultStack()
    try:
        stack.up()
    except RuntimeError as exc:
        unavailable(str(exc))
    try:
        yield stack
    finally:
        stack.down_started()


@pytest.fixture
def rig_factory(fault_stack: FaultStack, tmp_path: Path) -> Iterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for r in made:
        r.close()
    # a scenario that stopped a service must not leave it stopped for the next one
    fault_stack.up()


def _rig(made: list[Rig], stack: FaultStack, tmp: Path, name: str, **kw: object) -> Rig:
    r = Rig(stack, tmp, name, **kw)  # type: ignore[arg-type]
    made.append(r)
    return r


def _record(result: FaultResult, rig: Rig) -> None:
    if not result.ok:  # the summary at the end shows the last lines of the roles the failure points at
        result = dataclasses.replace(result, note=f"{result.note}\n{rig.log_tails(result)}")
    RESULTS.append(result)
    # a failure shows what the roles logged last (in CI the rig's files are gone afterwards)
    assert result.ok, (result, {n: _log_lines(r.log_text()) for n, r in rig.roles.items()})


def _log_lines(text: str, keep: int = 40) -> str:
    """The role log's last ``keep`` lines at INFO and above."""
    lines = [ln for ln in text.splitlines() if " DEBUG " not in ln]
    return "\n".join(lines[-keep:])


def _run_service_outage(made: list[Rig], stack: FaultStack, tmp: Path, service: str, how: str, seconds: float,
                        name: str) -> None:
    rig = _rig(made, stack, tmp, name)
    rig.start()
    rig.wait_ready()
    rig.start_sending()
    time.sleep(5)  # traffic before the fault
    if how == "pause":
        stack.pause(service)
        time.sleep(seconds)
        stack.resume(service)
    else:
        stack.kill(service)
        time.sleep(seconds)
        stack.up(service)
    recovery = rig.wait_ready(timeout=300)
    time.sleep(8)  # traffic after the fault
    rig.stop_sending()
    _record(rig.result(name, recovery), rig)


@pytest.mark.parametrize(("service", "how", "seconds"), [
    ("kafka", "pause", 10), ("kafka", "kill", 60), ("elasticsearch", "kill", 60),
    *([("kafka", "kill", 300), ("elasticsearch", "kill", 300)] if LONG else []),
])
def test_service_outage(rig_factory: list[Rig], fault_stack: FaultStack, tmp_path: Path, service: str, how: str,
                        seconds: float) -> None:
    verb = "paused (SIGSTOP)" if how == "pause" else "killed"
    _run_service_outage(rig_factory, fault_stack, tmp_path, service, how, seconds,
                        f"{service} {verb} {seconds:g}s")


def test_elasticsearch_network_cut(rig_factory: list[Rig], fault_stack: FaultStack, tmp_path: Path) -> None:
    """The audit role reaches Elasticsearch through a proxy that resets every connection and refuses
    new ones for 30 s, then a black hole (accepted, never answered) for 20 s."""
    rig = _rig(rig_factory, fault_stack, tmp_path, "es network cut", es_proxy=True)
    rig.start()
    rig.wait_ready()
    rig.start_sending()
    time.sleep(3)
    assert rig.proxy is not None
    rig.proxy.block()
    time.sleep(30)
    rig.proxy.hang()
    time.sleep(20)
    rig.proxy.unblock()
    rig.proxy.cut()
    recovery = rig.wait_ready(timeout=300)
    time.sleep(3)
    rig.stop_sending()
    _record(rig.result("elasticsearch cut 30s + black hole 20s", recovery), rig)


@pytest.mark.parametrize("role", ["collector", "audit", "detect1"])
def test_role_killed_three_times(rig_factory: list[Rig], fault_stack: FaultStack, tmp_path: Path, role: str) -> None:
    rig = _rig(rig_factory, fault_stack, tmp_path, f"{role} SIGKILL x3")
    rig.start()
    rig.wait_ready()
    rig.start_sending()
    recoveries = []
    for _ in range(3):
        time.sleep(4)
        rig.roles[role].kill()
        rig.roles[role].start()
        recoveries.append(rig.wait_ready(timeout=180))
    time.sleep(3)
    rig.stop_sending()
    _record(rig.result(f"{role.rstrip('1')} SIGKILL x3", max(recoveries),
                       note=f"recoveries {', '.join(f'{r:.1f}' for r in recoveries)} s"), rig)


def test_audit_scale_out_members_join_and_leave(rig_factory: list[Rig], fault_stack: FaultStack,
                                                tmp_path: Path) -> None:
    """Three audit processes in one consumer group (static members): one leaves gracefully and
    comes back, one is SIGKILLed and comes back, while records stream; each record audited once."""
    rig = _rig(rig_factory, fault_stack, tmp_path, "audit x3 scale-out", audit_instances=3, models=6)
    rig.start()
    rig.wait_ready()
    rig.start_sending()
    time.sleep(5)
    rig.roles["audit2"].stop(60)  # graceful leave
    time.sleep(5)
    rig.roles["audit3"].kill()  # crash
    time.sleep(5)
    rig.roles["audit2"].start()
    rig.roles["audit3"].start()
    recovery = rig.wait_ready(timeout=180)
    time.sleep(5)
    rig.stop_sending()
    _record(rig.result("audit x3: leave, SIGKILL, rejoin", recovery), rig)


def test_roles_started_while_kafka_is_down(rig_factory: list[Rig], fault_stack: FaultStack, tmp_path: Path) -> None:
    """Kafka is down when the roles start: they stay up, not ready, for 30 s, then work."""
    fault_stack.kill("kafka")
    rig = _rig(rig_factory, fault_stack, tmp_path, "started while kafka down")
    rig.start()
    time.sleep(30)
    assert rig.roles_up(), {n: r.log_text()[-1500:] for n, r in rig.roles.items() if not r.running}
    assert not rig.ready("collector") and not rig.ready("audit")
    fault_stack.up("kafka")
    recovery = rig.wait_ready(timeout=300)
    rig.start_sending()
    time.sleep(5)
    rig.stop_sending()
    _record(rig.result("roles started with kafka down 30s", recovery), rig)


def test_detect_scale_out_members_join_and_leave(rig_factory: list[Rig], fault_stack: FaultStack,
                                                 tmp_path: Path) -> None:
    """Two detect processes in one consumer group (static members) beside three audit processes,
    over six models that all have a reference: one detect member leaves gracefully and one is
    SIGKILLed mid-stream, then both rejoin; every model's windows are detected once each
    (window numbers 0..n-1, one document per window: the per-partition checkpoints hand the
    open windows over, and a window computed again after the kill has the same id)."""
    rig = _rig(rig_factory, fault_stack, tmp_path, "detect x2 scale-out", detect_instances=2, audit_instances=3,
               models=6, detect_models=6, window=100)
    rig.start()
    rig.wait_ready()
    rig.start_sending(rate=500, batch=50)
    time.sleep(10)
    rig.roles["detect2"].stop(60)  # graceful leave
    time.sleep(15)  # longer than the session timeout: detect1 takes its partitions and windows
    rig.roles["detect1"].kill()  # crash, mid-window
    rig.roles["detect2"].start()
    time.sleep(15)
    rig.roles["detect1"].start()
    recovery = rig.wait_ready(timeout=180)
    time.sleep(10)
    rig.stop_sending()
    _record(rig.result("detect x2 (+audit x3): leave, SIGKILL, rejoin", recovery), rig)

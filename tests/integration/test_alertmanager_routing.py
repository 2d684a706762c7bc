"""alerts/alertmanager.yml on a real Alertmanager: routing by severity and model, grouping,
inhibition and silences, read back from its v2 API and from the notifications its webhook
receivers deliver to a loopback listener.

The stack's own Alertmanager runs the stack's generated configuration and is shared with other
test sessions, so this test starts the same binary with the project's configuration, changed
only in the webhook address (the test's listener) and the timers (seconds instead of minutes).
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.optional import env_flag
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "alerts" / "alertmanager.yml"
PLACEHOLDER = "http://127.0.0.1:19095"


def unavailable(message: str) -> None:
    """Skip, or fail under CI / INFERWATCH_REQUIRE_STACK=1 (as the conftest's fixtures do)."""
    if env_flag("CI") or env_flag("INFERWATCH_REQUIRE_STACK"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _tool(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    unavailable(f"{names[0]} is not installed (Debian's prometheus-alertmanager; `python -m stack up` installs it)")
    raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Webhook:
    """A loopback receiver of Alertmanager's webhook notifications: (receiver path, payload)."""

    url: str = ""
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def notifications(self, receiver: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [body for path, body in self.received if receiver in (None, path.strip("/"))]

    def alerts(self, receiver: str | None = None, **labels: str) -> list[dict[str, Any]]:
        return [a for n in self.notifications(receiver) for a in n["alerts"]
                if all(a["labels"].get(k) == v for k, v in labels.items())]


@dataclass
class PrivateAlertmanager:
    url: str
    webhook: Webhook
    config: Path

    def post(self, *alerts: dict[str, Any]) -> None:
        r = httpx.post(f"{self.url}/api/v2/alerts", json=list(alerts), timeout=10)
        assert r.status_code == 200, r.text

    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        flt = [f'{k}="{v}"' for k, v in labels.items()]
        r = httpx.get(f"{self.url}/api/v2/alerts", params=[("filter", f) for f in flt], timeout=10)
        assert r.status_code == 200, r.text
        out: list[dict[str, Any]] = r.json()
        return out

    def groups(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v2/alerts/groups", timeout=10)
        assert r.status_code == 200, r.text
        out: list[dict[str, Any]] = r.json()
        return out


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    return wait_until(check, timeout, what, every=0.2)


def test_config_checks_and_routes_with_amtool():
    amtool = _tool("amtool")
    check = subprocess.run([amtool, "check-config", str(CONFIG)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr

    def route(*labels: str) -> str:
        out = subprocess.run([amtool, "config", "routes", "test", f"--config.file={CONFIG}", *labels],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert route("severity=critical", "model=fraud-scorer") == "oncall-pager,team-risk"
    assert route("severity=critical", "alertname=InferwatchTargetDown", "instance=a") == "oncall-pager"
    assert route("severity=warning", "model=credit-limits") == "team-risk"
    assert route("severity=warning", "model=fraud") == "ml-platform"  # "fraud-" needs a suffix
    assert route("severity=warning", "model=iris") == "ml-platform"
    assert route("severity=warning", "alertname=InferwatchConsumerLagHigh") == "platform-default"


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[PrivateAlertmanager]:
    binary = _tool("prometheus-alertmanager", "alertmanager")
    hook = Webhook()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with hook.lock:
                hook.received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}"

    text = CONFIG.read_text()
    assert PLACEHOLDER in text
    text = text.replace(PLACEHOLDER, hook.url)
    # timers only: seconds instead of minutes, so a test sees the first and the next notification
    text = re.sub(r"(group_wait|group_interval): \d+[sm]", r"\1: 1s", text)
    text = re.sub(r"repeat_interval: \d+[hm]", "repeat_interval: 1h", text)
    config = tmp_path / "alertmanager.yml"
    config.write_text(text)
    port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "alertmanager.log", "wb"))  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()
            try:
                return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the private Alertmanager ready", ready, timeout=60)
        yield PrivateAlertmanager(url, hook, config)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        server.shutdown()
        server.server_close()


def _alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"labels": {"alertname": name, "severity": severity, **labels},
            "annotations": {"summary": f"{name} (test)"},
            "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat()}


def test_routing_grouping_inhibition_and_silences(alertmanager: PrivateAlertmanager):
    am, hook = alertmanager, alertmanager.webhook
    run = uuid.uuid4().hex[:8]
    risk_model, other_model, quiet_model = f"fraud-{run}", f"iris-{run}", f"silenced-{run}"

    # a silence first: nothing for quiet_model may be delivered
    now = datetime.now(UTC)
    r = httpx.post(f"{am.url}/api/v2/silences", timeout=10, json={
        "matchers": [{"name": "model", "value": quiet_model, "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "test", "comment": "maintenance"})
    assert r.status_code == 200, r.text
    silence_id = r.json()["silenceID"]

    # phase 1, no process down: model alerts
    am.post(
        # a risk-team model: two drift detectors of one version (one group), and a critical alert
        _alert("InferwatchDriftDetected", "warning", model=risk_model, version="v1", detector="ks"),
        _alert("InferwatchDriftDetected", "warning", model=risk_model, version="v1", detector="mmd"),
        _alert("InferwatchModelSilent", "critical", model=risk_model),
        # another model: a data-quality violation inhibits drift of the same version, not of another
        _alert("InferwatchDataQualityViolation", "warning", model=other_model, version="v2", detector="quality"),
        _alert("InferwatchDriftDetected", "warning", model=other_model, version="v2", detector="ks"),
        _alert("InferwatchDriftDetected", "warning", model=other_model, version="v3", detector="ks"),
        _alert("InferwatchDriftDetected", "warning", model=quiet_model, version="v1", detector="ks"),
    )
    wait_for("the critical alert paged", lambda: hook.alerts("oncall-pager", model=risk_model))
    # phase 2: a process down (critical), warnings of it and of another process, another model silent
    am.post(
        _alert("InferwatchTargetDown", "critical", instance=f"p1-{run}", job="inferwatch"),
        _alert("InferwatchAuditRetrying", "warning", instance=f"p1-{run}", store="ElasticsearchAuditStore"),
        _alert("InferwatchAuditRetrying", "warning", instance=f"p2-{run}", store="ElasticsearchAuditStore"),
        _alert("InferwatchModelSilent", "critical", model=f"gone-{run}"),
    )

    def delivered() -> bool:
        return (len(hook.alerts("team-risk", alertname="InferwatchDriftDetected")) >= 2
                and hook.alerts("oncall-pager", model=risk_model) != []
                and hook.alerts("team-risk", alertname="InferwatchModelSilent") != []
                and hook.alerts("ml-platform", version="v3") != []
                and hook.alerts("ml-platform", alertname="InferwatchDataQualityViolation") != []
                and hook.alerts("platform-default", instance=f"p2-{run}") != []
                and hook.alerts("oncall-pager", instance=f"p1-{run}") != [])

    try:
        wait_for("every expected notification", delivered)
    except AssertionError as exc:
        got = [(p, [a["labels"] for a in b["alerts"]]) for p, b in hook.received]
        raise AssertionError(f"{exc}; delivered: {got}") from None

    # routing by severity and model
    assert {a["labels"]["detector"] for a in hook.alerts("team-risk", alertname="InferwatchDriftDetected")} == {
        "ks", "mmd"}
    assert not hook.alerts("ml-platform", model=risk_model) and not hook.alerts("platform-default", model=risk_model)
    # critical: paged, and (continue) the model's team hears it too
    assert hook.alerts("oncall-pager", model=risk_model)[0]["labels"]["alertname"] == "InferwatchModelSilent"
    assert hook.alerts("team-risk", alertname="InferwatchModelSilent")[0]["labels"]["model"] == risk_model

    # grouping: the two detectors of one model version arrive in one notification
    risk_drift = [n for n in hook.notifications("team-risk")
                  if n["groupLabels"].get("alertname") == "InferwatchDriftDetected"]
    assert len(risk_drift) == 1 and len(risk_drift[0]["alerts"]) == 2
    assert risk_drift[0]["groupLabels"] == {"alertname": "InferwatchDriftDetected", "model": risk_model,
                                            "version": "v1"}
    groups = [g for g in am.groups() if g["labels"].get("model") == risk_model
              and g["labels"].get("alertname") == "InferwatchDriftDetected"]
    assert len(groups) == 1 and len(groups[0]["alerts"]) == 2 and groups[0]["receiver"]["name"] == "team-risk"

    # inhibition: p1 is down, so p1's warning is suppressed (p2's is not); model-silent alerts are
    # suppressed by any process being down, critical or not
    (p1_retry,) = am.alerts(alertname="InferwatchAuditRetrying", instance=f"p1-{run}")
    assert p1_retry["status"]["state"] == "suppressed" and p1_retry["status"]["inhibitedBy"]
    (p2_retry,) = am.alerts(alertname="InferwatchAuditRetrying", instance=f"p2-{run}")
    assert p2_retry["status"]["state"] == "active"
    (gone,) = am.alerts(alertname="InferwatchModelSilent", model=f"gone-{run}")
    assert gone["status"]["state"] == "suppressed" and gone["status"]["inhibitedBy"]
    assert not hook.alerts(None, instance=f"p1-{run}", alertname="InferwatchAuditRetrying")
    assert not hook.alerts(None, model=f"gone-{run}")
    # ... and the data-quality violation of iris v2 suppresses its drift, not v3's
    (v2_drift,) = am.alerts(alertname="InferwatchDriftDetected", model=other_model, version="v2")
    (v3_drift,) = am.alerts(alertname="InferwatchDriftDetected", model=other_model, version="v3")
    assert v2_drift["status"]["state"] == "suppressed" and v3_drift["status"]["state"] == "active"
    assert not hook.alerts(None, model=other_model, version="v2", alertname="InferwatchDriftDetected")

    # the silence: suppressed by it, never delivered
    (quiet,) = am.alerts(model=quiet_model)
    assert quiet["status"]["state"] == "suppressed" and quiet["status"]["silencedBy"] == [silence_id]
    assert not hook.alerts(None, model=quiet_model)


# --- the direct Alertmanager sink and the rules' alerts: one alert, one notification ---------------


@pytest.fixture
def rule_evaluator(tmp_path: Path, alertmanager: PrivateAlertmanager) -> Iterator[tuple[str, Any]]:
    """A private Prometheus with the project's rules (``for:`` durations set to 0s, the only change)
    scraping a loopback /metrics of an inferwatch :class:`Metrics` registry, and sending its alerts
    to the private Alertmanager. Yields (Prometheus URL, the Metrics)."""
    binary = _tool("prometheus")
    from prometheus_client import generate_latest

    from inferwatch.metrics import Metrics

    metrics = Metrics()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = generate_latest(metrics.registry)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rules = tmp_path / "rules.yml"
    rules.write_text(re.sub(r"\bfor: \S+", "for: 0s", (ROOT / "alerts" / "inferwatch.rules.yml").read_text()))
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s",
                   "external_labels": {"stack": "views-test"}},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager.url.split("//")[1]]}]}]},
        "scrape_configs": [{"job_name": "inferwatch", "static_configs": [
            {"targets": [f"127.0.0.1:{server.server_address[1]}"]}]}],
    }))
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the private Prometheus ready", ready, timeout=60)
        yield url, metrics
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        server.shutdown()
        server.server_close()


def _notifications_sent(prom: str) -> float:
    text = httpx.get(f"{prom}/metrics", timeout=10).text
    m = re.search(r"^prometheus_notifications_sent_total\{[^}]*\} (\S+)$", text, re.M)
    return float(m[1]) if m else 0.0


def _rule_state(prom: str, model: str) -> str:
    alerts = httpx.get(f"{prom}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    states = {a["state"] for a in alerts if a["labels"].get("model") == model}
    return states.pop() if len(states) == 1 else ("inactive" if not states else "mixed")


@pytest.mark.parametrize("kind", ["drift", "quality"])
def test_direct_sink_and_rule_alert_are_one_alert_and_resolve_together(alertmanager, rule_evaluator, kind):
    from inferwatch.record import Detection
    from sinks.alertmanager import AlertSink

    am, hook = alertmanager, alertmanager.webhook
    prom, metrics = rule_evaluator
    model = f"dedup-{uuid.uuid4().hex[:8]}"
    alertname = {"drift": "InferwatchDriftDetected", "quality": "InferwatchDataQualityViolation"}[kind]
    sink = AlertSink(alertmanager_url=am.url, extra_labels={"stack": "views-test"})

    def detection(fired: bool) -> Detection:
        return Detection(detector="ks" if kind == "drift" else "quality", kind=kind, model=model, version="v1",
                         window_size=100, is_drift=fired, p_value=1e-6 if fired else 0.4,
                         window_start=datetime.now(UTC) - timedelta(seconds=5), window_end=datetime.now(UTC),
                         feature_drift={"f0": fired})

    try:
        # a window fires: the metrics (and through them the rule) and the direct sink both see it
        fired = detection(True)
        metrics.observe_detection(fired)
        sent_before = _notifications_sent(prom)
        assert sink.write([fired]) == 1
        wait_for("the rule firing", lambda: _rule_state(prom, model) == "firing")
        wait_for("Prometheus's alert sent", lambda: _notifications_sent(prom) > sent_before)
        wait_for("the firing notification", lambda: hook.alerts(None, model=model))
        (alert,) = am.alerts(model=model)  # one alert: the two sources' label sets are the same
        assert alert["labels"] == {"alertname": alertname, "model": model, "version": "v1",
                                   "detector": fired.detector, "severity": "warning", "stack": "views-test"}
        assert alert["status"]["state"] == "active"

        # the next window is clean: the sink resolves at once, the rule when the gauge reads 0
        clean = detection(False)
        metrics.observe_detection(clean)
        assert sink.write([clean]) == 1  # the resolution
        wait_for("the resolved notification", lambda: [
            n for n in hook.notifications() if n["status"] == "resolved"
            and any(a["labels"]["model"] == model for a in n["alerts"])])
        wait_for("the rule inactive", lambda: _rule_state(prom, model) == "inactive")
        assert not [a for a in am.alerts(model=model) if a["status"]["state"] == "active"]
        ours = [n for n in hook.notifications() if any(a["labels"]["model"] == model for a in n["alerts"])]
        assert [(n["status"], len(n["alerts"])) for n in ours] == [("firing", 1), ("resolved", 1)]
        # a clean window that follows a clean window posts nothing
        assert sink.write([detection(False)]) == 0
    finally:
        sink.close()

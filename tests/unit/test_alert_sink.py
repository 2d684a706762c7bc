"""The direct Alertmanager sink: label sets equal to the rules' alerts, resolution of what it
raised, and no lost resolution when a post fails (a loopback stand-in of ``/api/v2/alerts``)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from inferwatch.errors import BackpressureError
from inferwatch.record import Detection
from sinks.alertmanager import AlertSink, alert_labels


@pytest.fixture
def am() -> Iterator[tuple[list[list[dict[str, Any]]], list[int], str]]:
    posts: list[list[dict[str, Any]]] = []
    status = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert self.path == "/api/v2/alerts"
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if status[0] == 200:
                posts.append(body)
            self.send_response(status[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield posts, status, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _det(fired: bool, detector: str = "ks", version: str | None = "v1", kind: str = "drift") -> Detection:
    return Detection(detector=detector, kind=kind, model="iris", version=version, is_drift=fired,  # type: ignore[arg-type]
                     window_size=50, window_end=datetime.now(UTC), p_value=1e-5 if fired else 0.5)


def _state(alert: dict[str, Any]) -> str:
    ends = datetime.fromisoformat(alert["endsAt"])
    return "resolved" if ends <= datetime.now(UTC) else "active"


def test_fire_then_resolve_once(am):
    posts, _, url = am
    sink = AlertSink(url, extra_labels={"cluster": "eu"})
    assert sink.write([_det(True)]) == 1
    assert sink.write([_det(False)]) == 1
    assert sink.write([_det(False)]) == 0  # nothing of ours is active any more
    (fired,), (resolved,) = posts
    assert fired["labels"] == resolved["labels"] == {"alertname": "InferwatchDriftDetected", "model": "iris",
                                                     "version": "v1", "detector": "ks", "severity": "warning",
                                                     "cluster": "eu"}
    assert _state(fired) == "active" and _state(resolved) == "resolved"
    assert fired["annotations"]["kind"] == "drift" and "detection_id" in fired["annotations"]


def test_a_clean_window_of_another_detector_resolves_nothing(am):
    posts, _, url = am
    sink = AlertSink(url)
    sink.write([_det(True, "ks")])
    assert sink.write([_det(False, "mmd"), _det(False, "ks", version="v2")]) == 0
    assert sink.write([_det(False, "ks")]) == 1
    assert [a["labels"]["detector"] for batch in posts for a in batch] == ["ks", "ks"]


def test_fired_and_clean_in_one_batch_end_resolved(am):
    posts, _, url = am
    sink = AlertSink(url)
    assert sink.write([_det(True), _det(False)]) == 2
    assert [_state(a) for a in posts[0]] == ["active", "resolved"]
    assert sink.write([_det(False)]) == 0


def test_a_failed_resolution_is_posted_when_the_detection_comes_again(am):
    """Alertmanager down: backpressure, the detections stay uncommitted on the log, and their
    redelivery posts the resolution (nothing was forgotten in between)."""
    posts, status, url = am
    sink = AlertSink(url, max_retries=0)
    sink.write([_det(True)])
    status[0] = 503
    clean = _det(False)
    with pytest.raises(BackpressureError):
        sink.write([clean])
    status[0] = 200
    assert sink.write([clean]) == 1
    assert _state(posts[-1][0]) == "resolved"


def test_labels_match_the_rules_for_drift_and_quality():
    """The rule's alert carries the rule's labels plus the `by` labels of its expression; the
    sink's must be the same set (an empty version is no label at all in Prometheus)."""
    from pathlib import Path

    rules = yaml.safe_load((Path(__file__).parents[2] / "alerts" / "inferwatch.rules.yml").read_text())
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    for kind, name in (("drift", "InferwatchDriftDetected"), ("quality", "InferwatchDataQualityViolation")):
        rule = by_name[name]
        assert "max by (model, version, detector)" in rule["expr"]
        want = {"alertname", "model", "version", "detector", *rule["labels"]}
        labels = alert_labels(_det(True, kind=kind))
        assert set(labels) == want and labels["severity"] == rule["labels"]["severity"]
        assert "version" not in alert_labels(_det(True, kind=kind, version=None))

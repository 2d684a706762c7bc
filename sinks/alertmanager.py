"""Direct alerts: fired detections pushed to Alertmanager's v2 API, or to a plain webhook.

Prometheus rules in alerts/ are the main alerting path (they see the metrics); this sink is
for setups without Prometheus and for alerts that should carry the detection's details.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx

from inferwatch.record import Detection

__all__ = ["AlertSink", "detection_alert"]

log = logging.getLogger("inferwatch.alerts")


def detection_alert(d: Detection, resolve_after_s: float = 300.0) -> dict[str, Any]:
    """The Alertmanager v2 alert for one fired detection."""
    name = {"drift": "InferwatchDrift", "outlier": "InferwatchOutliers",
            "performance": "InferwatchPerformance", "quality": "InferwatchDataQuality"}[d.kind]
    features = ", ".join(d.drifted_features[:10])
    start = d.window_end or d.timestamp
    return {
        "labels": {"alertname": name, "model": d.model, "version": d.version or "", "detector": d.detector,
                   "kind": d.kind, "severity": "warning", "source": "inferwatch"},
        "annotations": {
            "summary": f"{d.detector} fired for model {d.model} ({d.kind})",
            "description": (f"window of {d.window_size} rows ending {start.isoformat() if start else '?'}; "
                            f"p-value {d.p_value}; distance {d.distance}; threshold {d.threshold}"
                            + (f"; features: {features}" if features else "")),
            "detection_id": d.id,
        },
        "startsAt": start.isoformat() if start else None,
        "endsAt": (start + timedelta(seconds=resolve_after_s)).isoformat() if start else None,
    }


class AlertSink:
    """A :class:`~inferwatch.sink.DetectionSink` posting fired detections to Alertmanager
    (``/api/v2/alerts``) and/or a webhook."""

    name = "alertmanager"

    def __init__(self, alertmanager_url: str | None = None, webhook_url: str | None = None,
                 resolve_after_s: float = 300.0, timeout: float = 5.0):
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
        self.webhook_url = webhook_url
        self.resolve_after_s = resolve_after_s
        self._client = httpx.Client(timeout=timeout)

    @property
    def enabled(self) -> bool:
        return bool(self.alertmanager_url or self.webhook_url)

    def write(self, detections: Sequence[Detection]) -> int:
        """Send the fired ones; returns how many alerts were posted. Failures are logged, not raised:
        the detections themselves are already durable on the log and in the metrics."""
        fired = [d for d in detections if d.fired]
        if not fired or not self.enabled:
            return 0
        alerts = [detection_alert(d, self.resolve_after_s) for d in fired]
        try:
            if self.alertmanager_url:
                self._client.post(f"{self.alertmanager_url}/api/v2/alerts", json=alerts).raise_for_status()
            if self.webhook_url:
                self._client.post(self.webhook_url, json={"alerts": alerts}).raise_for_status()
        except httpx.HTTPError as exc:
            log.error("could not post %d alert(s): %s", len(alerts), exc)
            return 0
        log.info("posted %d alert(s)", len(alerts))
        return len(alerts)

    def close(self) -> None:
        self._client.close()

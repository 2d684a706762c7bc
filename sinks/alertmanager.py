"""Direct alerts: fired detections pushed to Alertmanager's v2 API, or to a plain webhook.

Prometheus rules in alerts/ are the main alerting path (they see the metrics); this sink is
for setups without Prometheus and for alerts that should carry the detection's details.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import httpx

from inferwatch.batching import BatchingSink, ItemStatus, WriteAction
from inferwatch.errors import BackpressureError
from inferwatch.record import DeadLetter, Detection

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


class _Post(BatchingSink):
    """Alertmanager's v2 API and/or a webhook as a :class:`~inferwatch.batching.BatchingSink`."""

    def __init__(self, owner: AlertSink, max_retries: int, max_backoff_s: float,
                 on_deadletter: Callable[[list[DeadLetter]], None] | None):
        super().__init__(name="alertmanager", chunk_actions=500, max_retries=max_retries,
                         max_backoff_s=max_backoff_s, on_deadletter=on_deadletter)
        self.owner = owner

    def send(self, chunk: Sequence[WriteAction]) -> list[ItemStatus] | None:
        alerts = [a.doc for a in chunk]
        client, am, hook = self.owner._client, self.owner.alertmanager_url, self.owner.webhook_url
        try:
            if am:
                client.post(f"{am}/api/v2/alerts", json=alerts).raise_for_status()
            if hook:
                client.post(hook, json={"alerts": alerts}).raise_for_status()
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            log.warning("alerts answered %d: %s", status, exc.response.text[:500])
            return [(status, f"HTTP {status}: {exc.response.text[:500]}")] * len(chunk)
        except httpx.HTTPError as exc:
            raise BackpressureError(f"cannot post alerts: {exc}") from exc
        log.info("posted %d alert(s)", len(alerts))
        return None


class AlertSink:
    """A :class:`~inferwatch.sink.DetectionSink` posting fired detections to Alertmanager
    (``/api/v2/alerts``) and/or a webhook, through the one batching sink: chunks of alerts,
    429/5xx and unreachable services retried with backoff and then
    :class:`~inferwatch.errors.BackpressureError` (the detections stay on the log, uncommitted by
    the alert consumer); an alert the service refuses (4xx) becomes a dead letter.

    It is not fed inline by the detect worker (``inline = False``): the pipeline runs it as its own
    consumer of the detections topic, committing only after the alerts were posted.
    """

    name = "alertmanager"
    inline = False

    def __init__(self, alertmanager_url: str | None = None, webhook_url: str | None = None,
                 resolve_after_s: float = 300.0, timeout: float = 5.0, *, max_retries: int = 3,
                 max_backoff_s: float = 5.0, on_deadletter: Callable[[list[DeadLetter]], None] | None = None):
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
        self.webhook_url = webhook_url
        self.resolve_after_s = resolve_after_s
        self._client = httpx.Client(timeout=timeout)
        self._post = _Post(self, max_retries, max_backoff_s, on_deadletter)

    @property
    def enabled(self) -> bool:
        return bool(self.alertmanager_url or self.webhook_url)

    def write(self, detections: Sequence[Detection]) -> int:
        """Post the fired ones; returns how many alerts were posted (see the class docstring for failures)."""
        if not self.enabled:
            return 0
        return self._post.write(WriteAction("index", "alerts", d.id, detection_alert(d, self.resolve_after_s), d)
                                for d in detections if d.fired)

    def close(self) -> None:
        self._post.close()
        self._client.close()

"""Direct alerts: detections pushed to Alertmanager's v2 API, or to a plain webhook.

Prometheus rules in alerts/ are the main alerting path (they see the metrics); this sink is
for setups without Prometheus and for alerts that should carry the detection's details. Where
both run, they must not page twice: a drift or data-quality alert of this sink has exactly the
labels of the matching rule's alert (``alertname``, ``model``, ``version`` when not empty,
``detector``, ``severity``, plus ``extra_labels`` — set them to Prometheus's
``external_labels``), so Alertmanager keeps one alert and sends one notification; the
detection's details go to annotations.

A window that fired makes the alert active (until ``resolve_after_s`` unless seen again); the
next clean window of the same detector, model and version resolves it at once (``endsAt`` =
now). The sink remembers what it made active in this process: after a restart, an alert it
raised before expires by its ``endsAt`` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from inferwatch.batching import BatchingSink, ItemStatus, Settled, WriteAction, refused_letters
from inferwatch.errors import BackpressureError, RequestRefused
from inferwatch.record import DeadLetter, Detection

__all__ = ["AlertSink", "detection_alert"]

log = logging.getLogger("inferwatch.alerts")

#: alert names per detection kind; drift and quality match alerts/inferwatch.rules.yml
ALERTNAMES = {"drift": "InferwatchDriftDetected", "quality": "InferwatchDataQualityViolation",
              "outlier": "InferwatchOutliers", "performance": "InferwatchPerformanceDrop"}  # alerts/performance.rules.yml


def alert_labels(d: Detection, extra_labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """The identifying labels: what the rule's alert for the same window would carry.

    >>> alert_labels(Detection(detector="ks", kind="drift", model="iris"))
    {'alertname': 'InferwatchDriftDetected', 'model': 'iris', 'detector': 'ks', 'severity': 'warning'}
    """
    labels = {"alertname": ALERTNAMES[d.kind], "model": d.model}
    if d.version:  # Prometheus drops empty labels: a rule's alert has no version="" either
        labels["version"] = d.version
    labels.update({"detector": d.detector, "severity": "warning", **(extra_labels or {})})
    return labels


def detection_alert(d: Detection, resolve_after_s: float = 300.0, *, extra_labels: Mapping[str, str] | None = None,
                    resolved: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """The Alertmanager v2 alert for one detection: active for ``resolve_after_s`` from ``now``,
    or resolved at ``now``."""
    now = now or datetime.now(UTC)
    features = ", ".join(d.drifted_features[:10])
    start = d.window_start or d.window_end or d.timestamp
    end = d.window_end or d.timestamp
    return {
        "labels": alert_labels(d, extra_labels),
        "annotations": {
            "summary": f"{d.detector} {'is clean again' if resolved else 'fired'} for model {d.model} ({d.kind})",
            "description": (f"window of {d.window_size} rows ending {end.isoformat() if end else '?'}; "
                            f"p-value {d.p_value}; distance {d.distance}; threshold {d.threshold}"
                            + (f"; features: {features}" if features else "")),
            "kind": d.kind,
            "detection_id": d.id,
            "source": "inferwatch",
        },
        "startsAt": min(start, now).isoformat() if start else now.isoformat(),
        "endsAt": (now if resolved else now + timedelta(seconds=resolve_after_s)).isoformat(),
    }


class _Post:
    """One write's alerts as the engine's :class:`~inferwatch.batching.Transport`: Alertmanager's v2
    API and/or a webhook. A 400 or 413 refuses the whole post: the engine splits it until the
    alert refused is alone."""

    def __init__(self, owner: AlertSink, actions: list[WriteAction]):
        self.owner = owner
        self.actions = actions

    def settle(self, position: int, status: int) -> Settled:
        return "refused"

    def send(self, positions: Sequence[int]) -> list[ItemStatus] | None:
        alerts = [self.actions[p].doc for p in positions]
        client, am, hook = self.owner._client, self.owner.alertmanager_url, self.owner.webhook_url
        try:
            if am:
                client.post(f"{am}/api/v2/alerts", json=alerts).raise_for_status()
            if hook:
                client.post(hook, json={"alerts": alerts}).raise_for_status()
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            log.warning("alerts answered %d: %s", status, exc.response.text[:500])
            if status in (400, 413):
                raise RequestRefused(status, f"HTTP {status}: {exc.response.text[:500]}") from exc
            return [(status, f"HTTP {status}: {exc.response.text[:500]}")] * len(positions)
        except httpx.HTTPError as exc:
            raise BackpressureError(f"cannot post alerts: {exc}") from exc
        log.info("posted %d alert(s)", len(alerts))
        return None


class AlertSink:
    """A :class:`~inferwatch.sink.DetectionSink` posting fired detections, and the resolution of
    what it raised, to Alertmanager (``/api/v2/alerts``) and/or a webhook, through the one
    batching sink: chunks of alerts, 429/5xx and unreachable services retried with backoff and then
    :class:`~inferwatch.errors.BackpressureError` (the detections stay on the log, uncommitted by
    the alert consumer, and come again); an alert the service refuses (4xx) becomes a dead letter.

    It is not fed inline by the detect worker (``inline = False``): the pipeline runs it as its own
    consumer of the detections topic, committing only after the alerts were posted.
    """

    name = "alertmanager"
    inline = False

    def __init__(self, alertmanager_url: str | None = None, webhook_url: str | None = None,
                 resolve_after_s: float = 300.0, timeout: float = 5.0, *, max_retries: int = 3,
                 max_backoff_s: float = 5.0, on_deadletter: Callable[[list[DeadLetter]], None] | None = None,
                 extra_labels: Mapping[str, str] | None = None):
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
        self.webhook_url = webhook_url
        self.resolve_after_s = resolve_after_s
        self.extra_labels = dict(extra_labels or {})
        self._active: set[tuple[tuple[str, str], ...]] = set()  # label sets this sink made active
        self._client = httpx.Client(timeout=timeout)
        self.on_deadletter = on_deadletter
        self._engine = BatchingSink(name="alertmanager", chunk_actions=500, max_retries=max_retries,
                                    max_backoff_s=max_backoff_s)

    @property
    def enabled(self) -> bool:
        return bool(self.alertmanager_url or self.webhook_url)

    def write(self, detections: Sequence[Detection]) -> int:
        """Post the fired detections and resolve the clean ones this sink raised before; returns
        how many alerts were posted (see the class docstring for failures: on
        :class:`~inferwatch.errors.BackpressureError` nothing is remembered, and the redelivered
        detections post again)."""
        if not self.enabled:
            return 0
        now = datetime.now(UTC)
        active = set(self._active)
        actions = []
        for d in detections:  # in order: a window that fires and a later clean one in one batch resolve
            key = tuple(sorted(alert_labels(d, self.extra_labels).items()))
            if d.fired:
                doc = detection_alert(d, self.resolve_after_s, extra_labels=self.extra_labels, now=now)
                active.add(key)
            elif key in active:
                doc = detection_alert(d, self.resolve_after_s, extra_labels=self.extra_labels, resolved=True, now=now)
                active.discard(key)
            else:
                continue
            actions.append(WriteAction("index", "alerts", d.id, doc, d))
        if not actions:
            return 0
        post = _Post(self, actions)
        out = self._engine.write([0] * len(actions), post)
        if out.refused:
            letters = refused_letters(actions, out, source="alertmanager", prefix="alertmanager")
            if self.on_deadletter is not None:
                self.on_deadletter(letters)
        self._active = active
        return out.written

    def close(self) -> None:
        self._client.close()

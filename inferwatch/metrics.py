"""The pipeline's Prometheus metrics: one registry per pipeline, scraped at ``/metrics``.

A shared service of the core: collectors count what they receive, the workers what they write,
and the metrics sink (``sinks.prometheus``) exports detections onto the same registry.

Names follow Prometheus rules: ``inferwatch_`` prefix, ``_total`` counters, units in names.
Labels are bounded: ``model``, ``version``, ``detector``, ``source``, ``stage``, ``group`` and,
for per-feature drift gauges only, ``feature``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client.exposition import push_to_gateway

from inferwatch.record import Detection

__all__ = ["CONTENT_TYPE", "Metrics"]


class Metrics:
    """All inferwatch metrics on one registry.

    >>> m = Metrics()
    >>> m.received.labels(source="http").inc()
    >>> b"inferwatch_records_received_total" in m.exposition()
    True
    """

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "inferwatch_records_received", "Payloads received by collectors.", ["source"], registry=r
        )
        self.decoded = Counter(
            "inferwatch_records_decoded", "Records decoded and appended to the log.", ["model", "version"],
            registry=r,
        )
        self.rows = Counter(
            "inferwatch_rows_decoded", "Rows decoded (a batch request of N rows counts N).",
            ["model", "version"], registry=r,
        )
        self.deadlettered = Counter(
            "inferwatch_records_deadlettered", "Payloads sent to the dead letters.", ["source", "stage"],
            registry=r,
        )
        self.audited = Counter(
            "inferwatch_audit_documents", "Audit documents durably written.", ["store"], registry=r
        )
        self.audit_retries = Counter(
            "inferwatch_audit_retries", "Audit writes retried after backpressure or outage.", ["store"],
            registry=r,
        )
        self.lag = Gauge(
            "inferwatch_consumer_lag_records", "Log messages not yet committed by a consumer group.",
            ["group"], registry=r,
        )
        self.windows = Counter(
            "inferwatch_detector_windows", "Windows tested by detectors.",
            ["model", "version", "detector", "kind"], registry=r,
        )
        self.detections = Counter(
            "inferwatch_detections", "Windows in which a detector fired.",
            ["model", "version", "detector", "kind"], registry=r,
        )
        self.drift_detected = Gauge(
            "inferwatch_drift_detected", "1 if the last window drifted, else 0.",
            ["model", "version", "detector"], registry=r,
        )
        self.drift_p_value = Gauge(
            "inferwatch_drift_p_value", "Overall p-value of the last window (corrected threshold applies).",
            ["model", "version", "detector"], registry=r,
        )
        self.drift_distance = Gauge(
            "inferwatch_drift_distance", "Overall distance statistic of the last window.",
            ["model", "version", "detector"], registry=r,
        )
        self.feature_p_value = Gauge(
            "inferwatch_drift_feature_p_value", "Per-feature p-value of the last window.",
            ["model", "version", "detector", "feature"], registry=r,
        )
        self.outlier_rate = Gauge(
            "inferwatch_outlier_ratio", "Share of rows flagged as outliers in the last window.",
            ["model", "version", "detector"], registry=r,
        )
        self.collector_latency = Histogram(
            "inferwatch_collector_request_duration_seconds", "Collector request handling time (to durable append).",
            registry=r, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

    def observe_detection(self, d: Detection) -> None:
        """Export one :class:`Detection` (any detector, no special cases)."""
        labels = {"model": d.model, "version": d.version or "", "detector": d.detector}
        self.windows.labels(kind=d.kind, **labels).inc()
        if d.fired:
            self.detections.labels(kind=d.kind, **labels).inc()
        if d.kind in ("drift", "performance", "quality"):
            self.drift_detected.labels(**labels).set(1.0 if d.is_drift else 0.0)
            if d.p_value is not None:
                self.drift_p_value.labels(**labels).set(d.p_value)
            if d.distance is not None:
                self.drift_distance.labels(**labels).set(d.distance)
            for feature, p in d.feature_p_values.items():
                self.feature_p_value.labels(feature=feature, **labels).set(p)
        elif d.kind == "outlier" and d.scores and d.threshold is not None:
            flagged = sum(1 for s in d.scores if s > d.threshold)
            self.outlier_rate.labels(**labels).set(flagged / len(d.scores))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def push(self, gateway: str, job: str = "inferwatch", grouping_key: dict[str, str] | None = None) -> None:
        """Push the registry to a Pushgateway (batch jobs)."""
        push_to_gateway(gateway, job=job, registry=self.registry,
                        grouping_key=grouping_key or {})

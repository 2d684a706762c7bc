"""The pipeline's Prometheus metrics: one registry per pipeline, scraped at ``/metrics``.

A shared service of the core: collectors count what they receive, the workers what they write,
and the metrics sink (``sinks.prometheus``) exports detections onto the same registry.

Names follow Prometheus rules: ``inferwatch_`` prefix, ``_total`` counters, units in names.
Labels are bounded: ``model``, ``version``, ``detector``, ``source``, ``stage``, ``group``,
``store``, ``check``; the labels whose values come from the data — ``feature``, ``output`` and
``class`` — are capped per model version (:class:`~inferwatch.series_cap.SeriesCap`: the first
``series_cap`` values, the rest under ``_other``, the first refusal logged and every one counted
in ``inferwatch_series_capped_total``).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter as Counter_
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client.exposition import push_to_gateway

from inferwatch.record import Detection
from inferwatch.series_cap import OTHER, SeriesCap
from inferwatch.table import Table

__all__ = ["CONTENT_TYPE", "Metrics"]

#: buckets of numeric predictions: fine over [0, 1] (probabilities, scores), coarse elsewhere
PREDICTION_BUCKETS = (-1e4, -1e3, -100.0, -10.0, -1.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
                      2.0, 5.0, 10.0, 100.0, 1e3, 1e4, 1e5)
#: outlier score / the detector's threshold: 1 is the threshold, whatever the detector's scale
OUTLIER_RATIO_BUCKETS = (0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
#: collector append to audit document written (searchable after the store's refresh, 1 s)
SEARCHABLE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
#: data-quality findings (detectors.quality issues, monitor schema detections) -> check label
QUALITY_CHECKS = {"missing_values": "missing", "out_of_range": "out_of_range", "unseen_categories": "unseen_category",
                  "missing_column": "schema", "new_column": "schema", "kind_changed": "schema"}


#: ``inferwatch_model_performance{metric=...}``: exported name -> the detection's figures that give
#: it, first found wins (a bounded set; per-class figures stay on the detections). ``precision``,
#: ``recall`` and ``f1`` are the positive class's for two classes and macro averages for more.
PERFORMANCE_METRICS: dict[str, tuple[str, ...]] = {
    "accuracy": ("accuracy",), "precision": ("precision", "precision_macro"),
    "recall": ("recall", "recall_macro"), "f1": ("f1", "f1_macro"), "roc_auc": ("roc_auc",),
    "log_loss": ("log_loss",), "calibration_error": ("ece",),
    "mae": ("mae",), "rmse": ("rmse",), "mape": ("mape",), "r2": ("r2",),
}


class Metrics:
    """All inferwatch metrics on one registry.

    >>> m = Metrics()
    >>> m.received.labels(source="http").inc()
    >>> b"inferwatch_records_received_total" in m.exposition()
    True
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, series_cap: int = 50):
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
        self.audit_retried_records = Counter(
            "inferwatch_audit_retried_records",
            "Records in audit writes retried after backpressure or an outage, per model (once per retry).",
            ["model", "version"], registry=r,
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
            "inferwatch_drift_feature_p_value",
            "Per-feature p-value of the last window (features past the cap: the smallest of theirs, as _other).",
            ["model", "version", "detector", "feature"], registry=r,
        )
        self.outlier_rate = Gauge(
            "inferwatch_outlier_ratio", "Share of rows flagged as outliers in the last window.",
            ["model", "version", "detector"], registry=r,
        )
        self.outlier_score = Histogram(
            "inferwatch_outlier_score_threshold_ratio",
            "Outlier scores of scored rows divided by the detector's threshold (above 1: an outlier).",
            ["model", "version", "detector"], registry=r, buckets=OUTLIER_RATIO_BUCKETS,
        )
        self.quality_violations = Counter(
            "inferwatch_data_quality_violations",
            "Windows in which a data-quality check failed (missing, out_of_range, unseen_category, schema), "
            "per feature.", ["model", "version", "check", "feature"], registry=r,
        )
        self.prediction_value = Histogram(
            "inferwatch_prediction_value", "Numeric model outputs, per output column.",
            ["model", "version", "output"], registry=r, buckets=PREDICTION_BUCKETS,
        )
        self.predicted_class = Counter(
            "inferwatch_predicted_class", "Categorical model outputs (classes), per output column and class.",
            ["model", "version", "output", "class"], registry=r,
        )
        self.model_performance = Gauge(
            "inferwatch_model_performance", "A performance figure of the newest window of prediction time: "
            "realized from its labelled rows (method=realized) or estimated before labels (method=cbpe, dle).",
            ["model", "version", "metric", "method"], registry=r,
        )
        self.labelled_ratio = Gauge(
            "inferwatch_model_performance_labelled_ratio", "Share of the newest window's predictions with ground truth.",
            ["model", "version"], registry=r,
        )
        self.feedback_labels = Counter(
            "inferwatch_feedback_labels", "Ground-truth labels received (feedback endpoint, topic and events).",
            ["model", "version"], registry=r,
        )
        self.unmatched_labels = Gauge(
            "inferwatch_feedback_unmatched_labels", "Labels kept until the prediction they belong to arrives.",
            ["model"], registry=r,
        )
        self._newest: dict[tuple[str, str, str], Any] = {}
        self.collector_latency = Histogram(
            "inferwatch_collector_request_duration_seconds", "Collector request handling time (to durable append).",
            registry=r, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.searchable = Histogram(
            "inferwatch_ingest_to_searchable_seconds",
            "Time from a record's append to the log (by the collector) to its audit documents being written "
            "(Elasticsearch makes them searchable within its refresh interval).",
            ["store"], registry=r, buckets=SEARCHABLE_BUCKETS,
        )
        self.series_capped = Counter(
            "inferwatch_series_capped",
            "Observations counted under _other because a metric reached its cap of label values.",
            ["metric"], registry=r,
        )
        self.duplicates = Counter(
            "inferwatch_records_duplicate", "Records recognised as copies of one already counted, and skipped.",
            ["stage"], registry=r,
        )
        self.shed = Counter(
            "inferwatch_collector_shed_requests",
            "Requests the collector answered 503 (overload, log unavailable) or dropped (client gone).",
            ["reason"], registry=r,
        )
        self.ready = Gauge(
            "inferwatch_ready", "1 when the role is connected to what it needs and working, else 0.",
            ["role"], registry=r,
        )
        self.role_errors = Counter(
            "inferwatch_role_errors", "Errors a role recovered from by backing off and reconnecting.",
            ["role"], registry=r,
        )
        # the bounded label sets exist from the start (at 0), so a rate shows 0 rather than no data
        for reason in ("overload", "log_unavailable", "client_gone", "skip_header"):
            self.shed.labels(reason=reason)
        for stage in ("collector", "detect"):
            self.duplicates.labels(stage=stage)
        for role in ("audit", "detect"):
            self.role_errors.labels(role=role)

        def fold(metric: str) -> None:
            self.series_capped.labels(metric=metric).inc()

        self._features = SeriesCap("inferwatch_drift_feature_p_value", "feature", series_cap, fold)
        self._quality_features = SeriesCap("inferwatch_data_quality_violations", "feature", series_cap, fold)
        self._outputs = SeriesCap("inferwatch_prediction_value", "output", series_cap, fold)
        self._classes = SeriesCap("inferwatch_predicted_class", "class", series_cap, fold)

    # -- detections -----------------------------------------------------------------------------
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
            self._feature_p_values(labels, d.feature_p_values)
            if d.kind == "performance":
                self._performance(d)
        elif d.kind == "outlier" and d.scores and d.threshold is not None:
            flagged = sum(1 for s in d.scores if s > d.threshold)
            self.outlier_rate.labels(**labels).set(flagged / len(d.scores))
            self._outlier_scores(labels, d.scores, d.threshold)
        if d.kind == "quality" and d.fired:
            self._quality(d)

    def _feature_p_values(self, labels: dict[str, str], p_values: Mapping[str, float]) -> None:
        scope = (labels["model"], labels["version"], labels["detector"])
        other: float | None = None
        for feature, p in p_values.items():
            name = self._features.admit(scope, feature)
            if name == OTHER:
                other = p if other is None else min(other, p)
            else:
                self.feature_p_value.labels(feature=name, **labels).set(p)
        if other is not None:
            self.feature_p_value.labels(feature=OTHER, **labels).set(other)

    def _outlier_scores(self, labels: dict[str, str], scores: Sequence[float], threshold: float) -> None:
        if threshold > 0:
            ratios = [s / threshold for s in scores]
        else:  # a threshold of 0 (or below) has no scale: only which side of it
            ratios = [math.inf if s > threshold else 0.0 for s in scores]
        _observe_many(self.outlier_score.labels(**labels), ratios)

    def _quality(self, d: Detection) -> None:
        version = d.version or ""
        findings = [(QUALITY_CHECKS.get(str(i.get("issue")), "other"), str(i.get("feature", "")))
                    for i in d.extra.get("issues", ())]
        findings += [("schema", str(c)) for key in ("missing_columns", "unexpected_columns")
                     for c in d.extra.get(key, ())]
        for check, feature in dict.fromkeys(findings) or [("other", "")]:
            name = self._quality_features.admit((d.model, version), feature) if feature else ""
            self.quality_violations.labels(model=d.model, version=version, check=check, feature=name).inc()

    # -- records --------------------------------------------------------------------------------
    def observe_outputs(self, model: str, version: str | None, outputs: Table | None) -> None:
        """The prediction distribution of one record's ``outputs``: numeric outputs into a histogram,
        categorical ones (strings, booleans, integers) counted per class. One pass per column, one
        update per bucket or class."""
        if not outputs:
            return
        version = version or ""
        for column, values in outputs.items():
            output = self._outputs.admit((model, version), column)
            numbers: list[float] = []
            classes: Counter_[str] = Counter_()
            for v in values:
                if v is None or isinstance(v, (list, dict)):
                    continue
                if isinstance(v, (bool, str, Integral)):
                    classes[str(v)] += 1
                elif isinstance(v, Real) and not math.isnan(float(v)):
                    numbers.append(float(v))
            if numbers:
                _observe_many(self.prediction_value.labels(model=model, version=version, output=output), numbers)
            for value, n in classes.items():
                cls = self._classes.admit((model, version, output), value)
                self.predicted_class.labels(model=model, version=version, output=output, **{"class": cls}).inc(n)

    def observe_searchable(self, store: str, appended_at: Sequence[float], now: float) -> None:
        """Audit documents written ``now`` for records appended to the log at ``appended_at``."""
        _observe_many(self.searchable.labels(store=store), [max(0.0, now - t) for t in appended_at])

    def _performance(self, d: Detection) -> None:
        """Figures of the newest window only (a late label revises an older window: its detection
        goes to the log and the audit store, not over the newer window's gauges)."""
        version = d.version or ""
        if "labels_waiting" in d.extra:
            self.unmatched_labels.labels(model=d.model).set(float(d.extra["labels_waiting"]))
        key = (d.model, version, d.detector)
        start = d.window_start.timestamp() if d.window_start is not None else float("inf")
        if start < self._newest.get(key, float("-inf")):
            return
        self._newest[key] = start
        method = str(d.extra.get("method") or "realized")  # realized, cbpe, dle
        figures = d.extra.get("metrics") or {}
        for name, sources in PERFORMANCE_METRICS.items():
            value = next((figures[k] for k in sources if isinstance(figures.get(k), int | float)), None)
            if value is not None:
                self.model_performance.labels(model=d.model, version=version, metric=name, method=method).set(value)
        share = d.extra.get("labelled_share")
        if method == "realized" and isinstance(share, int | float):
            self.labelled_ratio.labels(model=d.model, version=version).set(share)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def push(self, gateway: str, job: str = "inferwatch", grouping_key: dict[str, str] | None = None) -> None:
        """Push the registry to a Pushgateway (batch jobs)."""
        push_to_gateway(gateway, job=job, registry=self.registry,
                        grouping_key=grouping_key or {})


def _observe_many(hist: Any, values: Sequence[float]) -> None:
    """``hist.observe(v)`` for every value, with one update per bucket: the same effect as
    prometheus_client's ``observe`` (a value goes to the first bucket whose bound is >= it)."""
    bounds, buckets, total = (getattr(hist, a, None) for a in ("_upper_bounds", "_buckets", "_sum"))
    if bounds is None or buckets is None or total is None:  # another client version: the public way
        for v in values:
            hist.observe(v)
        return
    counts = [0] * len(bounds)
    for v in values:
        counts[bisect_left(bounds, v)] += 1
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)
    total.inc(sum(values))  # in order, as observe() adds them

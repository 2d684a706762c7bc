"""The batch job's metrics: the report's detections pushed to a Pushgateway."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from inferwatch.record import Detection

__all__ = ["REPORT_JOB", "push_report_metrics"]

REPORT_JOB = "inferwatch-report"


def push_report_metrics(detections: Iterable[Detection], gateway: str, model: str, *, job: str = REPORT_JOB,
                        grouping: dict[str, str] | None = None, now: float | None = None) -> Any:
    """Push the batch's drift metrics (the same families the stream exports) and
    ``inferwatch_report_last_success_timestamp_seconds`` to a Pushgateway.

    The push replaces the group ``job``/``model`` (an HTTP PUT), so the gauges show this run
    only. Returns the :class:`~inferwatch.metrics.Metrics` that was pushed.
    """
    import time

    from prometheus_client import Gauge

    from inferwatch.metrics import Metrics

    metrics = Metrics()
    for d in detections:
        metrics.observe_detection(d)
    Gauge("inferwatch_report_last_success_timestamp_seconds",
          "Unix time at which inferwatch report last wrote a report.", registry=metrics.registry
          ).set(time.time() if now is None else now)
    metrics.push(gateway, job=job, grouping_key={"model": model, **(grouping or {})})
    return metrics

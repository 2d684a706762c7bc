"""The metrics sink: detections exported onto the pipeline's Prometheus registry.

The registry itself (:class:`inferwatch.metrics.Metrics`) is a core service every role shares;
this sink is what turns each :class:`~inferwatch.record.Detection` into gauges and counters
(any detector, no special cases), scraped at ``/metrics`` or pushed to a Pushgateway.
"""

from __future__ import annotations

from collections.abc import Sequence

from inferwatch.metrics import Metrics
from inferwatch.record import Detection

__all__ = ["PrometheusSink"]


class PrometheusSink:
    """A :class:`~inferwatch.sink.DetectionSink` writing to one :class:`Metrics` registry.

    >>> from inferwatch.record import Detection
    >>> sink = PrometheusSink(Metrics())
    >>> sink.write([Detection(detector="ks", kind="drift", model="m", is_drift=True, p_value=0.01)])
    1
    >>> b'inferwatch_drift_detected{detector="ks",model="m",version=""} 1.0' in sink.metrics.exposition()
    True
    """

    name = "prometheus"
    inline = True

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def write(self, detections: Sequence[Detection]) -> int:
        for d in detections:
            self.metrics.observe_detection(d)
        return len(detections)

    def close(self) -> None:
        pass

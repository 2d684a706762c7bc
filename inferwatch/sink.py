"""Where detections go once they are durable on the log: the detection-sink protocol.

Implementations: ``sinks.prometheus.PrometheusSink`` (metrics), ``sinks.alertmanager.AlertSink``
(alerts). A sink receives batches of :class:`~inferwatch.record.Detection` and returns once it
has taken them; a sink that talks to a remote service raises
:class:`~inferwatch.errors.BackpressureError` when that service should be retried later, and
the caller keeps the batch (its log position is committed only after every sink took it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from inferwatch.record import Detection

__all__ = ["DetectionSink"]


@runtime_checkable
class DetectionSink(Protocol):
    """Takes detections (any detector, no special cases); ``write`` returns how many it delivered.

    ``inline``: ``True`` for an in-process sink that cannot fail (metrics), fed by the detect
    worker before it commits; ``False`` for a sink that talks to a service (alerts), which the
    pipeline runs as its own consumer of the detections topic, committing after the sink took
    each batch — so an outage of that service slows neither detection nor audit, and loses nothing.
    """

    name: str
    inline: bool

    def write(self, detections: Sequence[Detection]) -> int: ...

    def close(self) -> None: ...

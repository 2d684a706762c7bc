"""The runtime that windows records and runs detectors on them: the :class:`Monitor`
(``monitor``) and the count and time windows (``windows``)."""

from __future__ import annotations

from detectors.runtime.monitor import DetectorSpec, Monitor, build_monitor, detector_types
from detectors.runtime.windows import ClosedWindow, CountWindow, TimeWindow, window_from_config

__all__ = [
    "ClosedWindow",
    "CountWindow",
    "DetectorSpec",
    "Monitor",
    "TimeWindow",
    "build_monitor",
    "detector_types",
    "window_from_config",
]

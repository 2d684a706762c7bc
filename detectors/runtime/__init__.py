"""The runtime that windows records and runs detectors on them, knowing no algorithm:

* ``config`` — the monitor configuration checked against the registry of detector types
  (:class:`inferwatch.detector.DetectorRegistry`, filled by the wiring);
* ``monitor`` — the engine, :class:`Monitor` (records in, detections out, snapshots);
* ``windows`` — count and time windows.
"""

from __future__ import annotations

from detectors.runtime.config import DetectorSpec, MonitorConfig, parse_monitor_config
from detectors.runtime.monitor import Monitor, build_monitor
from detectors.runtime.windows import ClosedWindow, CountWindow, TimeWindow, window_from_config

__all__ = [
    "ClosedWindow",
    "CountWindow",
    "DetectorSpec",
    "Monitor",
    "MonitorConfig",
    "TimeWindow",
    "build_monitor",
    "parse_monitor_config",
    "window_from_config",
]

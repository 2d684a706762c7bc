"""Drift, outlier and data-quality detectors; windows; references; the pipeline monitor.

Every detector satisfies :class:`detectors.base.Detector` (``fit`` / ``update`` /
``result`` / ``reset`` / ``merge``) and emits :class:`inferwatch.record.Detection`.
"""

from __future__ import annotations

from detectors.base import Detector
from detectors.corrections import correct
from detectors.ks import KSDrift
from detectors.monitor import DetectorSpec, Monitor, build_monitor
from detectors.references import ReferenceInfo, ReferenceStore
from detectors.state import ColumnBuffer
from detectors.windows import ClosedWindow, CountWindow, TimeWindow, window_from_config

__all__ = [
    "ClosedWindow",
    "ColumnBuffer",
    "CountWindow",
    "Detector",
    "DetectorSpec",
    "KSDrift",
    "Monitor",
    "ReferenceInfo",
    "ReferenceStore",
    "TimeWindow",
    "build_monitor",
    "correct",
    "window_from_config",
]

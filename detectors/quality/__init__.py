"""Data-quality checks (``kind="quality"``): ``from detectors.quality import DataQuality``."""

from __future__ import annotations

from detectors.quality.data_quality import DataQuality

__all__ = ["DataQuality"]

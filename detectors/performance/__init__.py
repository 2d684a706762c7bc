"""Model performance: realized (from labels, late or not), estimated before labels (CBPE),
and the comparison of live variants (A/B, canary).

* :class:`RealizedPerformance`: a window's figures from the labels that have arrived
"""

from __future__ import annotations

from detectors.performance.realized import RealizedPerformance

__all__ = ["RealizedPerformance"]

"""Model performance: realized (from labels, late or not), estimated before labels (CBPE),
and the comparison of live variants (A/B, canary).

* :class:`RealizedPerformance`: a window's figures from the labels that have arrived
* :class:`PerformanceTracker`: windows of prediction time per model and version, revised as labels arrive
* :class:`CBPE`: confidence-based performance estimation before labels (NannyML's method)
* :class:`DLE`: direct loss estimation of a regressor's MAE and RMSE before labels
* :class:`VariantComparison`: live variants' inputs, outputs, accuracy and AUC against each other
"""

from __future__ import annotations

from detectors.performance.cbpe import CBPE
from detectors.performance.dle import DLE
from detectors.performance.realized import RealizedPerformance
from detectors.performance.tracker import PerformanceTracker
from detectors.performance.variants import VariantComparison

__all__ = ["CBPE", "DLE", "PerformanceTracker", "RealizedPerformance", "VariantComparison"]

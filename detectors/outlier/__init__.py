"""Outlier detectors: per-row scores, thresholded at a false-positive rate.

``from detectors.outlier import ZScoreOutlier``. ``_base.OutlierDetector`` is the shared
base class.
"""

from __future__ import annotations

from detectors.outlier.iqr import IQROutlier
from detectors.outlier.isolation_forest import IsolationForestOutlier
from detectors.outlier.mahalanobis import MahalanobisOutlier
from detectors.outlier.zscore import ZScoreOutlier

__all__ = ["IQROutlier", "IsolationForestOutlier", "MahalanobisOutlier", "ZScoreOutlier"]

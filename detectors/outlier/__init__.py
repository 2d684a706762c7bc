"""Outlier detectors: per-row scores, thresholded at a false-positive rate.

``from detectors.outlier import ZScoreOutlier``. ``_base.OutlierDetector`` is the shared
base class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from detectors._lazy import lazy_exports

if TYPE_CHECKING:  # the names, for type checkers; at run time each module is imported on first use
    from detectors.outlier.iqr import IQROutlier
    from detectors.outlier.isolation_forest import IsolationForestOutlier
    from detectors.outlier.mahalanobis import MahalanobisOutlier
    from detectors.outlier.zscore import ZScoreOutlier

__all__ = ["IQROutlier", "IsolationForestOutlier", "MahalanobisOutlier", "ZScoreOutlier"]

# name -> module: nothing is imported until a name is used, so the registry (and the report, which
# needs one detector) never pays for scikit-learn or the other detectors' dependencies
_LAZY = {
    "IQROutlier": "detectors.outlier.iqr",
    "IsolationForestOutlier": "detectors.outlier.isolation_forest",
    "MahalanobisOutlier": "detectors.outlier.mahalanobis",
    "ZScoreOutlier": "detectors.outlier.zscore",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__, globals())

"""Drift, outlier and data-quality detectors, and the runtime that windows and runs them.

Every detector satisfies :class:`detectors.base.Detector` (``fit`` / ``update`` / ``result`` /
``reset`` / ``merge``; declared in :mod:`inferwatch.detector`) and emits
:class:`inferwatch.record.Detection`. Layout: ``drift/``, ``outlier/``, ``quality/``,
``adapters/`` (the algorithms, one class per module), ``common/`` (what algorithms share),
``runtime/`` (the :class:`Monitor`, its config and windows; it knows no algorithm: the
wiring registers them, :data:`inferwatch.wiring.DETECTORS`).

* per-feature drift tests: :class:`KSDrift`, :class:`CVMDrift`, :class:`AndersonDrift`,
  :class:`ChiSquareDrift`, :class:`FETDrift`, and :class:`TabularDrift` (chosen per column)
* distances with thresholds: :class:`PSIDrift`, :class:`JSDrift`, :class:`HellingerDrift`,
  :class:`WassersteinDrift`
* multivariate: :class:`MMDDrift`, :class:`ClassifierDrift`
* sequential: :class:`OnlineCVMDrift` (ERT-calibrated), :class:`PageHinkley`
* outputs: :class:`PredictionDrift`, :class:`ConfidenceDrift`
* outliers: :class:`MahalanobisOutlier`, :class:`IsolationForestOutlier`,
  :class:`ZScoreOutlier`, :class:`IQROutlier`
* data quality: :class:`DataQuality`
* alibi-detect adapter: :class:`AlibiDetector` (``detectors.adapters.alibi``; optional extra)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from detectors._lazy import lazy_exports

if TYPE_CHECKING:  # the names, for type checkers; at run time each module is imported on first use
    from detectors.base import Detector
    from detectors.common.corrections import correct
    from detectors.common.state import ColumnBuffer
    from detectors.drift.anderson import AndersonDrift
    from detectors.drift.chisquare import ChiSquareDrift
    from detectors.drift.classifier import ClassifierDrift
    from detectors.drift.confidence import ConfidenceDrift
    from detectors.drift.cvm import CVMDrift
    from detectors.drift.fisher import FETDrift
    from detectors.drift.hellinger import HellingerDrift
    from detectors.drift.jensen_shannon import JSDrift
    from detectors.drift.ks import KSDrift
    from detectors.drift.mmd import MMDDrift
    from detectors.drift.online_cvm import OnlineCVMDrift
    from detectors.drift.page_hinkley import PageHinkley
    from detectors.drift.prediction import PredictionDrift
    from detectors.drift.psi import PSIDrift
    from detectors.drift.tabular import TabularDrift
    from detectors.drift.wasserstein import WassersteinDrift
    from detectors.outlier.iqr import IQROutlier
    from detectors.outlier.isolation_forest import IsolationForestOutlier
    from detectors.outlier.mahalanobis import MahalanobisOutlier
    from detectors.outlier.zscore import ZScoreOutlier
    from detectors.quality.data_quality import DataQuality
    from detectors.runtime.config import DetectorSpec
    from detectors.runtime.monitor import Monitor, build_monitor
    from detectors.runtime.windows import ClosedWindow, CountWindow, TimeWindow, window_from_config
    from inferwatch.references import ReferenceInfo, ReferenceStore

__all__ = [
    "AndersonDrift",
    "CVMDrift",
    "ChiSquareDrift",
    "ClassifierDrift",
    "ClosedWindow",
    "ColumnBuffer",
    "ConfidenceDrift",
    "CountWindow",
    "DataQuality",
    "Detector",
    "DetectorSpec",
    "FETDrift",
    "HellingerDrift",
    "IQROutlier",
    "IsolationForestOutlier",
    "JSDrift",
    "KSDrift",
    "MMDDrift",
    "MahalanobisOutlier",
    "Monitor",
    "OnlineCVMDrift",
    "PSIDrift",
    "PageHinkley",
    "PredictionDrift",
    "ReferenceInfo",
    "ReferenceStore",
    "TabularDrift",
    "TimeWindow",
    "WassersteinDrift",
    "ZScoreOutlier",
    "build_monitor",
    "correct",
    "window_from_config",
]

# name -> module: nothing is imported until a name is used, so the registry (and the report, which
# needs one detector) never pays for scikit-learn or the other detectors' dependencies
_LAZY = {
    "Detector": "detectors.base",
    "correct": "detectors.common.corrections",
    "ColumnBuffer": "detectors.common.state",
    "AndersonDrift": "detectors.drift.anderson",
    "ChiSquareDrift": "detectors.drift.chisquare",
    "ClassifierDrift": "detectors.drift.classifier",
    "ConfidenceDrift": "detectors.drift.confidence",
    "CVMDrift": "detectors.drift.cvm",
    "FETDrift": "detectors.drift.fisher",
    "HellingerDrift": "detectors.drift.hellinger",
    "JSDrift": "detectors.drift.jensen_shannon",
    "KSDrift": "detectors.drift.ks",
    "MMDDrift": "detectors.drift.mmd",
    "OnlineCVMDrift": "detectors.drift.online_cvm",
    "PageHinkley": "detectors.drift.page_hinkley",
    "PredictionDrift": "detectors.drift.prediction",
    "PSIDrift": "detectors.drift.psi",
    "TabularDrift": "detectors.drift.tabular",
    "WassersteinDrift": "detectors.drift.wasserstein",
    "IQROutlier": "detectors.outlier.iqr",
    "IsolationForestOutlier": "detectors.outlier.isolation_forest",
    "MahalanobisOutlier": "detectors.outlier.mahalanobis",
    "ZScoreOutlier": "detectors.outlier.zscore",
    "DataQuality": "detectors.quality.data_quality",
    "DetectorSpec": "detectors.runtime.config",
    "Monitor": "detectors.runtime.monitor",
    "build_monitor": "detectors.runtime.monitor",
    "ClosedWindow": "detectors.runtime.windows",
    "CountWindow": "detectors.runtime.windows",
    "TimeWindow": "detectors.runtime.windows",
    "window_from_config": "detectors.runtime.windows",
    "ReferenceInfo": "inferwatch.references",
    "ReferenceStore": "inferwatch.references",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__, globals())

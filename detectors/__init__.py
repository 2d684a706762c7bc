"""Drift, outlier and data-quality detectors; windows; references; the pipeline monitor.

Every detector satisfies :class:`detectors.base.Detector` (``fit`` / ``update`` /
``result`` / ``reset`` / ``merge``) and emits :class:`inferwatch.record.Detection`.

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
* alibi-detect adapter: :class:`AlibiDetector` (``detectors.alibi``; optional extra)
"""

from __future__ import annotations

from detectors.anderson import AndersonDrift
from detectors.base import Detector
from detectors.chisquare import ChiSquareDrift
from detectors.classifier import ClassifierDrift
from detectors.confidence import ConfidenceDrift
from detectors.corrections import correct
from detectors.cvm import CVMDrift
from detectors.fisher import FETDrift
from detectors.hellinger import HellingerDrift
from detectors.iqr import IQROutlier
from detectors.isolation_forest import IsolationForestOutlier
from detectors.jensen_shannon import JSDrift
from detectors.ks import KSDrift
from detectors.mahalanobis import MahalanobisOutlier
from detectors.mmd import MMDDrift
from detectors.monitor import DetectorSpec, Monitor, build_monitor, detector_types
from detectors.online_cvm import OnlineCVMDrift
from detectors.page_hinkley import PageHinkley
from detectors.prediction import PredictionDrift
from detectors.psi import PSIDrift
from detectors.quality import DataQuality
from detectors.references import ReferenceInfo, ReferenceStore
from detectors.state import ColumnBuffer
from detectors.tabular import TabularDrift
from detectors.wasserstein import WassersteinDrift
from detectors.windows import ClosedWindow, CountWindow, TimeWindow, window_from_config
from detectors.zscore import ZScoreOutlier

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
    "detector_types",
    "window_from_config",
]

"""Drift detectors: per-feature tests, distances, multivariate, sequential, output drift.

``from detectors.drift import KSDrift``. Each class is in its own module; the private
modules here (``_distance``, ``_kstwo``, ``_ranks``) are helpers only drift tests use.
"""

from __future__ import annotations

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

__all__ = [
    "AndersonDrift",
    "CVMDrift",
    "ChiSquareDrift",
    "ClassifierDrift",
    "ConfidenceDrift",
    "FETDrift",
    "HellingerDrift",
    "JSDrift",
    "KSDrift",
    "MMDDrift",
    "OnlineCVMDrift",
    "PSIDrift",
    "PageHinkley",
    "PredictionDrift",
    "TabularDrift",
    "WassersteinDrift",
]

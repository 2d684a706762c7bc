"""Drift detectors: per-feature tests, distances, multivariate, sequential, output drift.

``from detectors.drift import KSDrift``. Each class is in its own module; the private
modules here (``_distance``, ``_kstwo``, ``_ranks``) are helpers only drift tests use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from detectors._lazy import lazy_exports

if TYPE_CHECKING:  # the names, for type checkers; at run time each module is imported on first use
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

# name -> module: nothing is imported until a name is used, so the registry (and the report, which
# needs one detector) never pays for scikit-learn or the other detectors' dependencies
_LAZY = {
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
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__, globals())

"""Outlier detectors: per-row scores, thresholded at a false-positive rate.

``from detectors.outlier import ZScoreOutlier``. ``_base.OutlierDetector`` is the shared
base class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    import importlib

    module = _LAZY.get(name)
    if module is None:  # a subpackage or module (``detectors.drift``), imported on first use too
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

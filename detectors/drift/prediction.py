"""Prediction drift: drift of a model's outputs (labels, scores, probabilities).

The same automatic per-column tests as :class:`~detectors.drift.tabular.TabularDrift` (labels ->
chi-squared / Fisher, scores -> KS / CVM), under its own name so dashboards tell input
and output drift apart. Fit it on the reference's output columns; in the monitor use
``{type: prediction}`` (it reads ``outputs`` by default).

>>> det = PredictionDrift().fit({"label": ["cat"] * 700 + ["dog"] * 300})
>>> det.update({"label": ["cat"] * 40 + ["dog"] * 60}).result().is_drift
True
"""

from __future__ import annotations

from detectors.drift.tabular import TabularDrift

__all__ = ["PredictionDrift"]


class PredictionDrift(TabularDrift):
    """Parameters as :class:`~detectors.drift.tabular.TabularDrift`."""

    name = "prediction"

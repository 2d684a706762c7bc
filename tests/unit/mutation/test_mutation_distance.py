"""The distance detectors' calibrated test (detectors/drift/_distance.py) on cases whose null
distribution is known by hand. No expected value comes from the code under test."""

from __future__ import annotations

import pytest

from detectors import HellingerDrift, JSDrift, PSIDrift, WassersteinDrift

DRAWS = 99


@pytest.mark.parametrize("factory", [PSIDrift, JSDrift, HellingerDrift, WassersteinDrift])
def test_a_one_row_reference_is_bootstrapped_from_its_one_row(factory) -> None:
    """A reference of one row is too small to split, so its null windows are a bootstrap;
    every draw, of the refitted reference and of the window alike, can only repeat that row,
    so every null distance is 0. A window equal to the row then has p-value 1, and any other
    window (distance > 0) the smallest Monte Carlo p-value, 1 / (draws + 1). (Kills a
    bootstrap that draws from rows 1.. only: with one row there is none to draw.)"""
    binned = factory is not WassersteinDrift
    ref = {"a": [3.0], "c": ["x"]} if binned else {"a": [3.0]}
    det = factory(draws=DRAWS).fit(ref)
    same = det.update({"a": [3.0, 3.0, 3.0], "c": ["x", "x", "x"]} if binned else {"a": [3.0, 3.0, 3.0]}).result()
    assert same.feature_p_values == dict.fromkeys(ref, 1.0)
    assert not same.is_drift
    # 1.0 is below the one edge (3.0) of a one-row reference's bins: a bin the reference has none in
    other = det.update({"a": [1.0, 3.0, 3.0], "c": ["y", "x", "x"]} if binned else {"a": [1.0, 3.0, 3.0]}).result()
    assert other.feature_p_values == dict.fromkeys(ref, 1 / (DRAWS + 1))
    assert set(other.extra["methods"].values()) == {"simulated (bootstrap)"}

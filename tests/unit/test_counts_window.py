"""A large window kept as counts (``TabularDrift(counts_after=..., bins=...)``) and features
tested in groups: same p-values as the values themselves, bounded by the reference.

Oracles: scipy's ``ks_2samp`` / ``chi2_contingency`` on the same data, and the detector's
value path (itself checked against scipy and alibi-detect elsewhere).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, ks_2samp

import detectors.common._univariate as univariate
from detectors.common._counts import EdgeCounts, ks_statistic, quantile_edges
from detectors.drift.ks import KSDrift
from detectors.drift.tabular import TabularDrift


def _data(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    x = rng.normal(shift, 1.0, n)
    x[rng.random(n) < 0.01] = np.nan  # missing cells
    rounded = np.round(rng.normal(shift, 2.0, n), 1)  # ties with each other and with the reference
    codes = rng.integers(0, 4, n)  # numbers tested as categories
    cat = rng.choice(np.array(["a", "b", "c", None], dtype=object), n, p=[0.5, 0.3, 0.19, 0.01])
    messy = x.astype(object)
    messy[rng.random(n) < 0.005] = "?"  # bad cells in a numerical column
    return pd.DataFrame({"x": x, "rounded": rounded, "codes": codes, "cat": cat, "messy": messy})


def _fed(det: TabularDrift, frame: pd.DataFrame, step: int) -> TabularDrift:
    for i in range(0, len(frame), step):
        det.update(frame.iloc[i : i + step])
    return det


@pytest.mark.parametrize("shift", [0.0, 0.05])
def test_counts_give_the_values_p_values(shift: float) -> None:
    rng = np.random.default_rng(7)
    ref = _data(rng, 3000, 0.0)
    cur = _data(rng, 20_000, shift)
    values = TabularDrift().fit(ref).update(cur).result()
    det = _fed(TabularDrift(counts_after=1000).fit(ref), cur, 1500)
    assert det._counted is not None and not det._window.chunks  # the window is counts, not rows
    counted = det.result()
    assert counted.extra["window_kept_as"] == "counts"
    assert counted.feature_p_values == values.feature_p_values  # bit for bit
    assert counted.feature_distances == values.feature_distances
    assert counted.is_drift == values.is_drift and counted.p_value == values.p_value
    assert counted.window_size == values.window_size == 20_000
    for key in ("tests", "values_tested", "missing_values", "bad_values", "untested", "n_tested"):
        assert counted.extra[key] == values.extra[key], key
    # the independent oracle: scipy on the same values
    for f in ("x", "rounded"):
        r, c = ref[f].dropna().to_numpy(float), cur[f].dropna().to_numpy(float)
        assert counted.feature_distances[f] == ks_2samp(r, c).statistic
    table = pd.crosstab(pd.concat([ref.cat, cur.cat]).to_numpy(), np.r_[np.zeros(len(ref)), np.ones(len(cur))])
    assert counted.feature_p_values["cat"] == pytest.approx(chi2_contingency(table.T.to_numpy())[1], rel=1e-9)
    assert counted.extra["bad_values"]["messy"] == int((cur.messy == "?").sum())


def test_counts_merge_like_one_window() -> None:
    rng = np.random.default_rng(3)
    ref, a, b = _data(rng, 2000, 0.0), _data(rng, 5000, 0.1), _data(rng, 3000, 0.1)
    whole = TabularDrift(counts_after=100).fit(ref).update(pd.concat([a, b], ignore_index=True)).result()
    left = TabularDrift(counts_after=100).fit(ref).update(a)
    right = TabularDrift(counts_after=10_000).fit(ref).update(b)  # still rows: folded in by merge
    assert right._counted is None
    merged = left.merge(right)
    assert merged.window_size == 8000
    got = merged.result()
    assert got.feature_p_values == whole.feature_p_values
    assert got.extra["missing_values"] == whole.extra["missing_values"]
    # merging does not change either side
    assert left.result().window_size == 5000 and right.result().window_size == 3000


def test_categorical_dtype_counted_by_codes() -> None:
    rng = np.random.default_rng(5)
    ref = _data(rng, 2000, 0.0)
    cur = _data(rng, 6000, 0.0)
    plain = _fed(TabularDrift(counts_after=0).fit(ref), cur, 2000).result()
    as_cat = _fed(TabularDrift(counts_after=0).fit(ref), cur.astype({"cat": "category"}), 2000).result()
    assert as_cat.feature_p_values["cat"] == plain.feature_p_values["cat"]
    assert as_cat.extra["missing_values"]["cat"] == plain.extra["missing_values"]["cat"] == int(cur.cat.isna().sum())


def test_binned_is_conservative_and_labelled() -> None:
    rng = np.random.default_rng(11)
    ref = _data(rng, 5000, 0.0)
    exact = TabularDrift(counts_after=0).fit(ref)
    binned = TabularDrift(bins=20).fit(ref)
    for shift in (0.0, 0.03, 0.1, 0.3):
        cur = _data(rng, 20_000, shift)
        e = exact.reset().update(cur).result()
        b = binned.reset().update(cur).result()
        for f in ("x", "rounded", "messy"):
            assert b.extra["methods"][f] == "binned-asymptotic"
            assert b.feature_distances[f] <= e.feature_distances[f]
            assert b.feature_p_values[f] >= e.feature_p_values[f]
        assert b.feature_p_values["cat"] == e.feature_p_values["cat"]  # categories are not binned
    # a large shift is still found in bins. The inequalities above are exact (the binned statistic
    # is the sup over a subset of the points). This one is statistical: at 0.3 sd, 20,000 rows
    # against 5,000, KS's statistic is ~0.12 (binned into 20 quantile bins: >= 0.11), its sd
    # ~0.008, the Bonferroni cut (alpha 0.05 / 5 features) ~0.026: a miss is > 10 sd away (< 1e-20)
    assert b.feature_drift["x"]


def test_binned_statistic_is_the_ks_over_the_edges() -> None:
    rng = np.random.default_rng(2)
    ref, cur = np.sort(rng.normal(size=3000)), rng.normal(0.1, 1.0, 7000)
    edges = quantile_edges(ref, 10)
    w = EdgeCounts.binned(edges).add(cur)
    # the oracle: both ECDFs evaluated just below each edge, written out here
    expected = max(abs((ref < e).mean() - (cur < e).mean()) for e in edges)
    assert ks_statistic(ref, w) == pytest.approx(expected, abs=1e-15)
    cells = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    assert ks_statistic(ref, EdgeCounts.binned(edges).add_cells(cells)) == ks_statistic(ref, w)


def test_counts_reject_tests_that_need_values() -> None:
    with pytest.raises(ValueError, match="cvm"):
        TabularDrift(counts_after=10, tests={"x": "cvm"})


@pytest.mark.parametrize("cls", [TabularDrift, KSDrift])
def test_features_tested_in_groups_give_the_same_result(cls: type, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    ref = {f"f{i}": rng.normal(size=1500) for i in range(7)}
    cur = {f"f{i}": rng.normal(0.02 * i, 1.0, 4000) for i in range(7)}
    cur["f3"][:10] = np.nan
    whole = cls().fit(ref).update(cur).result()
    monkeypatch.setattr(univariate, "GROUP_VALUES", 9000)  # groups of three features
    grouped = cls().fit(ref).update(cur).result()
    assert grouped.feature_p_values == whole.feature_p_values
    assert grouped.extra["methods"] == whole.extra["methods"]
    assert grouped.extra["missing_values"] == whole.extra["missing_values"]
    assert grouped.p_value == whole.p_value


@pytest.mark.parametrize("mode", ["exact", "binned"])
def test_report_over_a_file_says_its_mode_and_gives_the_detectors_p_values(mode: str, tmp_path) -> None:
    from click.testing import CliRunner

    from inferwatch.cli import main

    rng = np.random.default_rng(4)
    ref = _data(rng, 4000, 0.0).drop(columns=["messy"])
    cur = _data(rng, 70_000, 0.05).drop(columns=["messy"])  # more rows than COUNTS_AFTER: counted
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet", row_group_size=30_000)  # several row groups
    res = CliRunner().invoke(main, ["report", "--input", str(tmp_path / "cur.parquet"), "--reference",
                                    str(tmp_path / "ref.parquet"), "--mode", mode, "--bins", "30",
                                    "--out", str(tmp_path / "out"), "--quiet"])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["mode"] == doc["summary"]["mode"] == mode
    assert any(n.startswith(f"{mode} mode") for n in doc["notes"])
    assert f"{mode} tests" in (tmp_path / "out" / "report.html").read_text()
    oracle = TabularDrift(**({"bins": 30} if mode == "binned" else {})).fit(ref).update(cur).result()
    got = {f["feature"]: f["p_values"][0] for f in doc["features"]}
    assert got == pytest.approx(oracle.feature_p_values, rel=1e-12, abs=1e-300)
    (det,) = doc["detections"]
    assert det["extra"]["window_kept_as"] == ("binned counts" if mode == "binned" else "counts")

"""Distribution plots drawn from counts (reports whose rows' values are not kept): report.json's
``distributions`` name the window where each feature's p-value was lowest, and the chart draws
exactly those counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from detectors.drift.tabular import TabularDrift
from inferwatch.record import Detection
from sinks.report import BatchReport, report_dict
from sinks.report.charts import counts_chart, draw_counts


def _report() -> BatchReport:
    rng = np.random.default_rng(3)
    ref = {"x": rng.normal(size=500).tolist(), "c": rng.choice(["a", "b", "c"], 500).tolist()}
    det = TabularDrift(counts_after=0).fit(ref)
    dets, counts = [], {}
    for i, shift in enumerate([0.0, 0.8]):
        win = {"x": rng.normal(shift, 1.0, 300).tolist(), "c": (["a"] * 200 if i else ["b"] * 200) + ["c"] * 100}
        det.update(win)
        counts[i] = det.window_counts(10)
        d = det.result()
        d.model = "m"
        dets.append(d)
        det.reset()
    return BatchReport(model="m", detections=dets, counts=counts, references={}, mode="exact")


def test_distributions_are_the_counts_of_the_lowest_p_value_window():
    rep = _report()
    doc = report_dict(rep)
    by = {e["feature"]: e for e in doc["distributions"]}
    assert set(by) == {"x", "c"}
    for f, e in by.items():
        ps = [d.feature_p_values[f] for d in rep.detections]
        k = int(np.argmin(ps))
        assert e["window"] == k and e["p_value"] == ps[k]
        c = rep.counts[k][f]
        if f == "x":
            assert e["kind"] == "numerical"
            assert (e["edges"], e["reference"], e["current"]) == (c["edges"], c["reference"], c["current"])
            assert sum(e["current"]) == 300 and sum(e["reference"]) == 500
        else:
            assert e["kind"] == "categorical"
            assert dict(zip(e["categories"], e["current"], strict=True)) == {k2: c["current"].get(k2, 0)
                                                                             for k2 in e["categories"]}
    assert [e["feature"] for e in doc["distributions"]] == sorted(by, key=lambda f: by[f]["p_value"])


def test_the_chart_draws_the_counts_as_densities():
    e = {"kind": "numerical", "feature": "x", "edges": [0.0, 1.0, 3.0], "reference": [0, 4, 4, 2],
         "current": [1, 1, 6, 2]}
    ax = Figure().add_subplot()
    draw_counts(ax, e)
    ref_patch, cur_patch = ax.patches
    for patch, counts in ((ref_patch, e["reference"]), (cur_patch, e["current"])):
        values, edges, _ = patch.get_data()
        assert edges.tolist() == [-1.0, 0.0, 1.0, 3.0, 5.0]  # open cells as wide as their neighbours
        assert values == pytest.approx(np.array(counts) / sum(counts) / np.diff(edges))
    cat = {"kind": "categorical", "feature": "c", "categories": ["a", "b"], "reference": [3, 1], "current": [1, 1]}
    ax = Figure().add_subplot()
    draw_counts(ax, cat)
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([0.75, 0.25, 0.5, 0.5])
    assert counts_chart(dict(e, current=[0, 0, 0, 0]), "") is None  # nothing counted: no plot
    assert isinstance(counts_chart(e, "p = 0.1"), str)


def test_file_reports_keep_drawing_from_values():
    rep = BatchReport(model="m", detections=[], current={(None, "inputs"): pd.DataFrame({"x": [1.0]})})
    assert report_dict(rep)["distributions"] == []


def test_a_long_tail_of_categories_is_one_cell_with_the_totals_whole():
    rep = BatchReport(model="m", detections=[], mode="binned")
    d = Detection(detector="tabular", kind="drift", model="m", window_size=1000, feature_p_values={"c": 0.5})
    rep.detections.append(d)
    rep.counts = {0: {"c": {"reference": {f"k{i}": 2 for i in range(300)}, "current": {f"k{i}": 1 for i in range(500)}}}}
    (e,) = report_dict(rep)["distributions"]
    assert len(e["categories"]) == 101 and e["categories"][-1] == "(400 other categories)"
    assert (sum(e["reference"]), sum(e["current"])) == (600, 500)

"""The metrics users look at beyond drift gauges: the per-feature cap, outlier score histograms,
data-quality counters, the prediction distribution and collector-to-searchable times; each read
back from the registry as Prometheus would scrape it."""

from __future__ import annotations

import logging
import math

from inferwatch.metrics import Metrics
from inferwatch.record import Detection, InferenceRecord
from inferwatch.series_cap import OTHER


def _get(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_feature_p_values_past_the_cap_are_their_minimum_under_other_and_logged_once(caplog):
    m = Metrics(series_cap=3)
    ps = {"a": 0.5, "b": 0.4, "c": 0.3, "d": 0.2, "e": 0.01}
    d = Detection(detector="ks", kind="drift", model="m", version="v1", is_drift=True, p_value=0.05,
                  feature_p_values=ps)
    with caplog.at_level(logging.WARNING, logger="inferwatch.metrics"):
        m.observe_detection(d)
        m.observe_detection(d)
    base = {"model": "m", "version": "v1", "detector": "ks"}
    for f in ("a", "b", "c"):
        assert _get(m, "inferwatch_drift_feature_p_value", feature=f, **base) == ps[f]
    assert _get(m, "inferwatch_drift_feature_p_value", feature="d", **base) is None
    assert _get(m, "inferwatch_drift_feature_p_value", feature=OTHER, **base) == min(ps["d"], ps["e"])
    assert _get(m, "inferwatch_series_capped_total", metric="inferwatch_drift_feature_p_value") == 4
    assert len([r for r in caplog.records if "cap" in r.getMessage() or "_other" in r.getMessage()]) == 1
    # another model version has its own room
    m.observe_detection(Detection(detector="ks", kind="drift", model="m", version="v2", is_drift=False,
                                  feature_p_values={"d": 0.9}))
    assert _get(m, "inferwatch_drift_feature_p_value", feature="d", model="m", version="v2", detector="ks") == 0.9


def test_outlier_scores_as_a_ratio_to_the_threshold():
    m = Metrics()
    m.observe_detection(Detection(detector="maha", kind="outlier", model="m", is_outlier=True, threshold=2.0,
                                  scores=[1.0, 1.9, 2.5, 5.0, 30.0]))
    base = {"model": "m", "version": "", "detector": "maha"}
    name = "inferwatch_outlier_score_threshold_ratio_bucket"
    # ratios 0.5, 0.95, 1.25, 2.5, 15
    assert _get(m, name, le="0.5", **base) == 1
    assert _get(m, name, le="1.0", **base) == 2
    assert _get(m, name, le="1.25", **base) == 3
    assert _get(m, name, le="3.0", **base) == 4
    assert _get(m, name, le="10.0", **base) == 4
    assert _get(m, name, le="+Inf", **base) == 5
    assert _get(m, "inferwatch_outlier_ratio", **base) == 3 / 5


def test_data_quality_counters_per_check_and_feature():
    m = Metrics()
    issues = [{"feature": "age", "issue": "missing_values", "value": 0.2},
              {"feature": "income", "issue": "out_of_range", "value": 0.1},
              {"feature": "city", "issue": "unseen_categories", "value": 0.3},
              {"feature": "zip", "issue": "new_column", "value": 1.0}]
    d = Detection(detector="quality", kind="quality", model="m", version="v1", is_drift=True, extra={"issues": issues})
    m.observe_detection(d)
    m.observe_detection(d)
    m.observe_detection(Detection(detector="quality", kind="quality", model="m", version="v1", is_drift=False,
                                  extra={"issues": []}))
    m.observe_detection(Detection(detector="schema", kind="quality", model="m", version="v1", is_drift=True,
                                  extra={"missing_columns": ["age"], "unexpected_columns": []}))
    name = "inferwatch_data_quality_violations_total"
    base = {"model": "m", "version": "v1"}
    assert _get(m, name, check="missing", feature="age", **base) == 2
    assert _get(m, name, check="out_of_range", feature="income", **base) == 2
    assert _get(m, name, check="unseen_category", feature="city", **base) == 2
    assert _get(m, name, check="schema", feature="zip", **base) == 2
    assert _get(m, name, check="schema", feature="age", **base) == 1


def test_prediction_distribution():
    m = Metrics(series_cap=2)
    r = InferenceRecord(id="r1", model="m", version="v1", outputs={
        "proba": [0.05, 0.95, None, math.nan], "label": ["cat", "dog", "cat", "bird"], "flag": [True, False, True, True]})
    m.observe_outputs(r.model, r.version, r.outputs)
    base = {"model": "m", "version": "v1"}
    assert _get(m, "inferwatch_prediction_value_count", output="proba", **base) == 2
    assert _get(m, "inferwatch_prediction_value_bucket", output="proba", le="0.1", **base) == 1
    assert _get(m, "inferwatch_prediction_value_bucket", output="proba", le="1.0", **base) == 2
    cls = "inferwatch_predicted_class_total"
    assert _get(m, cls, output="label", **{"class": "cat"}, **base) == 2
    assert _get(m, cls, output="label", **{"class": "dog"}, **base) == 1
    assert _get(m, cls, output="label", **{"class": OTHER}, **base) == 1  # bird: past the cap of 2
    # the third output column is past the cap of outputs: counted under _other
    assert _get(m, cls, output=OTHER, **{"class": "True"}, **base) == 3
    assert _get(m, "inferwatch_series_capped_total", metric="inferwatch_predicted_class") == 1


def test_ingest_to_searchable():
    m = Metrics()
    m.observe_searchable("SQLiteAuditStore", [100.0, 99.5, 90.0, 101.0], now=100.2)
    name = "inferwatch_ingest_to_searchable_seconds"
    assert _get(m, f"{name}_count", store="SQLiteAuditStore") == 4
    assert _get(m, f"{name}_bucket", store="SQLiteAuditStore", le="0.25") == 2  # 0.2 and 0 (clock ahead)
    assert _get(m, f"{name}_bucket", store="SQLiteAuditStore", le="1.0") == 3
    assert _get(m, f"{name}_bucket", store="SQLiteAuditStore", le="10.0") == 3
    assert _get(m, f"{name}_bucket", store="SQLiteAuditStore", le="30.0") == 4


def test_bulk_observation_equals_prometheus_clients_observe():
    """The batched bucket update gives the exposition observe() would give, value by value."""
    import random

    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from inferwatch.metrics import PREDICTION_BUCKETS, _observe_many

    rng = random.Random(7)
    values = [rng.uniform(-50, 50) for _ in range(2000)] + [*PREDICTION_BUCKETS, math.inf, -math.inf, 0.30000000000000004]
    one, bulk = CollectorRegistry(), CollectorRegistry()
    h1 = Histogram("h", "h", registry=one, buckets=PREDICTION_BUCKETS)
    h2 = Histogram("h", "h", registry=bulk, buckets=PREDICTION_BUCKETS)
    for v in values:
        h1.observe(v)
    _observe_many(h2, values)

    def lines(r: CollectorRegistry) -> list[str]:
        return [x for x in generate_latest(r).decode().splitlines() if "_created" not in x]

    assert lines(one) == lines(bulk)

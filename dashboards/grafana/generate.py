"""The Grafana dashboards of inferwatch, built with ``grafana-foundation-sdk``'s typed builders.

    python -m dashboards.grafana.generate            # writes dashboards/grafana/json/<uid>.json
    python -m dashboards.grafana.generate --check    # exit 1 if a committed file is stale

Three dashboards, all on the Prometheus data source that
``provisioning/datasources/prometheus.yml`` provisions (uid ``prometheus``):

* ``inferwatch-health`` — the pipeline's health: traffic per model and source, collector
  latency, consumer lag, dead letters, audit writes and retries, detector windows.
* ``inferwatch-drift`` — one model (``model``, ``version`` and ``detector`` variables): drift
  state, overall and per-feature p-values over time (a heatmap of -log10 p per feature),
  distances, outlier ratio.
* ``inferwatch-quality`` — model quality: realized and estimated performance, labelled share
  and late labels. Its metrics come with the model-quality work (issue 14) and are listed in
  :data:`PENDING` until the pipeline exports them; dashboards/README.md documents each name.

Upload them with ``inferwatch dashboards push``. tests/integration/test_grafana_dashboard.py
runs every panel query, variables filled in, against the real Prometheus after a pipeline run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    bargauge,
    common,
    dashboard,
    heatmap,
    prometheus,
    stat,
    statetimeline,
    timeseries,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models import prometheus as pm

HERE = Path(__file__).resolve().parent
OUT = HERE / "json"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="prometheus")
P_VAL = 0.05  # the detectors' default significance level

#: metrics the dashboards already chart but the pipeline does not export yet, and who brings them
PENDING: dict[str, str] = {
}

R = "$__rate_interval"
SEL = 'model=~"$model", version=~"$version"'
DSEL = 'model=~"$model", version=~"$version", detector=~"$detector"'
BY = "model, version, detector"

Builder = Any  # a grafana_foundation_sdk panel builder


def events(selector: str, window: str) -> str:
    """Events counted by a sparse counter in ``window``, per series.

    ``increase()`` cannot see the step from nothing to a series' first value (a counter's child
    is created at its first increment, so there is no earlier sample): a dead letter, a retry or
    a fired window of a new label set would read 0. A series that did not exist ``window`` ago
    counts its whole value instead (it started from 0 inside the window)."""
    new = f"({selector} unless {selector} offset {window})"
    return f"((increase({selector}[{window}]) unless {new}) or {new})"


class _Ids:
    """Panel ids and query refIds: unique per dashboard, in reading order."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def query(expr: str, legend: str = "__auto", *, ref: str = "A", instant: bool = False) -> prometheus.Dataquery:
    q = (prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)
         .editor_mode(pm.QueryEditorMode.CODE))
    return q.instant() if instant else q.range()


def thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (dashboard.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=v, color=c) for v, c in steps]))


def _legend() -> common.VizLegendOptions:
    return (common.VizLegendOptions().display_mode(cm.LegendDisplayMode.TABLE).placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True).calcs(["lastNotNull", "max"]))


def _tooltip() -> common.VizTooltipOptions:
    return common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)


def series(title: str, description: str, queries: list[prometheus.Dataquery], *, unit: str = "short",
           bars: bool = False, log_scale: bool = False, points: bool = False,
           lines: dashboard.ThresholdsConfig | None = None, area: bool = False,
           stack: bool = False, min_val: float | None = 0, max_val: float | None = None) -> timeseries.Panel:
    targets: list[cogbuilder.Builder[cogvariants.Dataquery]] = list(queries)
    p = (timeseries.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit)
         .targets(targets).legend(_legend()).tooltip(_tooltip()).line_width(1)
         .fill_opacity(60 if bars else 10).span_nulls(False)
         .draw_style(cm.GraphDrawStyle.BARS if bars else cm.GraphDrawStyle.LINE)
         .show_points(cm.VisibilityMode.ALWAYS if points else cm.VisibilityMode.NEVER))
    if min_val is not None:
        p = p.axis_soft_min(min_val)
    if max_val is not None:
        p = p.max(max_val)
    if log_scale:
        p = p.scale_distribution(common.ScaleDistributionConfig().type(cm.ScaleDistribution.LOG).log(10))
    if lines is not None:
        p = p.thresholds(lines).thresholds_style(common.GraphThresholdsStyleConfig().mode(
            cm.GraphTresholdsStyleMode.LINE_AND_AREA if area else cm.GraphTresholdsStyleMode.LINE))
    if stack:
        p = p.stacking(common.StackingConfig().mode(cm.StackingMode.NORMAL))
    return p


def single(title: str, description: str, expr: str, *, unit: str = "short",
           steps: tuple[tuple[float | None, str], ...] = ((None, "green"),), no_value: str = "0") -> stat.Panel:
    return (stat.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit)
            .with_target(query(expr, instant=True)).thresholds(thresholds(*steps)).no_value(no_value)
            .color_scheme(dashboard.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
            .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .color_mode(cm.BigValueColorMode.BACKGROUND).graph_mode(cm.BigValueGraphMode.NONE)
            .text_mode(cm.BigValueTextMode.VALUE))


def variable(name: str, definition: str, *, multi: bool = True, description: str = "") -> dashboard.QueryVariable:
    v = (dashboard.QueryVariable(name).label(name).description(description).datasource(DATASOURCE)
         .query(definition).refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
         .sort(dm.VariableSort.ALPHABETICAL_ASC).multi(multi).include_all(multi))
    return v.all_value(".*") if multi else v


def _dashboard(uid: str, title: str, description: str, tags: list[str],
               variables: list[dashboard.QueryVariable],
               layout: list[tuple[str, list[tuple[Builder, int, int]]]]) -> dict[str, Any]:
    """Rows of (panel, width, height); each row's widths add up to 24 (the SDK places them)."""
    ids = _Ids()
    d = (dashboard.Dashboard(title).uid(uid).description(description).tags(["inferwatch", *tags])
         .editable().tooltip(dm.DashboardCursorSync.CROSSHAIR).refresh("30s").time("now-1h", "now")
         .timezone("browser"))
    for v in variables:
        d = d.with_variable(v)
    for row_title, panels in layout:
        assert sum(w for _, w, _ in panels) % 24 == 0, f"{row_title}: widths do not fill the grid"
        d = d.with_row(dashboard.Row(row_title).id(ids()))
        for p, w, h in panels:
            d = d.with_panel(p.id(ids()).span(w).height(h))
    out: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(d.build()))
    # the SDK leaves an empty object when no annotation is set; Grafana's model wants the list
    # (it adds its built-in "Annotations & Alerts" query to it)
    out["annotations"] = {"list": out.get("annotations", {}).get("list", [])}
    return out


# --- pipeline health ---------------------------------------------------------------------------


def health() -> dict[str, Any]:
    rate = "[$__rate_interval]"
    latency = "inferwatch_collector_request_duration_seconds_bucket"
    return _dashboard(
        "inferwatch-health", "inferwatch — pipeline health",
        "Traffic, latency, lag, dead letters and audit writes of the inferwatch pipeline "
        "(generated by dashboards/grafana/generate.py; do not edit by hand).",
        ["pipeline"],
        [variable("model", "label_values(inferwatch_records_decoded_total, model)"),
         variable("version", 'label_values(inferwatch_records_decoded_total{model=~"$model"}, version)')],
        [
            ("Overview", [
                (single("Records decoded / s", "Decoded records appended to the log, selected models.",
                        f"sum(rate(inferwatch_records_decoded_total{{{SEL}}}{rate}))", unit="reqps"), 4, 4),
                (single("Rows decoded / s", "Rows decoded (a batch request of N rows counts N), selected models.",
                        f"sum(rate(inferwatch_rows_decoded_total{{{SEL}}}{rate}))", unit="rowsps"), 4, 4),
                (single("Collector p99 latency", "99th percentile of the collector's request handling time "
                        "up to the durable append to the log.",
                        f"histogram_quantile(0.99, sum by (le) (rate({latency}{rate})))", unit="s",
                        steps=((None, "green"), (0.5, "orange"), (2.5, "red")), no_value="-"), 4, 4),
                (single("Dead letters (time range)", "Payloads sent to the dead letters in the time range.",
                        f"sum({events('inferwatch_records_deadlettered_total', '$__range')})",
                        steps=((None, "green"), (1, "orange"))), 4, 4),
                (single("Audit retries (time range)", "Audit writes retried after backpressure or an outage "
                        "of the store, in the time range.",
                        f"sum({events('inferwatch_audit_retries_total', '$__range')})",
                        steps=((None, "green"), (1, "orange"))), 4, 4),
                (single("Max consumer lag", "The consumer group furthest behind the log (messages).",
                        "max(inferwatch_consumer_lag_records)", steps=((None, "green"), (10000, "red"))), 4, 4),
            ]),
            ("Traffic", [
                (series("Payloads received", "Payloads received by the collectors, per source (cloudevents, "
                        "json, proxy, kafka, ...), before decoding.",
                        [query(f"sum by (source) (rate(inferwatch_records_received_total{rate}))", "{{source}}")],
                        unit="reqps"), 8, 8),
                (series("Records decoded per model", "Decoded records appended to the log, per model version.",
                        [query(f"sum by (model, version) (rate(inferwatch_records_decoded_total{{{SEL}}}{rate}))",
                               "{{model}} {{version}}")], unit="reqps"), 8, 8),
                (series("Rows decoded per model", "Rows decoded, per model version (a batch of N rows counts N).",
                        [query(f"sum by (model, version) (rate(inferwatch_rows_decoded_total{{{SEL}}}{rate}))",
                               "{{model}} {{version}}")], unit="rowsps"), 8, 8),
            ]),
            ("Latency", [
                (series("Collector request latency", "Collector request handling time up to the durable append "
                        "(quantiles of the histogram, all sources).",
                        [query(f"histogram_quantile({q}, sum by (le) (rate({latency}{rate})))", f"p{int(q * 100)}",
                               ref=ref) for q, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))], unit="s"), 8, 8),
                (heat("Collector latency distribution", "Requests per latency bucket over time (the histogram's "
                      "buckets; darker is more requests).",
                      query(f"sum by (le) (increase({latency}{rate}))", "{{le}}"), unit="s", buckets=True), 8, 8),
                (series("Collector to searchable", "Time from the collector's receipt of a record to its audit "
                        "document being written (searchable after the store's refresh), per store.",
                        [query(f"histogram_quantile({q}, sum by (le, store) (rate("
                               f"inferwatch_ingest_to_searchable_seconds_bucket{rate})))", f"{{{{store}}}} p{int(q * 100)}",
                               ref=ref) for q, ref in ((0.5, "A"), (0.99, "B"))], unit="s"), 8, 8),
            ]),
            ("Log and audit", [
                (series("Consumer lag", "Log messages not yet committed, per consumer group and topic "
                        "(audit: `<group>:<topic>`; detect: its group).",
                        [query("max by (group) (inferwatch_consumer_lag_records)", "{{group}}")]), 8, 8),
                (series("Audit documents written", "Audit documents durably written, per store.",
                        [query(f"sum by (store) (rate(inferwatch_audit_documents_total{rate}))", "{{store}}")],
                        unit="ops"), 8, 8),
                (series("Audit retries", "Audit writes retried after backpressure (HTTP 429) or an outage of the "
                        "store, per store, and the records in them per model. Nothing is dropped: the log keeps the "
                        "data while the audit role backs off.",
                        [query(f"sum by (store) ({events('inferwatch_audit_retries_total', R)})", "{{store}} writes"),
                         query(f"sum by (model, version) ({events(f'inferwatch_audit_retried_records_total{{{SEL}}}', R)})",
                               "{{model}} {{version}} records", ref="B")],
                        bars=True), 8, 8),
            ]),
            ("Resilience", [
                (series("Roles ready", "1 when a role is connected to the log (and its store) and working; 0 "
                        "during an outage, while it backs off and reconnects (it never exits).",
                        [query("min by (role) (inferwatch_ready)", "{{role}}")]), 8, 8),
                (series("Requests shed by the collector", "Answered 503 with Retry-After (overload: bounds of "
                        "requests or bytes in flight; log_unavailable: not durable within the deadline), "
                        "dropped (client_gone) or not logged (skip_header).",
                        [query(f"sum by (reason) (increase(inferwatch_collector_shed_requests_total{rate}))",
                               "{{reason}}")], bars=True), 8, 8),
                (series("Copies skipped, errors recovered", "Records recognised as copies of one already "
                        "counted (a client's resend), per stage; errors a role recovered from by reconnecting.",
                        [query(f"sum by (stage) (increase(inferwatch_records_duplicate_total{rate}))",
                               "copies {{stage}}"),
                         query(f"sum by (role) (increase(inferwatch_role_errors_total{rate}))", "errors {{role}}",
                               ref="B")], bars=True), 8, 8),
            ]),
            ("Dead letters and detectors", [
                (series("Dead letters", "Payloads sent to the dead letters, per source and stage (decode, "
                        "audit, index, detect). Read the reasons in Kibana or with "
                        "`inferwatch search --kind deadletters`.",
                        [query(f"sum by (source, stage) ({events('inferwatch_records_deadlettered_total', R)})",
                               "{{source}} {{stage}}")], bars=True), 8, 8),
                (series("Values folded by the series cap", "Observations counted under `_other` because a metric "
                        "reached its cap of feature, output or class values per model version (metrics.series_cap; "
                        "the pipeline logs the first one).",
                        [query(f"sum by (metric) ({events('inferwatch_series_capped_total', R)})", "{{metric}}")],
                        bars=True), 8, 8),
                (series("Detector windows", "Windows tested per model and detector: a detector whose line "
                        "stops while its model still gets traffic has stalled (alert InferwatchDetectorStalled).",
                        [query(f"sum by (model, detector) ({events(f'inferwatch_detector_windows_total{{{SEL}}}', R)})",
                               "{{model}} {{detector}}")], bars=True), 8, 8),
            ]),
        ])


# --- drift and outliers of one model -----------------------------------------------------------


def heat(title: str, description: str, q: prometheus.Dataquery, *, unit: str = "none",
         scheme: str = "Oranges", buckets: bool = False, cell_unit: str = "short") -> heatmap.Panel:
    """A heatmap of pre-bucketed series: one row per series (per ``le`` bucket or per feature)."""
    fmt = pm.PromQueryFormat.HEATMAP if buckets else pm.PromQueryFormat.TIME_SERIES
    return (heatmap.Panel().title(title).description(description).datasource(DATASOURCE)
            .with_target(q.format(fmt))
            .calculate(False).cell_gap(1).show_legend().show_tooltip()
            .color(heatmap.HeatmapColorOptions().mode(hm.HeatmapColorMode.SCHEME).scheme(scheme)
                   .scale(hm.HeatmapColorScale.EXPONENTIAL).exponent(0.5).steps(64).fill("dark-orange"))
            .y_axis(heatmap.YAxisConfig().unit(unit).axis_placement(cm.AxisPlacement.LEFT))
            .rows_frame(heatmap.RowsHeatmapOptions().layout(
                cm.HeatmapCellLayout.LE if buckets else cm.HeatmapCellLayout.UNKNOWN))
            .cell_values(heatmap.CellValues().unit(cell_unit)))


def drift() -> dict[str, Any]:
    rate = "[$__rate_interval]"
    timeline = (statetimeline.Panel().title("Drift detected").description(
        "1 while the latest window of a model version drifted, per detector (a data-quality `schema` "
        "detector fires on missing columns).").datasource(DATASOURCE)
        .with_target(query(f"max by ({BY}) (inferwatch_drift_detected{{{DSEL}}})", "{{version}} {{detector}}"))
        .thresholds(thresholds((None, "green"), (1, "red"))).min(0).max(1)
        .color_scheme(dashboard.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .mappings([dm.ValueMap(options={"0": dm.ValueMappingResult(text="no drift", color="green", index=0),
                                        "1": dm.ValueMappingResult(text="DRIFT", color="red", index=1)})])
        .show_value(cm.VisibilityMode.NEVER).merge_values(True).row_height(0.8).fill_opacity(80).line_width(0)
        .legend(common.VizLegendOptions().show_legend(False).display_mode(cm.LegendDisplayMode.LIST)
                .placement(cm.LegendPlacement.BOTTOM)))
    latest_features = (bargauge.Panel().title("Per-feature p-values (latest window)").description(
        "Uncorrected p-value of each feature in the latest window; the detector flags a feature when it is "
        f"below the corrected threshold ({P_VAL} / number of features with Bonferroni). Red: below {P_VAL}.")
        .datasource(DATASOURCE).unit("none").min(0).max(1).decimals(4)
        .with_target(query(f"min by (detector, feature) (inferwatch_drift_feature_p_value{{{DSEL}}})",
                           "{{detector}} {{feature}}", instant=True))
        .thresholds(thresholds((None, "red"), (P_VAL, "green")))
        .color_scheme(dashboard.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .orientation(cm.VizOrientation.HORIZONTAL).display_mode(cm.BarGaugeDisplayMode.BASIC)
        .value_mode(cm.BarGaugeValueMode.COLOR).show_unfilled(True))
    return _dashboard(
        "inferwatch-drift", "inferwatch — drift and outliers",
        "Drift and outliers of one model: choose the model, its versions and detectors "
        "(generated by dashboards/grafana/generate.py; do not edit by hand).",
        ["drift", "outliers"],
        [variable("model", "label_values(inferwatch_detector_windows_total, model)", multi=False,
                  description="The model to look at (one at a time: p-values of different models do not mix)."),
         variable("version", 'label_values(inferwatch_detector_windows_total{model=~"$model"}, version)'),
         variable("detector",
                  'label_values(inferwatch_detector_windows_total{model=~"$model", version=~"$version"}, detector)')],
        [
            ("Now", [
                (single("Detectors drifting now", "Detectors whose latest window drifted.",
                        f"sum(max by ({BY}) (inferwatch_drift_detected{{{DSEL}}}))",
                        steps=((None, "green"), (1, "red"))), 6, 4),
                (single("Lowest p-value now", "The smallest overall p-value of the detectors' latest windows "
                        f"(each already corrected for the number of features); below {P_VAL} is drift.",
                        f"min(inferwatch_drift_p_value{{{DSEL}}})", unit="none",
                        steps=((None, "red"), (P_VAL, "green")), no_value="-"), 6, 4),
                (single("Outlier ratio now", "The largest share of outlier rows in an outlier detector's "
                        "latest window.", f"max(inferwatch_outlier_ratio{{{DSEL}}})", unit="percentunit",
                        steps=((None, "green"), (0.05, "red")), no_value="-"), 6, 4),
                (single("Windows tested (time range)", "Windows the selected detectors tested in the time range.",
                        f"sum({events(f'inferwatch_detector_windows_total{{{DSEL}}}', '$__range')})"), 6, 4),
            ]),
            ("Drift", [
                (timeline, 24, 6),
                (heat("Per-feature drift over time (-log10 p-value)", "One row per feature, one column per "
                      "scrape: -log10 of the feature's uncorrected p-value in the latest window (2 is p = 0.01, "
                      "5 is p = 0.00001; darker is stronger evidence of drift).",
                      query(f"-log10(clamp_min(min by (feature) (inferwatch_drift_feature_p_value{{{DSEL}}}), "
                            "1e-300))", "{{feature}}"), cell_unit="none"), 24, 10),
                (series("Drift p-value (latest window)", "Overall p-value of each detector's latest window, "
                        f"corrected for multiple features; below the line (p = {P_VAL}) is drift.",
                        [query(f"min by ({BY}) (inferwatch_drift_p_value{{{DSEL}}})", "{{version}} {{detector}}")],
                        unit="none", log_scale=True, points=True, min_val=None, max_val=1,
                        lines=thresholds((None, "red"), (P_VAL, "transparent")), area=True), 12, 8),
                (latest_features, 12, 8),
                (series("Drift distance (latest window)", "The distance statistic of each detector's latest "
                        "window (KS statistic, PSI, MMD², ... depending on the detector).",
                        [query(f"max by ({BY}) (inferwatch_drift_distance{{{DSEL}}})", "{{version}} {{detector}}")],
                        points=True), 12, 8),
                (series("Windows tested and fired", "Windows tested by each detector, and those in which it fired.",
                        [query(f"sum by (detector) ({events(f'inferwatch_detector_windows_total{{{DSEL}}}', R)})",
                               "{{detector}} tested"),
                         query(f"sum by (detector) ({events(f'inferwatch_detections_total{{{DSEL}}}', R)})",
                               "{{detector}} fired", ref="B")], bars=True), 12, 8),
            ]),
            ("Outliers", [
                (series("Outlier ratio (latest window)", "Share of rows of the latest window an outlier detector "
                        "flagged; the alert fires above 5% for 10 minutes.",
                        [query(f"max by ({BY}) (inferwatch_outlier_ratio{{{DSEL}}})", "{{version}} {{detector}}")],
                        unit="percentunit", points=True, lines=thresholds((None, "green"), (0.05, "red"))), 12, 8),
                (heat("Outlier score distribution", "Scored rows per bucket of score / threshold over time, "
                      "the detectors selected: above 1 is an outlier, whatever the detector's scale.",
                      query(f"sum by (le) (increase(inferwatch_outlier_score_threshold_ratio_bucket{{{DSEL}}}{rate}))", "{{le}}"),
                      buckets=True), 12, 8),
            ]),
            ("Data quality", [
                (series("Violations by check", "Windows that failed a data-quality check: too many missing values, "
                        "values outside the reference's range, categories the reference never had, or a schema "
                        "violation (missing or unexpected column, changed type).",
                        [query(f"sum by (check) ({events(f'inferwatch_data_quality_violations_total{{{SEL}}}', R)})",
                               "{{check}}")], bars=True, stack=True), 12, 8),
                (series("Violations by feature", "The same, per feature (bounded: features past the cap are "
                        "counted under `_other`).",
                        [query(f"sum by (feature, check) ({events(f'inferwatch_data_quality_violations_total{{{SEL}}}', R)})",
                               "{{feature}} {{check}}")], bars=True, stack=True), 12, 8),
            ]),
        ])


# --- model quality -----------------------------------------------------------------------------


def quality() -> dict[str, Any]:
    perf = "inferwatch_model_performance"
    classification = 'metric=~"accuracy|precision|recall|f1|roc_auc"'
    regression = 'metric=~"mae|rmse|mape"'
    return _dashboard(
        "inferwatch-quality", "inferwatch — model quality",
        "Realized performance (once ground truth arrives) and estimated performance (before it does) per "
        "model version. The metrics come with the model-quality work; dashboards/README.md lists their names "
        "(generated by dashboards/grafana/generate.py; do not edit by hand).",
        ["quality", "performance"],
        [variable("model", f"label_values({perf}, model)"),
         variable("version", f'label_values({perf}{{model=~"$model"}}, version)')],
        [
            ("Realized performance", [
                (series("Classification (realized)", "Accuracy, precision, recall, F1 (macro-averaged) and ROC AUC "
                        "of each window, computed on its labelled rows; revised as late labels arrive.",
                        [query(f'max by (model, version, metric) ({perf}{{{SEL}, method="realized", '
                               f"{classification}}})", "{{version}} {{metric}}")],
                        unit="percentunit", points=True, max_val=1), 12, 8),
                (series("Regression errors (realized)", "MAE, RMSE and MAPE of each window's labelled rows.",
                        [query(f'max by (model, version, metric) ({perf}{{{SEL}, method="realized", '
                               f"{regression}}})", "{{version}} {{metric}}")], points=True), 12, 8),
            ]),
            ("Estimated before labels", [
                (series("Estimated vs realized", "Performance estimated from the predicted probabilities before "
                        "labels arrive (CBPE for classifiers, direct loss estimation for regressors), next to the "
                        "realized figure once labels are in.",
                        [query(f"max by (model, version, metric, method) ({perf}{{{SEL}}})",
                               "{{version}} {{metric}} {{method}}")], points=True), 12, 8),
                (series("Labelled share of the latest window", "Share of the latest window's rows that have "
                        "ground truth: realized figures over a small share are noisy.",
                        [query(f"max by (model, version) ({perf}_labelled_ratio{{{SEL}}})", "{{version}}")],
                        unit="percentunit", max_val=1), 12, 8),
            ]),
            ("Ground truth", [
                (series("Labels received", "Ground-truth labels received per second (feedback endpoint and topic). "
                        "A label names its request, not the model version, so this is per model.",
                        [query('sum by (model) (rate(inferwatch_feedback_labels_total{model=~"$model"}'
                               "[$__rate_interval]))", "{{model}}")], unit="ops"), 12, 8),
                (series("Labels waiting for their prediction", "Labels that arrived before the prediction they "
                        "belong to, kept (bounded) until it does.",
                        [query('max by (model) (inferwatch_feedback_unmatched_labels{model=~"$model"})',
                               "{{model}}")]), 12, 8),
            ]),
            ("Predictions", [
                (heat("Numeric predictions", "Distribution of the model's numeric outputs over time (regression "
                      "values, scores, probabilities): rows per output bucket.",
                      query(f"sum by (le) (increase(inferwatch_prediction_value_bucket{{{SEL}}}[$__rate_interval]))",
                            "{{le}}"), buckets=True), 12, 8),
                (series("Predicted classes", "Share of predictions per class (categorical outputs; classes past "
                        "the cap are counted under `_other`).",
                        [query(f"sum by (output, class) (rate(inferwatch_predicted_class_total{{{SEL}}}"
                               "[$__rate_interval])) / ignoring (class) group_left sum by (output) "
                               f"(rate(inferwatch_predicted_class_total{{{SEL}}}[$__rate_interval]))",
                               "{{output}} = {{class}}")], unit="percentunit", stack=True, max_val=1), 12, 8),
            ]),
        ])


DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "inferwatch-health": health, "inferwatch-drift": drift, "inferwatch-quality": quality}


def render(uid: str) -> str:
    return json.dumps(DASHBOARDS[uid](), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT, help="folder of the JSON files (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="exit 1 if a file differs from the generated JSON")
    args = ap.parse_args(argv)
    stale = []
    for uid in DASHBOARDS:
        path, text = args.out / f"{uid}.json", render(uid)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if stale:
        print(f"stale: {', '.join(map(str, stale))}; run python -m dashboards.grafana.generate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

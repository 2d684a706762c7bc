"""The report writer of ``inferwatch report``: ``report.json``, a self-contained ``report.html``
with inline PNG plots, and the batch job's metrics pushed to a Pushgateway.

Modules: ``model`` (:class:`BatchReport`, the JSON document), ``charts`` (the plots),
``page`` (the HTML page, writing both files), ``push`` (the Pushgateway).

A :class:`BatchReport` holds what a batch run produced — the :class:`Detection` of every
window, the rows tested (per version and target) and the references they were tested
against — and nothing detector-specific: every detector's result is read through the same
``Detection`` fields.

* :func:`report_dict` — the JSON document (``format: inferwatch-report/1``): a summary, one
  entry per window, per-feature p-values and distances, and the detections themselves;
* :func:`render_html` — one HTML page: the verdict, a summary table of the windows,
  per-feature p-value bar charts with the (corrected) threshold line, the p-value over the
  windows, and reference-vs-current histograms (numerical) or bar charts (categorical) of
  the most drifted features; plots are PNGs drawn with matplotlib's Agg canvas (no
  ``pyplot`` state), inlined as base64;
* :func:`write_report` — both files into a folder;
* :func:`push_report_metrics` — :meth:`inferwatch.metrics.Metrics.observe_detection` for each
  window plus ``inferwatch_report_last_success_timestamp_seconds``, pushed (job
  ``inferwatch-report``, grouping key ``model``).

>>> from inferwatch.record import Detection
>>> d = Detection(detector="ks", kind="drift", model="iris", window_size=3, is_drift=True, p_value=0.002,
...               threshold=0.05, feature_p_values={"x": 0.001}, feature_drift={"x": True})
>>> r = BatchReport(model="iris", detections=[d], rows=3)
>>> s = report_dict(r)["summary"]
>>> s["drift"], s["windows"], s["drifted_windows"], s["drifted_features"]
(True, 1, 1, ['x'])
"""

from __future__ import annotations

from sinks.report.model import REPORT_FORMAT, BatchReport, report_dict
from sinks.report.page import render_html, write_report
from sinks.report.push import REPORT_JOB, push_report_metrics

__all__ = ["REPORT_FORMAT", "REPORT_JOB", "BatchReport", "push_report_metrics", "render_html", "report_dict",
           "write_report"]

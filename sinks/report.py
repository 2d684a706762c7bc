"""The report writer of ``inferwatch report``: ``report.json``, a self-contained ``report.html``
with inline PNG plots, and the batch job's metrics pushed to a Pushgateway.

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
* :func:`push_report_metrics` — :meth:`sinks.prometheus.Metrics.observe_detection` for each
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

import base64
import html
import io
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from inferwatch.record import Detection, utcnow
from inferwatch.references import ReferenceInfo

__all__ = ["REPORT_FORMAT", "REPORT_JOB", "BatchReport", "push_report_metrics", "render_html", "report_dict",
           "write_report"]

REPORT_FORMAT = "inferwatch-report/1"
REPORT_JOB = "inferwatch-report"
_P_FLOOR = 1e-300  # p-values of exactly 0 are drawn (and sorted) as this
_MAX_BARS = 40  # features per p-value chart (the lowest p-values)
_MAX_CATEGORIES = 15


@dataclass
class BatchReport:
    """Everything one batch run produced (see the module docstring).

    ``current`` maps ``(version, target)`` (target ``inputs`` or ``outputs``) to the rows
    tested, in the order they were fed to the windows; ``references`` maps reference ids to
    their metadata and data.
    """

    model: str
    detections: list[Detection]
    rows: int = 0
    current: dict[tuple[str | None, str], pd.DataFrame] = field(default_factory=dict)
    references: dict[str, tuple[ReferenceInfo, pd.DataFrame]] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    window: int | None = None
    """Rows per window, ``None`` for the whole batch as one window."""
    detectors: list[dict[str, Any]] = field(default_factory=list)
    skipped_rows: int = 0
    notes: list[str] = field(default_factory=list)
    generated_at: datetime = field(default_factory=utcnow)

    @property
    def drift(self) -> bool:
        """Whether any window drifted (or failed a data-quality check)."""
        return any(d.is_drift for d in self.detections)


# -- the JSON document ----------------------------------------------------------------------


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _windows(report: BatchReport) -> list[dict[str, Any]]:
    """One entry per window and detector, numbered per (version, target, detector) with the
    window's row range within that group (tumbling windows are consecutive)."""
    out = []
    index: dict[tuple[str | None, str, str], int] = {}
    offset: dict[tuple[str | None, str, str], int] = {}
    for i, d in enumerate(report.detections):
        on = str(d.extra.get("on", "inputs"))
        key = (d.version, on, d.detector)
        k = index[key] = index.get(key, -1) + 1
        first = offset.get(key, 0)
        offset[key] = first + d.window_size
        out.append({
            "detection": i,
            "window": k,
            "version": d.version,
            "on": on,
            "detector": d.detector,
            "kind": d.kind,
            "rows": [first, first + d.window_size],
            "size": d.window_size,
            "start": d.window_start,
            "end": d.window_end,
            "fired": d.fired,
            "p_value": _finite(d.p_value),
            "distance": _finite(d.distance),
            "threshold": _finite(d.threshold),
            "drifted_features": d.drifted_features,
            "reason": d.extra.get("reason"),
        })
    return out


def _features(report: BatchReport, windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (version, target, detector, feature): p-values and distances of every window that
    tested the feature (``windows``: their numbers, as in :func:`_windows`)."""
    table: dict[tuple[str | None, str, str, str], dict[str, Any]] = {}
    for d, win in zip(report.detections, windows, strict=True):
        if not d.feature_p_values and not d.feature_distances:
            continue
        on = str(d.extra.get("on", "inputs"))
        tests = d.extra.get("tests") or {}
        for f in dict.fromkeys([*d.feature_p_values, *d.feature_distances]):
            key = (d.version, on, d.detector, f)
            row = table.setdefault(key, {
                "version": d.version, "on": on, "detector": d.detector, "feature": f,
                "test": tests.get(f, d.detector), "windows": [], "p_values": [], "distances": [], "drift": [],
                "threshold": None,
            })
            row["windows"].append(win["window"])
            row["p_values"].append(_finite(d.feature_p_values.get(f)))
            row["distances"].append(_finite(d.feature_distances.get(f)))
            row["drift"].append(bool(d.feature_drift.get(f, False)))
            thr = d.extra.get("feature_threshold", d.threshold)
            if thr is not None and math.isfinite(float(thr)):
                row["threshold"] = float(thr)
    out = []
    for row in table.values():
        ps = [p for p in row["p_values"] if p is not None]
        ds = [x for x in row["distances"] if x is not None]
        row["min_p_value"] = min(ps) if ps else None
        row["max_distance"] = max(ds) if ds else None
        row["drifted_windows"] = sum(row["drift"])
        out.append(row)
    return out


def _summary(report: BatchReport, windows: list[dict[str, Any]], features: list[dict[str, Any]]) -> dict[str, Any]:
    per_detector: dict[str, dict[str, Any]] = {}
    for w in windows:
        s = per_detector.setdefault(w["detector"], {"kind": w["kind"], "windows": 0, "fired": 0, "min_p_value": None})
        s["windows"] += 1
        s["fired"] += bool(w["fired"])
        if w["p_value"] is not None:
            s["min_p_value"] = w["p_value"] if s["min_p_value"] is None else min(s["min_p_value"], w["p_value"])
    drifted = sorted({f["feature"] for f in features if f["drifted_windows"]})
    ps = [w["p_value"] for w in windows if w["p_value"] is not None and w["kind"] == "drift"]
    # a "window" is one slice of rows; every detector tests it
    slices = {(w["version"], w["on"], w["rows"][0]) for w in windows}
    fired = {(w["version"], w["on"], w["rows"][0]) for w in windows if w["fired"]}
    return {
        "model": report.model,
        "drift": report.drift,
        "rows": report.rows,
        "skipped_rows": report.skipped_rows,
        "windows": len(slices),
        "drifted_windows": len(fired),
        "detections": len(windows),
        "fired_detections": sum(bool(w["fired"]) for w in windows),
        "drifted_features": drifted,
        "min_p_value": min(ps) if ps else None,
        "detectors": per_detector,
        "versions": sorted({str(w["version"]) for w in windows if w["version"] is not None}),
    }


def report_dict(report: BatchReport) -> dict[str, Any]:
    """The report as a JSON-able document (what ``report.json`` holds)."""
    windows = _windows(report)
    features = _features(report, windows)
    return {
        "format": REPORT_FORMAT,
        "generated_at": report.generated_at,
        "model": report.model,
        "source": report.source,
        "window": report.window,
        "detectors": report.detectors,
        "references": [info.to_dict() for info, _ in report.references.values()],
        "notes": report.notes,
        "summary": _summary(report, windows, features),
        "windows": windows,
        "features": features,
        "detections": [d.to_dict() for d in report.detections],
    }


def _dumps(doc: Any, indent: bool = False) -> bytes:
    opt = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(doc, option=opt, default=str)


# -- plots -----------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure  # the Agg canvas; no pyplot, no global backend

    fig = Figure(figsize=(width, height))
    fig.patch.set_facecolor("white")
    return fig


_RED, _BLUE, _GREY, _ORANGE = "#c0392b", "#2e6fba", "#9aa5b1", "#e08a1e"


def _pvalue_chart(rows: list[dict[str, Any]], title: str) -> str:
    """Horizontal bars of -log10(p) per feature (lowest p-values first), threshold line."""
    rows = sorted(rows, key=lambda r: r["min_p_value"] if r["min_p_value"] is not None else 2.0)[:_MAX_BARS]
    names = [r["feature"] for r in rows]
    p = np.array([r["min_p_value"] if r["min_p_value"] is not None else np.nan for r in rows], dtype=float)
    score = -np.log10(np.clip(np.nan_to_num(p, nan=1.0), _P_FLOOR, 1.0))
    thresholds = [r["threshold"] for r in rows if r["threshold"]]
    thr = min(thresholds) if thresholds else None
    fig = _figure(7.5, 1.1 + 0.32 * len(rows))
    ax = fig.add_subplot()
    colors = [_RED if r["drifted_windows"] else _BLUE for r in rows]
    ax.barh(range(len(rows))[::-1], score, color=colors, height=0.7)
    ax.set_yticks(range(len(rows))[::-1], names, fontsize=9)
    top = max(float(score.max(initial=0.0)), -math.log10(thr) if thr else 0.0, 1.0)
    ax.set_xlim(0, top * 1.25)
    for y, (s, pv) in enumerate(zip(score, p, strict=True)):
        label = "n/a" if np.isnan(pv) else f"p={pv:.2g}"
        ax.text(s + top * 0.01, len(rows) - 1 - y, label, va="center", fontsize=8, color="#333")
    if thr:
        ax.axvline(-math.log10(thr), color=_ORANGE, linestyle="--", linewidth=1.5,
                   label=f"threshold p = {thr:.3g}")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_xlabel("-log10(p-value)   (longer bar = stronger evidence of drift; red = drifted)", fontsize=9)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _window_chart(windows: list[dict[str, Any]], title: str) -> str:
    """The batch p-value of each window, per detector, on a log axis with the threshold."""
    fig = _figure(7.5, 3.0)
    ax = fig.add_subplot()
    by_det: dict[str, list[dict[str, Any]]] = {}
    for w in windows:
        if w["p_value"] is not None and w["kind"] == "drift":
            by_det.setdefault(w["detector"], []).append(w)
    thr = None
    for det, ws in by_det.items():
        x = [w["window"] + 1 for w in ws]
        y = [max(w["p_value"], _P_FLOOR) for w in ws]
        ax.plot(x, y, marker="o", label=det)
        fired = [(a, b) for a, b, w in zip(x, y, ws, strict=True) if w["fired"]]
        if fired:
            ax.scatter(*zip(*fired, strict=True), color=_RED, zorder=3, s=40)
        thr = thr or next((w["threshold"] for w in ws if w["threshold"]), None)
    ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if thr:
        ax.axhline(thr, color=_ORANGE, linestyle="--", linewidth=1.5, label=f"threshold p = {thr:.3g}")
    ax.set_xlabel("window", fontsize=9)
    ax.set_ylabel("p-value (corrected)", fontsize=9)
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(fontsize=8, frameon=True, loc="best")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _distribution_chart(feature: str, ref: pd.Series, cur: pd.Series, subtitle: str) -> str | None:
    """Overlaid histograms (numerical) or side-by-side bars of shares (categorical)."""
    fig = _figure(4.6, 3.0)
    ax = fig.add_subplot()
    if _is_numeric(ref) and (_is_numeric(cur) or cur.isna().all()):
        r = pd.to_numeric(ref, errors="coerce").dropna().to_numpy(dtype=float)
        c = pd.to_numeric(cur, errors="coerce").dropna().to_numpy(dtype=float)
        if not len(r) or not len(c):
            return None
        both = np.concatenate([r, c])
        lo, hi = np.percentile(both, [0.5, 99.5])
        if not hi > lo:
            lo, hi = float(both.min()) - 0.5, float(both.max()) + 0.5
        bins = np.histogram_bin_edges(both[(both >= lo) & (both <= hi)], bins="auto", range=(lo, hi))
        if len(bins) > 41:
            bins = np.linspace(lo, hi, 41)
        ax.hist(r, bins=bins, density=True, alpha=0.5, color=_BLUE, label=f"reference (n={len(r)})")
        ax.hist(c, bins=bins, density=True, alpha=0.5, color=_RED, label=f"current (n={len(c)})")
        ax.set_ylabel("density", fontsize=8)
    else:
        rs = ref.dropna().astype(str).value_counts(normalize=True)
        cs = cur.dropna().astype(str).value_counts(normalize=True)
        if rs.empty and cs.empty:
            return None
        cats = (rs.add(cs, fill_value=0).sort_values(ascending=False).index[:_MAX_CATEGORIES]).tolist()
        x = np.arange(len(cats))
        ax.bar(x - 0.2, [rs.get(k, 0.0) for k in cats], width=0.4, color=_BLUE, alpha=0.8,
               label=f"reference (n={int(ref.notna().sum())})")
        ax.bar(x + 0.2, [cs.get(k, 0.0) for k in cats], width=0.4, color=_RED, alpha=0.8,
               label=f"current (n={int(cur.notna().sum())})")
        ax.set_xticks(x, [k if len(k) <= 14 else k[:13] + "…" for k in cats], rotation=30, ha="right",
                      fontsize=8)
        ax.set_ylabel("share of rows", fontsize=8)
    ax.set_title(f"{feature}\n{subtitle}", fontsize=9, loc="left")
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


# -- the HTML page ---------------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px;background:#fff;min-height:100vh}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #e4e7eb;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}.meta{color:#52606d;font-size:13px;margin:0 0 14px}
.verdict{padding:12px 16px;border-radius:6px;font-size:16px;font-weight:600;margin:12px 0}
.drift{background:#fdecea;color:#8a1c12;border-left:6px solid #c0392b}
.ok{background:#e8f6ee;color:#1d6b3a;border-left:6px solid #27ae60}
table{border-collapse:collapse;font-size:13px;margin:6px 0 10px;width:100%}
th,td{border-bottom:1px solid #e4e7eb;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f4f8;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.yes{color:#c0392b;font-weight:700}.no{color:#1d6b3a}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{margin:0;flex:1 1 46%}
img{max-width:100%;height:auto;border:1px solid #eef1f4;border-radius:4px}
figcaption{font-size:12px;color:#52606d}code{background:#f0f4f8;padding:1px 4px;border-radius:3px}
.note{color:#8a5a00;font-size:13px}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _fmt_p(p: float | None) -> str:
    return "—" if p is None else f"{p:.3g}"


def _fmt_time(t: Any) -> str:
    if isinstance(t, datetime):
        return t.strftime("%Y-%m-%d %H:%M:%S")
    return "" if t is None else str(t)


def _img(b64: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{b64}" alt="{_e(alt)}">'


def _group_label(version: str | None, on: str) -> str:
    parts = [f"version {version}" if version else "", "outputs" if on == "outputs" else ""]
    return ", ".join(p for p in parts if p)


def render_html(report: BatchReport, top: int = 6) -> str:
    """The report as one self-contained HTML page (plots inlined as base64 PNGs)."""
    doc = report_dict(report)
    s, windows, features = doc["summary"], doc["windows"], doc["features"]
    out: list[str] = []
    w = out.append
    w(f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>inferwatch drift report — "
      f"{_e(report.model)}</title><style>{_CSS}</style></head><body><main>")
    w(f"<h1>Drift report: {_e(report.model)}</h1>")
    src = report.source
    src_text = ", ".join(f"{k}: {v}" for k, v in src.items() if v not in (None, "", []))
    w(f"<p class=\"meta\">Generated {_e(_fmt_time(report.generated_at))} UTC · {s['rows']} rows · "
      f"{'whole batch as one window' if report.window is None else f'windows of {report.window} rows'}"
      f"{' · ' + _e(src_text) if src_text else ''}</p>")
    if report.drift:
        feats = ", ".join(s["drifted_features"][:12]) + (" …" if len(s["drifted_features"]) > 12 else "")
        w(f"<div class=\"verdict drift\">Drift detected in {s['drifted_windows']} of {s['windows']} window(s)"
          f"{' — features: ' + _e(feats) if feats else ''}</div>")
    else:
        w(f"<div class=\"verdict ok\">No drift detected in {s['windows']} window(s)</div>")
    for note in report.notes:
        w(f"<p class=\"note\">{_e(note)}</p>")

    # summary table
    versioned = any(x["version"] is not None or x["on"] == "outputs" for x in windows)
    w(f"<h2>Windows</h2><table><tr><th>#</th>{'<th>version</th>' if versioned else ''}<th>detector</th>"
      "<th>rows</th><th>time</th><th>drift</th><th>p-value</th><th>threshold</th><th>distance</th>"
      "<th>drifted features / reason</th></tr>")
    for win in windows:
        fired = win["fired"]
        span = f"{win['rows'][0] + 1}-{win['rows'][1]}"
        when = _fmt_time(win["start"]) if win["start"] == win["end"] else \
            f"{_fmt_time(win['start'])} to {_fmt_time(win['end'])}"
        detail = ", ".join(win["drifted_features"]) or (win["reason"] or "")
        vcell = f"<td>{_e(win['version'] or '')}{' (outputs)' if win['on'] == 'outputs' else ''}</td>"
        w(f"<tr><td class=\"num\">{win['window'] + 1}</td>{vcell if versioned else ''}<td>{_e(win['detector'])}</td>"
          f"<td class=\"num\">{span}</td><td>{_e(when)}</td>"
          f"<td class=\"{'yes' if fired else 'no'}\">{'yes' if fired else 'no'}</td>"
          f"<td class=\"num\">{_fmt_p(win['p_value'])}</td><td class=\"num\">{_fmt_p(win['threshold'])}</td>"
          f"<td class=\"num\">{_fmt_p(win['distance'])}</td><td>{_e(detail)}</td></tr>")
    w("</table>")
    if not windows:
        w("<p class=\"note\">No window was tested.</p>")

    # p-value charts and per-feature tables, one per (version, target, detector)
    groups: dict[tuple[str | None, str, str], list[dict[str, Any]]] = {}
    for f in features:
        groups.setdefault((f["version"], f["on"], f["detector"]), []).append(f)
    if groups:
        w("<h2>Per-feature p-values</h2>")
    for (version, on, det), rows in groups.items():
        label = _group_label(version, on)
        n_win = max(len(r["p_values"]) for r in rows)
        title = f"{det}{' — ' + label if label else ''}: " + (
            "p-value per feature" if n_win == 1 else f"lowest p-value per feature over {n_win} windows")
        w(f"<h3>{_e(title)}</h3>")
        w(_img(_pvalue_chart(rows, ""), f"p-values per feature, {det}"))
        det_windows = [x for x in windows if (x["version"], x["on"], x["detector"]) == (version, on, det)]
        if len(det_windows) > 1:
            w(_img(_window_chart(det_windows, f"{det}: p-value per window"), f"p-value per window, {det}"))
        w("<table><tr><th>feature</th><th>test</th><th>lowest p-value</th><th>threshold</th>"
          "<th>largest distance</th><th>drifted windows</th></tr>")
        for r in sorted(rows, key=lambda r: r["min_p_value"] if r["min_p_value"] is not None else 2.0):
            w(f"<tr><td>{_e(r['feature'])}</td><td>{_e(r['test'])}</td>"
              f"<td class=\"num\">{_fmt_p(r['min_p_value'])}</td><td class=\"num\">{_fmt_p(r['threshold'])}</td>"
              f"<td class=\"num\">{_fmt_p(r['max_distance'])}</td>"
              f"<td class=\"num {'yes' if r['drifted_windows'] else ''}\">{r['drifted_windows']} of "
              f"{len(r['p_values'])}</td></tr>")
        w("</table>")

    # distributions of the most drifted features
    plots = _distribution_plots(report, features, windows, top)
    if plots:
        w("<h2>Most drifted features: reference vs current</h2><div class=\"grid\">")
        for b64, caption in plots:
            w(f"<figure>{_img(b64, caption)}<figcaption>{_e(caption)}</figcaption></figure>")
        w("</div>")

    # provenance
    w("<h2>Reference and detectors</h2><table><tr><th>reference</th><th>model / version</th><th>rows</th>"
      "<th>columns</th><th>source</th><th>created</th></tr>")
    for info, _ in report.references.values():
        w(f"<tr><td><code>{_e(info.id)}</code></td><td>{_e(info.model)} / {_e(info.version or '*')}</td>"
          f"<td class=\"num\">{info.rows}</td><td>{len(info.columns)}</td><td>{_e(info.source)}</td>"
          f"<td>{_e(info.created_at[:19])}</td></tr>")
    w("</table>")
    if report.detectors:
        w("<p class=\"meta\">Detectors: " + "; ".join(
            f"<code>{_e(orjson.dumps(d, default=str).decode())}</code>" for d in report.detectors) + "</p>")
    w("<p class=\"meta\">Written by <code>inferwatch report</code>; the same numbers are in "
      "<code>report.json</code>.</p></main></body></html>")
    return "\n".join(out)


def _distribution_plots(report: BatchReport, features: list[dict[str, Any]], windows: list[dict[str, Any]],
                        top: int) -> list[tuple[str, str]]:
    """Reference vs current for the ``top`` features with the lowest p-values (the current rows
    are those of the window where the feature's p-value was lowest)."""
    if top <= 0:
        return []
    ranked = sorted((f for f in features if f["min_p_value"] is not None), key=lambda f: f["min_p_value"])
    seen: set[tuple[str | None, str, str]] = set()
    out: list[tuple[str, str]] = []
    for f in ranked:
        key = (f["version"], f["on"], f["feature"])
        if key in seen:
            continue
        seen.add(key)
        current = report.current.get((f["version"], f["on"]))
        if current is None or f["feature"] not in current:
            continue
        det_windows = [x for x in windows if (x["version"], x["on"], x["detector"]) ==
                       (f["version"], f["on"], f["detector"])]
        j = int(np.argmin([np.inf if p is None else p for p in f["p_values"]]))
        k = f["windows"][j]
        ref_id = report.detections[det_windows[k]["detection"]].reference_id if k < len(det_windows) else None
        ref = report.references.get(ref_id or "")
        if ref is None or f["feature"] not in ref[1]:
            continue
        lo, hi = det_windows[k]["rows"] if k < len(det_windows) else (0, len(current))
        cur = current[f["feature"]].iloc[lo:hi]
        where = "whole batch" if len(det_windows) <= 1 else f"window {k + 1}, rows {lo + 1}-{hi}"
        label = _group_label(f["version"], f["on"])
        subtitle = f"p = {f['min_p_value']:.3g} ({f['test']}), {where}{'; ' + label if label else ''}"
        b64 = _distribution_chart(f["feature"], ref[1][f["feature"]], cur, subtitle)
        if b64:
            out.append((b64, f"{f['feature']}: {subtitle}"))
        if len(out) >= top:
            break
    return out


def write_report(report: BatchReport, out_dir: str | os.PathLike[str], top: int = 6) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir`` (created); returns both paths.

    Each file is written to a temporary name and renamed, so a reader never sees half a report.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "report.json", out / "report.html")
    contents = (_dumps(report_dict(report), indent=True), render_html(report, top=top).encode("utf-8"))
    for path, data in zip(paths, contents, strict=True):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return paths


# -- metrics ---------------------------------------------------------------------------------


def push_report_metrics(detections: Iterable[Detection], gateway: str, model: str, *, job: str = REPORT_JOB,
                        grouping: dict[str, str] | None = None, now: float | None = None) -> Any:
    """Push the batch's drift metrics (the same families the stream exports) and
    ``inferwatch_report_last_success_timestamp_seconds`` to a Pushgateway.

    The push replaces the group ``job``/``model`` (an HTTP PUT), so the gauges show this run
    only. Returns the :class:`~sinks.prometheus.Metrics` that was pushed.
    """
    import time

    from prometheus_client import Gauge

    from sinks.prometheus import Metrics

    metrics = Metrics()
    for d in detections:
        metrics.observe_detection(d)
    Gauge("inferwatch_report_last_success_timestamp_seconds",
          "Unix time at which inferwatch report last wrote a report.", registry=metrics.registry
          ).set(time.time() if now is None else now)
    metrics.push(gateway, job=job, grouping_key={"model": model, **(grouping or {})})
    return metrics

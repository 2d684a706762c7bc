"""The report's model: :class:`BatchReport` (what a batch run produced) and its JSON document.

:func:`report_dict` gives the document ``report.json`` holds (``format: inferwatch-report/1``):
a summary, one entry per window, per-feature p-values and distances, and the detections
themselves. Every detector's result is read through the same ``Detection`` fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pandas as pd

from inferwatch.record import Detection, utcnow
from inferwatch.references import ReferenceInfo

__all__ = ["REPORT_FORMAT", "BatchReport", "dumps", "report_dict"]

REPORT_FORMAT = "inferwatch-report/1"
_MAX_CATEGORIES = 100
"""Categories per feature in ``distributions``; the rest are summed into one."""


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
    current: dict[tuple[str | None, str], Any] = field(default_factory=dict)
    """Per ``(version, target)``: the rows tested, a DataFrame or anything that answers
    ``name in current`` and gives a column as a Series with ``current[name]`` (a table file
    read a column at a time)."""
    references: dict[str, tuple[ReferenceInfo, pd.DataFrame]] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    window: int | None = None
    """Rows per window, ``None`` for the whole batch as one window."""
    detectors: list[dict[str, Any]] = field(default_factory=list)
    skipped_rows: int = 0
    notes: list[str] = field(default_factory=list)
    performance: list[Detection] = field(default_factory=list)
    """Performance per window of prediction time: realized (labelled rows), or estimated (CBPE)."""
    generated_at: datetime = field(default_factory=utcnow)
    mode: str = "exact"
    """How the p-values were computed: ``exact`` (on the values, or counts that give the same
    statistics) or ``binned`` (numerical features in reference-quantile bins: conservative)."""
    counts: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Per detection (its index in :attr:`detections`): its window's and the reference's counts
    per feature, what the distribution plots are drawn from when the rows' values are not kept
    (a report from Elasticsearch): ``{"edges", "reference", "current"}`` (cells at the
    reference's quantile edges) for a numerical feature, ``{"reference", "current"}`` (category
    -> count) for a categorical one (``detectors.TabularDrift.window_counts``)."""

    @property
    def drift(self) -> bool:
        """Whether any window drifted (or failed a data-quality check)."""
        return any(d.is_drift for d in self.detections)


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
            # what a per-feature test could not use (detectors.common._univariate)
            "n_tested": d.extra.get("n_tested"),
            "untested": dict(d.extra.get("untested") or {}),
            "missing_values": {k: v for k, v in (d.extra.get("missing_values") or {}).items() if v},
            "bad_values": dict(d.extra.get("bad_values") or {}),
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
                "threshold": None, "methods": [],
            })
            method = (d.extra.get("methods") or {}).get(f)
            if method and method not in row["methods"]:
                row["methods"].append(method)
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
        "mode": report.mode,
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
        "untested": _untested(windows),
    }


def _untested(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per feature: in how many (window, detector) tests it was not tested and why, and the
    missing and bad (non-numeric) cells dropped over all windows."""
    out: dict[str, Any] = {}
    for w in windows:
        for f, why in w.get("untested", {}).items():
            row = out.setdefault(f, {"reasons": {}, "missing_values": 0, "bad_values": 0})
            row["reasons"][why] = row["reasons"].get(why, 0) + 1
        for key in ("missing_values", "bad_values"):
            for f, n in w.get(key, {}).items():
                row = out.setdefault(f, {"reasons": {}, "missing_values": 0, "bad_values": 0})
                row[key] += int(n)
    return out


def _performance(report: BatchReport) -> list[dict[str, Any]]:
    """One entry per performance window (and per variants comparison), oldest first."""
    out = []
    for d in report.performance:
        entry: dict[str, Any] = {
            "detector": d.detector, "version": d.version, "start": d.window_start, "end": d.window_end,
            "rows": d.window_size, "fired": d.fired, "distance": _finite(d.distance),
            "method": "estimated" if d.extra.get("estimated") else "realized",
            "estimator": d.extra.get("method"),
            "labelled": d.extra.get("labelled"), "labelled_share": d.extra.get("labelled_share"),
            "metrics": {k: _finite(v) for k, v in (d.extra.get("metrics") or {}).items()},
        }
        if d.detector == "variants":
            entry["baseline"] = d.extra.get("baseline")
            entry["variants"] = d.extra.get("variants")
        out.append(entry)
    return out


def _label(key: Any) -> str:
    """A category as the report shows it (``2.0`` as ``2``)."""
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


def _distributions(report: BatchReport, windows: list[dict[str, Any]],
                   features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per feature (lowest p-value first), the counts of the window where its p-value was lowest
    beside the reference's: what the page's distribution plots draw (reports that keep
    :attr:`BatchReport.counts`; empty otherwise)."""
    if not report.counts:
        return []
    out = []
    seen: set[tuple[str | None, str, str]] = set()
    for f in sorted((f for f in features if f["min_p_value"] is not None), key=lambda f: f["min_p_value"]):
        key = (f["version"], f["on"], f["feature"])
        if key in seen:
            continue
        j = min(range(len(f["p_values"])), key=lambda i: 2.0 if f["p_values"][i] is None else f["p_values"][i])
        win = next(w for w in windows if (w["version"], w["on"], w["detector"], w["window"]) ==
                   (f["version"], f["on"], f["detector"], f["windows"][j]))
        counts = (report.counts.get(win["detection"]) or {}).get(f["feature"])
        if counts is None:
            continue
        seen.add(key)
        entry: dict[str, Any] = {"version": f["version"], "on": f["on"], "feature": f["feature"],
                                 "detector": f["detector"], "test": f["test"], "p_value": f["p_values"][j],
                                 "window": win["window"], "start": win["start"], "end": win["end"]}
        if "edges" in counts:
            entry.update(kind="numerical", edges=list(counts["edges"]), reference=list(counts["reference"]),
                         current=list(counts["current"]))
        else:
            ref: dict[str, int] = {}
            cur: dict[str, int] = {}
            for src, dst in ((counts["reference"], ref), (counts["current"], cur)):
                for k, n in src.items():
                    dst[_label(k)] = dst.get(_label(k), 0) + int(n)
            cats = sorted(set(ref) | set(cur), key=lambda k: (-(ref.get(k, 0) + cur.get(k, 0)), k))
            rest = cats[_MAX_CATEGORIES:]
            cats = cats[:_MAX_CATEGORIES]
            entry.update(kind="categorical", categories=cats, reference=[ref.get(k, 0) for k in cats],
                         current=[cur.get(k, 0) for k in cats])
            if rest:  # the long tail as one cell: the totals stay whole
                entry["categories"].append(f"({len(rest)} other categories)")
                entry["reference"].append(sum(ref.get(k, 0) for k in rest))
                entry["current"].append(sum(cur.get(k, 0) for k in rest))
        out.append(entry)
    return out


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
        "mode": report.mode,
        "detectors": report.detectors,
        "references": [info.to_dict() for info, _ in report.references.values()],
        "notes": report.notes,
        "summary": _summary(report, windows, features),
        "windows": windows,
        "features": features,
        "performance": _performance(report),
        "distributions": _distributions(report, windows, features),
        "detections": [d.to_dict() for d in report.detections],
    }


def dumps(doc: Any, indent: bool = False) -> bytes:
    opt = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(doc, option=opt, default=str)

"""The report's HTML page (:func:`render_html`: one self-contained page, plots inlined) and
:func:`write_report`, which writes ``report.json`` and ``report.html`` into a folder.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from sinks.report.charts import (
    counts_chart,
    distribution_chart,
    distribution_summary,
    pvalue_chart,
    window_chart,
)
from sinks.report.model import BatchReport, dumps, report_dict

__all__ = ["render_html", "write_report"]


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
      f"{'whole batch as one window' if report.window is None else f'windows of {report.window} rows'} · "
      f"<strong>{_e(report.mode)} tests</strong>"
      f"{' · ' + _e(src_text) if src_text else ''}</p>")
    if report.drift:
        feats = ", ".join(s["drifted_features"][:12]) + (" …" if len(s["drifted_features"]) > 12 else "")
        w(f"<div class=\"verdict drift\">Drift detected in {s['drifted_windows']} of {s['windows']} window(s)"
          f"{' — features: ' + _e(feats) if feats else ''}</div>")
    else:
        w(f"<div class=\"verdict ok\">No drift detected in {s['windows']} window(s)</div>")
    for note in report.notes:
        w(f"<p class=\"note\">{_e(note)}</p>")
    for feat, row in s.get("untested", {}).items():
        parts = [f"untested in {n} window test(s): {why}" for why, n in row["reasons"].items()]
        parts += [f"{row[k]} {k.replace('_', ' ')} dropped" for k in ("missing_values", "bad_values") if row[k]]
        w(f"<p class=\"note\">Feature {_e(feat)}: {_e('; '.join(parts))}</p>")

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

    # performance over time: realized from labels, or estimated (CBPE) before them
    perf = [p for p in doc["performance"] if p["detector"] != "variants"]
    if perf:
        names = [m for m in ("accuracy", "f1", "f1_macro", "roc_auc", "log_loss", "ece", "mae", "rmse", "mape", "r2")
                 if any(p["metrics"].get(m) is not None for p in perf)]
        w("<h2>Performance over time</h2><table><tr><th>window</th><th>version</th><th>method</th><th>rows</th>"
          "<th>labelled</th>" + "".join(f"<th>{_e(m)}</th>" for m in names) + "<th>worse than reference</th></tr>")
        for p in perf:
            share = "" if p["labelled_share"] is None else f"{100 * p['labelled_share']:.0f}%"
            w(f"<tr><td>{_e(_fmt_time(p['start']))}</td><td>{_e(p['version'] or '')}</td><td>{_e(p['method'])}</td>"
              f"<td class=\"num\">{p['rows']}</td><td class=\"num\">{share}</td>"
              + "".join(f"<td class=\"num\">{_fmt_p(p['metrics'].get(m))}</td>" for m in names)
              + f"<td class=\"{'yes' if p['fired'] else 'no'}\">{'yes' if p['fired'] else 'no'}</td></tr>")
        w("</table>")
    for p in (p for p in doc["performance"] if p["detector"] == "variants"):
        for name, v in (p.get("variants") or {}).items():
            acc = v.get("accuracy")
            if acc:
                lo, hi = acc["ci"]
                w(f"<p class=\"note\">{_e(_fmt_time(p['start']))}: version {_e(name)} vs {_e(p['baseline'])}: "
                  f"accuracy {acc['value']:.4f} vs {acc['baseline']:.4f}, difference {acc['difference']:+.4f} "
                  f"(95% CI {lo:+.4f} to {hi:+.4f}, p = {_fmt_p(acc['p_value'])})</p>")

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
        w(_img(pvalue_chart(rows, ""), f"p-values per feature, {det}"))
        det_windows = [x for x in windows if (x["version"], x["on"], x["detector"]) == (version, on, det)]
        if len(det_windows) > 1:
            w(_img(window_chart(det_windows, f"{det}: p-value per window"), f"p-value per window, {det}"))
        w("<table><tr><th>feature</th><th>test</th><th>lowest p-value</th><th>threshold</th>"
          "<th>largest distance</th><th>drifted windows</th></tr>")
        for r in sorted(rows, key=lambda r: r["min_p_value"] if r["min_p_value"] is not None else 2.0):
            w(f"<tr><td>{_e(r['feature'])}</td><td>{_e(r['test'])}</td>"
              f"<td class=\"num\">{_fmt_p(r['min_p_value'])}</td><td class=\"num\">{_fmt_p(r['threshold'])}</td>"
              f"<td class=\"num\">{_fmt_p(r['max_distance'])}</td>"
              f"<td class=\"num {'yes' if r['drifted_windows'] else ''}\">{r['drifted_windows']} of "
              f"{len(r['p_values'])}</td></tr>")
        w("</table>")

    # distributions of the most drifted features: from the rows' values, or from counts
    plots = _distribution_plots(report, features, windows, top) if not doc["distributions"] else \
        _counts_plots(doc["distributions"], windows, top)
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
    are those of the window where the feature's p-value was lowest).

    The plotted columns of one (version, target) are read together (:func:`_read_columns`: one
    pass over a table file for all of them), then each is counted and drawn."""
    if top <= 0:
        return []
    ranked = sorted((f for f in features if f["min_p_value"] is not None), key=lambda f: f["min_p_value"])
    seen: set[tuple[str | None, str, str]] = set()
    plans: list[tuple[Any, str, pd.Series, int, int | None, str]] = []  # current, feature, reference, rows, subtitle
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
        lo, hi = det_windows[k]["rows"] if k < len(det_windows) else (0, None)
        where = "whole batch" if len(det_windows) <= 1 else f"window {k + 1}, rows {lo + 1}-{hi}"
        label = _group_label(f["version"], f["on"])
        subtitle = f"p = {f['min_p_value']:.3g} ({f['test']}), {where}{'; ' + label if label else ''}"
        plans.append((current, f["feature"], ref[1][f["feature"]], lo, hi, subtitle))
    out: list[tuple[str, str]] = []
    while plans and len(out) < top:
        batch, plans = plans[: top - len(out)], plans[top - len(out):]
        groups: dict[int, list[str]] = {}
        for current, name, *_ in batch:
            groups.setdefault(id(current), []).append(name)
        columns = {gid: _read_columns(next(b[0] for b in batch if id(b[0]) == gid), names)
                   for gid, names in groups.items()}
        for current, name, ref_col, lo, hi, subtitle in batch:
            col = columns[id(current)][name]
            cur = col.iloc[lo:hi]
            dist = distribution_summary(ref_col, cur)
            b64 = distribution_chart(name, dist, None, subtitle) if dist is not None else None
            if b64:
                out.append((b64, f"{name}: {subtitle}"))
        del columns
    return out


def _counts_plots(entries: list[dict[str, Any]], windows: list[dict[str, Any]], top: int) -> list[tuple[str, str]]:
    """Reference vs current for the ``top`` first entries of ``report.json``'s ``distributions``
    (lowest p-value first), drawn from their counts."""
    out: list[tuple[str, str]] = []
    for e in entries:
        if len(out) >= top:
            break
        same = [w for w in windows if (w["version"], w["on"], w["detector"]) == (e["version"], e["on"], e["detector"])]
        where = "whole range" if len(same) <= 1 else \
            f"window {e['window'] + 1} ({_fmt_time(e['start'])} to {_fmt_time(e['end'])})"
        label = _group_label(e["version"], e["on"])
        p = "—" if e["p_value"] is None else f"{e['p_value']:.3g}"
        subtitle = f"p = {p} ({e['test']}), {where}{'; ' + label if label else ''}"
        b64 = counts_chart(e, subtitle)
        if b64:
            out.append((b64, f"{e['feature']}: {subtitle}"))
    return out


def _read_columns(current: Any, names: list[str]) -> Mapping[str, pd.Series]:
    """The columns ``names`` of the rows tested: as ``current`` reads several columns at once
    when it can (a table file: ``read_columns``, one pass over a CSV), else one by one."""
    read = getattr(current, "read_columns", None)
    if callable(read):
        return read(names)  # type: ignore[no-any-return]
    return {n: current[n] for n in names}


def write_report(report: BatchReport, out_dir: str | os.PathLike[str], top: int = 6) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir`` (created); returns both paths.

    Each file is written to a temporary name and renamed, so a reader never sees half a report.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "report.json", out / "report.html")
    contents = (dumps(report_dict(report), indent=True), render_html(report, top=top).encode("utf-8"))
    for path, data in zip(paths, contents, strict=True):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return paths

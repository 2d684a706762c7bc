"""The report's plots: PNGs drawn with matplotlib's Agg canvas (no ``pyplot`` state), returned
base64-encoded for inlining.

* :func:`pvalue_chart` — -log10(p) per feature with the (corrected) threshold line;
* :func:`window_chart` — the batch p-value of each window, per detector;
* :func:`distribution_chart` — reference vs current: overlaid histograms (numerical) or
  side-by-side shares (categorical);
* :func:`counts_chart` — the same drawn from counts (a report whose rows' values are not kept:
  cells at the reference's quantile edges, category counts).

Cost matters over millions of rows: a histogram is counted once with numpy
(:func:`distribution_summary`: the densities, or the shares of the most common categories)
and drawn from those counts as one filled step outline per side (``stairs``), not as one
patch per bar (``hist``); the pages are drawn at a modest resolution.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Distribution", "counts_chart", "distribution_chart", "distribution_summary", "pvalue_chart",
           "window_chart"]

_P_FLOOR = 1e-300  # p-values of exactly 0 are drawn (and sorted) as this
_MAX_BARS = 40  # features per p-value chart (the lowest p-values)
_MAX_CATEGORIES = 15


_DPI = 96


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure  # the Agg canvas; no pyplot, no global backend

    fig = Figure(figsize=(width, height))
    fig.patch.set_facecolor("white")
    return fig


_RED, _BLUE, _GREY, _ORANGE = "#c0392b", "#2e6fba", "#9aa5b1", "#e08a1e"


def pvalue_chart(rows: list[dict[str, Any]], title: str) -> str:
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


def window_chart(windows: list[dict[str, Any]], title: str) -> str:
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


def _shares(s: pd.Series) -> pd.Series:
    counts = s.value_counts(dropna=True)
    counts = counts[counts > 0]
    counts.index = counts.index.astype(str)
    counts = counts.groupby(level=0, sort=False).sum()  # 1 and "1" are one bar, as before
    total = counts.sum()
    return (counts / total if total else counts).sort_values(ascending=False)


@dataclass
class Distribution:
    """What a distribution plot draws: numerical (``edges`` and the two densities over them) or
    categorical (``categories`` and the two shares), with the rows counted on each side."""

    numeric: bool
    n_ref: int
    n_cur: int
    edges: np.ndarray | None = None
    ref: np.ndarray | None = None
    cur: np.ndarray | None = None
    categories: list[str] | None = None


def distribution_summary(ref: pd.Series, cur: pd.Series) -> Distribution | None:
    """Densities over common bins (numerical: at most 40 bins, numpy's ``auto`` rule over the
    pooled 0.5-99.5 percentiles) or the shares of the 15 most common categories; ``None``
    when a side has nothing to show."""
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
        del both
        if len(bins) > 41:
            bins = np.linspace(lo, hi, 41)
        hr, _ = np.histogram(r, bins=bins, density=True)
        hc, _ = np.histogram(c, bins=bins, density=True)
        return Distribution(True, len(r), len(c), edges=bins, ref=np.nan_to_num(hr), cur=np.nan_to_num(hc))
    # counted first, the keys made text after: a column of millions of rows (a categorical
    # read from Parquet) never becomes millions of Python strings
    rs = _shares(ref)
    cs = _shares(cur)
    if rs.empty and cs.empty:
        return None
    cats = (rs.add(cs, fill_value=0).sort_values(ascending=False).index[:_MAX_CATEGORIES]).tolist()
    return Distribution(False, int(ref.notna().sum()), int(cur.notna().sum()), categories=cats,
                        ref=np.array([rs.get(k, 0.0) for k in cats], dtype=float),
                        cur=np.array([cs.get(k, 0.0) for k in cats], dtype=float))


def distribution_chart(feature: str, ref: pd.Series | Distribution, cur: pd.Series | None, subtitle: str
                       ) -> str | None:
    """Overlaid histograms (numerical) or side-by-side bars of shares (categorical), from the
    two columns or their :func:`distribution_summary`."""
    dist = ref if isinstance(ref, Distribution) else distribution_summary(ref, cur)
    if dist is None:
        return None
    assert dist.ref is not None and dist.cur is not None
    fig = _figure(4.6, 3.0)
    ax = fig.add_subplot()
    if dist.numeric:
        ax.stairs(dist.ref, dist.edges, fill=True, alpha=0.5, color=_BLUE, label=f"reference (n={dist.n_ref})")
        ax.stairs(dist.cur, dist.edges, fill=True, alpha=0.5, color=_RED, label=f"current (n={dist.n_cur})")
        ax.set_ylabel("density", fontsize=8)
    else:
        cats = dist.categories or []
        x = np.arange(len(cats))
        ax.bar(x - 0.2, dist.ref, width=0.4, color=_BLUE, alpha=0.8, label=f"reference (n={dist.n_ref})")
        ax.bar(x + 0.2, dist.cur, width=0.4, color=_RED, alpha=0.8, label=f"current (n={dist.n_cur})")
        ax.set_xticks(x, [k if len(k) <= 14 else k[:13] + "…" for k in cats], rotation=30, ha="right",
                      fontsize=8)
        ax.set_ylabel("share of rows", fontsize=8)
    ax.set_title(f"{feature}\n{subtitle}", fontsize=9, loc="left")
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _cell_edges(edges: list[float]) -> np.ndarray:
    """The drawn bounds of the cells at ``edges``: the two open cells (below the first edge,
    from the last edge up) drawn as wide as their inner neighbours."""
    e = np.asarray(edges, dtype=float)
    if len(e) == 1:
        return np.array([e[0] - 1.0, e[0], e[0] + 1.0])
    return np.concatenate([[e[0] - (e[1] - e[0])], e, [e[-1] + (e[-1] - e[-2])]])


def draw_counts(ax: Any, entry: dict[str, Any]) -> None:
    """Draw one distribution entry (``report.json``'s ``distributions``) on ``ax``: a numerical
    feature's cells as densities (share of the rows / width: quantile cells differ in width),
    reference and current overlaid; a categorical feature's shares side by side (the
    ``_MAX_CATEGORIES`` largest)."""
    ref = np.asarray(entry["reference"], dtype=float)
    cur = np.asarray(entry["current"], dtype=float)
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    if entry["kind"] == "numerical":
        bounds = _cell_edges(entry["edges"])
        width = np.diff(bounds)
        for counts, n, color, who in ((ref, n_ref, _BLUE, "reference"), (cur, n_cur, _RED, "current")):
            ax.stairs(counts / max(n, 1) / width, bounds, fill=True, alpha=0.45, color=color, label=f"{who} (n={n})")
        ax.set_ylabel("density", fontsize=8)
        ax.set_xlabel(f"{len(entry['edges']) + 1} cells at the reference's quantiles (outer cells open-ended)",
                      fontsize=7)
    else:
        cats = list(entry["categories"])[:_MAX_CATEGORIES]
        x = np.arange(len(cats))
        k = len(cats)
        ax.bar(x - 0.2, ref[:k] / max(n_ref, 1), width=0.4, color=_BLUE, alpha=0.8, label=f"reference (n={n_ref})")
        ax.bar(x + 0.2, cur[:k] / max(n_cur, 1), width=0.4, color=_RED, alpha=0.8, label=f"current (n={n_cur})")
        ax.set_xticks(x, [c if len(c) <= 14 else c[:13] + "…" for c in cats], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("share of rows", fontsize=8)


def counts_chart(entry: dict[str, Any], subtitle: str) -> str | None:
    """Reference vs current drawn from counts (:func:`draw_counts`); ``None`` when the window
    has no counted value."""
    if not sum(entry["current"]):
        return None
    fig = _figure(4.6, 3.0)
    ax = fig.add_subplot()
    draw_counts(ax, entry)
    ax.set_title(f"{entry['feature']}\n{subtitle}", fontsize=9, loc="left")
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)

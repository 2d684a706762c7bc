"""The batch runner of ``inferwatch report``: the stream's detectors over a batch of records.

::

    records (inferwatch.batch: a file, or the audit store)
      ─► the monitor the wiring builds (same detectors, count windows) ─► BatchReport
      ─► sinks.report: report.json, report.html, Pushgateway (inferwatch.report_command)

:func:`run_report` cuts the rows into count windows of ``window`` rows (default: the whole
batch is one window) and runs the detectors on each exactly as the detect role would
(``Monitor.process`` then ``Monitor.flush``), against the model's latest reference per
version. The default detector is :class:`~detectors.TabularDrift` (Kolmogorov-Smirnov for
numerical, chi-squared for categorical features, Bonferroni). Like the stream runner
(:mod:`inferwatch.pipeline`) this module stands above the plug-ins: it builds the monitor
through :mod:`inferwatch.wiring` and returns the report writer's model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from inferwatch.batch import Retyped, TableFile
from inferwatch.errors import DetectorError, InferwatchError
from inferwatch.record import Detection, InferenceRecord, parse_timestamp, row_id, utcnow
from inferwatch.references import ReferenceStore
from inferwatch.table import Table, concat, n_rows
from inferwatch.wiring import monitor_from
from sinks.report import BatchReport

__all__ = ["COUNTS_AFTER", "DEFAULT_BINS", "DEFAULT_DETECTORS", "MODES", "run_report", "run_report_table",
           "run_report_audit", "scaled_detectors"]

DEFAULT_DETECTORS: list[dict[str, Any]] = [{"type": "tabular", "p_val": 0.05, "correction": "bonferroni"}]

MODES = ("exact", "binned")
COUNTS_AFTER = 50_000
"""Windows of more rows are kept as counts by the tabular detector (same p-values, memory
bounded by the reference: ``detectors.TabularDrift(counts_after=...)``)."""
DEFAULT_BINS = 100
"""Reference-quantile bins per numerical feature in binned mode."""


def scaled_detectors(entries: list[dict[str, Any]], mode: str = "exact",
                     bins: int = DEFAULT_BINS) -> list[dict[str, Any]]:
    """The detector entries of a report over many rows: the tabular detector keeps a large
    window as counts (``exact``: the same p-values as on the values) or bins its numerical
    features at ``bins`` reference quantiles (``binned``: KS on the CDF at the bin edges, a
    lower bound of the exact statistic, so conservative p-values; chi-squared unchanged).
    Other detectors test the window's values either way."""
    if mode not in MODES:
        raise InferwatchError(f"mode must be one of {MODES}, got {mode!r}")
    out = []
    for e in entries:
        e = dict(e)
        if e.get("type") == "tabular":
            if mode == "binned":
                e.setdefault("bins", bins)
            elif "bins" not in e:
                e.setdefault("counts_after", COUNTS_AFTER)
        out.append(e)
    return out


def mode_note(mode: str, detectors: list[dict[str, Any]]) -> str:
    """What the report says about how its p-values were computed."""
    binned = [d for d in detectors if d.get("bins")]
    if mode == "binned" and binned:
        return (f"binned mode: numerical features counted in {binned[0]['bins']} bins at the reference's quantiles; "
                "KS is evaluated on the CDFs at the bin edges only, a lower bound of the exact statistic, so its "
                "p-values are conservative and approximate (fewer alarms, less power for shifts inside a bin); "
                "chi-squared on category counts is exact")
    if mode == "binned":
        return "binned mode asked, but no detector here supports it: every test ran on the values (exact)"
    return "exact mode: every test on the window's values (large windows kept as counts at the reference's " \
           "distinct values, which gives the same statistics)"


def _frame(tables: list[Table]) -> Any:
    import pandas as pd

    return pd.DataFrame(concat(tables))


def _performance(records: Sequence[InferenceRecord], config: dict[str, Any] | None,
                 references: Any, model: str) -> tuple[list[Detection], list[str]]:
    """Realized performance per window of prediction time when rows carry labels, else the CBPE
    estimate when the configuration names score columns and the reference holds labels."""
    from detectors.performance import CBPE
    from detectors.performance.monitor import build_performance_monitor

    cfg = dict(config or {})
    outputs = [r for r in records if r.outputs]
    if not outputs:
        return [], []
    pred_col = cfg.get("prediction") or next(iter(outputs[0].outputs or {}))
    truth_col = cfg.get("truth") or next((next(iter(r.truth)) for r in records if r.truth), "truth")
    labels = [v for r in records if r.truth for v in r.truth.get(truth_col, []) if v is not None]
    if cfg.get("task") is None:
        cfg["task"] = "regression" if any(isinstance(v, float) and not v.is_integer() for v in labels) \
            else "classification"
    if cfg["task"] == "classification" and not cfg.get("classes"):
        seen = labels + [v for r in outputs for v in (r.outputs or {}).get(pred_col, []) if v is not None]
        try:
            cfg["classes"] = sorted(set(seen))
        except TypeError:
            cfg["classes"] = sorted(set(seen), key=str)
    cfg.setdefault("window_seconds", 86_400)
    cfg.setdefault("min_labelled", 1)
    notes: list[str] = []
    if labels:
        if cfg["task"] == "classification" and len(cfg["classes"]) < 2:
            return [], [f"performance: the labels show {len(cfg['classes'])} class(es); set detect.performance.classes"]
        cfg["prediction"] = pred_col
        cfg["truth"] = truth_col
        mon = build_performance_monitor(cfg)
        latest: dict[tuple[str, str | None, Any], Detection] = {}
        for start in range(0, len(records), 1024):
            for d in mon.process(records[start : start + 1024]):
                latest[(d.detector, d.version, d.window_start)] = d
        return sorted(latest.values(), key=lambda d: (d.window_start or utcnow(), d.detector, d.version or "")), notes
    scores = cfg.get("scores")
    if not scores or cfg["task"] != "classification":
        return [], ["performance: no labels in these rows (and no score columns configured for an estimate)"]
    out: list[Detection] = []
    for version in dict.fromkeys(r.version for r in outputs):
        info = references.latest(model, version)
        frame = references.load(info.id) if info is not None else None
        if frame is None or truth_col not in frame.columns:
            notes.append(f"performance: no labelled reference ({truth_col!r} column) for version {version}: "
                         "nothing estimated")
            continue
        ref = {c: frame[c].to_numpy() for c in frame.columns}
        if pred_col in ref:
            ref["prediction"] = ref[pred_col]
        est = CBPE(scores=scores, classes=cfg["classes"], min_rows=1, metric=cfg.get("metric") or "accuracy",
                   max_drop=float(cfg.get("max_drop", 0.05))).fit(ref)
        slots: dict[int, list[InferenceRecord]] = {}
        for r in outputs:
            if r.version == version:
                slots.setdefault(int(r.timestamp.timestamp() // cfg["window_seconds"]), []).append(r)
        for slot, recs in sorted(slots.items()):
            est.reset()
            for r in recs:
                table = dict(r.outputs or {})
                if pred_col in table:
                    table["prediction"] = table[pred_col]
                est.update(table)
            d = est.result()
            d.model, d.version = model, version
            d.window_start = datetime.fromtimestamp(slot * cfg["window_seconds"], UTC)
            d.window_end = datetime.fromtimestamp((slot + 1) * cfg["window_seconds"], UTC)
            out.append(d)
    return out, notes


def _no_reference(model: str, versions: list[str | None], references: ReferenceStore) -> InferwatchError:
    known = ", ".join(references.models()) or "none"
    return InferwatchError(
        f"no reference for model {model!r}{' version ' + str(versions[0]) if versions != [None] else ''} "
        f"(models with references: {known}); register one with "
        f"`inferwatch reference add {model} FILE`, or pass --reference FILE")


def _progress(progress: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), disable=not progress, transient=False)


_ID_CHUNK = 1000  # rows per record id, as inferwatch.batch.load_input cuts a table into records


def run_report_table(table: TableFile, model: str, references: ReferenceStore, *, version: str | None = None,
                     detectors: list[dict[str, Any]] | None = None, window: int | None = None,
                     source: dict[str, Any] | None = None, progress: bool = False, mode: str = "exact",
                     bins: int = DEFAULT_BINS) -> BatchReport:
    """:func:`run_report` over a CSV or Parquet file read in record batches.

    Each batch goes straight to the detectors of the open window (``Monitor.open_window``),
    so neither the file nor a window is ever held as one table: the detectors keep only the
    columns they test, as arrays (or counts). The report's distribution plots read their
    columns from the file again, in one pass for all of them. A CSV column found to hold
    text after a first block of numbers (:class:`inferwatch.batch.Retyped`) restarts the
    pass with the file's types, so every window sees one type per column. Same windows, detections and report as :func:`run_report`
    over :func:`inferwatch.batch.load_input`'s records of the same file.
    """
    info = references.latest(model, version)
    if info is None:
        raise _no_reference(model, [version], references)
    entries = scaled_detectors(detectors or DEFAULT_DETECTORS, mode, bins)
    plan = {"window": {"type": "count", "size": window or 1}, "detectors": entries}
    monitor = monitor_from(plan, references)
    targets = sorted({s.on for s in monitor.specs})
    if "inputs" not in targets:
        raise InferwatchError(f"the rows of model {model!r} have no {' or '.join(targets)} to test")
    stem = table.path.name.split(".")[0] or "batch"
    size = window or 0  # 0: the whole file is one window
    with _progress(progress) as bar:
        task = bar.add_task(f"rows of {model} read", total=table.rows)
        for _attempt in range(4 * len(table.columns) + 1):  # a column widens at most 3 times
            try:
                detections, total = _table_pass(table, monitor, model, version, references, stem, size, bar, task)
                break
            except Retyped:  # a CSV column held text after numbers: again, with the file's types
                monitor = monitor_from(plan, references)
                bar.reset(task, total=table.rows)
        else:
            raise InferwatchError(f"{str(table.path)!r}: its column types kept changing while it was read")
    if not total:
        raise InferwatchError(f"no rows for model {model!r}")
    ref_ids = dict.fromkeys(d.reference_id for d in detections if d.reference_id)
    return BatchReport(
        model=model,
        detections=detections,
        rows=total,
        current={(version, "inputs"): table},
        references={i: (references.get(i), references.load(i)) for i in ref_ids if i},
        source=source or {"input": str(table.path), "format": "table"},
        window=window,
        detectors=[{"type": s.type, "name": s.name, "on": s.on, **s.params} for s in monitor.specs],
        mode=mode,
        notes=[mode_note(mode, entries)],
    )


def _table_pass(table: TableFile, monitor: Any, model: str, version: str | None, references: ReferenceStore,
                stem: str, size: int, bar: Any, task: Any) -> tuple[list[Detection], int]:
    """One pass over the file's record batches: (the windows' detections, rows read)."""
    detections: list[Detection] = []
    feed = None
    with_ids: bool | None = None
    total = in_window = 0
    for frame in table.batches():
        pos = 0
        while pos < len(frame):
            if feed is None:
                feed = monitor.open_window(model, version, "inputs", table.columns)
                if feed is None:
                    raise _no_reference(model, [version], references)
                in_window = 0
            take = len(frame) - pos if not size else min(size - in_window, len(frame) - pos)
            part = frame if take == len(frame) else frame.iloc[pos : pos + take]
            if with_ids is None:  # row ids only for detectors that name rows (outliers)
                with_ids = any(s.build().kind != "drift" for s in monitor.specs)
            ids = [row_id(f"{stem}-{g - g % _ID_CHUNK}", g % _ID_CHUNK)
                   for g in range(total, total + take)] if with_ids else None
            feed.update(part, ids)
            pos += take
            total += take
            in_window += take
            if size and in_window == size:
                detections += feed.close(table.when, table.when)
                feed = None
        bar.update(task, completed=total)
    if feed is not None and in_window:
        detections += feed.close(table.when, table.when)
    bar.update(task, completed=total, total=total)
    return detections, total


def run_report(records: Sequence[InferenceRecord], model: str, references: ReferenceStore, *,
               detectors: list[dict[str, Any]] | None = None, window: int | None = None,
               source: dict[str, Any] | None = None, progress: bool = False,
               performance: dict[str, Any] | None = None, mode: str = "exact",
               bins: int = DEFAULT_BINS) -> BatchReport:
    """Run the detectors over ``records`` of ``model`` in count windows; a :class:`sinks.report.BatchReport`.

    ``references`` is a :class:`~inferwatch.references.ReferenceStore`. Raises
    :class:`InferwatchError` when there are no rows or no reference.
    """
    records = [r for r in records if r.model == model]
    if not records:
        raise InferwatchError(f"no rows for model {model!r}")
    versions = list(dict.fromkeys(r.version for r in records))
    refs = {v: references.latest(model, v) for v in versions}
    if not any(refs.values()):
        raise _no_reference(model, versions, references)
    notes: list[str] = []
    if source and source.get("truncated_from"):
        notes.append(f"only the newest {source['documents']} of {source['truncated_from']} audited rows were "
                     "tested (raise --limit for more)")
    skipped = 0
    missing = [v for v, info in refs.items() if info is None]
    if missing:
        skipped = sum(r.n_rows for r in records if r.version in missing)
        notes.append(f"{skipped} rows of version(s) {', '.join(map(str, missing))} were not tested: "
                     "no reference for them")
    used = [r for r in records if refs.get(r.version) is not None]
    total = sum(r.n_rows for r in used)
    entries = scaled_detectors(detectors or DEFAULT_DETECTORS, mode, bins)
    notes.append(mode_note(mode, entries))
    monitor = monitor_from({"window": {"type": "count", "size": window or max(total, 1)},
                             "detectors": entries}, references)
    targets = sorted({s.on for s in monitor.specs})

    # what the windows see, per (version, target), in the order the monitor sees it
    tables: dict[tuple[str | None, str], list[Table]] = {}
    for r in used:
        for on in targets:
            t = r.inputs if on == "inputs" else r.outputs
            if t:
                tables.setdefault((r.version, on), []).append(t)
    size = window or max(total, 1)
    expected = sum(math.ceil(sum(n_rows(t) for t in ts) / size) for ts in tables.values())
    if not tables:
        raise InferwatchError(f"the rows of model {model!r} have no {' or '.join(targets)} to test")

    detections = []
    with _progress(progress) as bar:
        task = bar.add_task(f"drift windows of {model}", total=max(expected, 1))
        for start in range(0, len(used), 256):
            detections += monitor.process(used[start : start + 256])
            bar.update(task, completed=min(monitor.stats["windows"], expected))
        detections += monitor.flush()
        bar.update(task, completed=max(expected, 1))

    ref_ids = dict.fromkeys(d.reference_id for d in detections if d.reference_id)
    perf, perf_notes = _performance(sorted(records, key=lambda r: r.timestamp), performance, references, model)
    notes += perf_notes
    return BatchReport(
        performance=perf,
        model=model,
        detections=detections,
        rows=total,
        current={k: _frame(v) for k, v in tables.items()},
        references={i: (references.get(i), references.load(i)) for i in ref_ids if i},
        source=source or {},
        window=window,
        detectors=[{"type": s.type, "name": s.name, "on": s.on, **s.params} for s in monitor.specs],
        skipped_rows=skipped,
        notes=notes,
        mode=mode,
    )




def _slot(ts: Any, every_s: float | None) -> int:
    if every_s is None:
        return 0
    t = parse_timestamp(ts) if isinstance(ts, str) else ts
    return int(t.timestamp() // every_s) if isinstance(t, datetime) else -1


def run_report_audit(store: Any, model: str, references: ReferenceStore, *, version: str | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     detectors: list[dict[str, Any]] | None = None, window: int | None = None,
                     every: str | None = None, mode: str = "exact", bins: int = DEFAULT_BINS,
                     limit: int | None = None, progress: bool = False) -> BatchReport:
    """:func:`run_report` over *every* audited row of ``model`` in the time range, from a store
    that streams them (``store.row_pages``: Elasticsearch) or counts them itself
    (``store.aggregate``).

    * ``mode="exact"``: the rows are read page by page (a point in time and ``search_after``)
      straight into the windows' detectors, which keep large windows as counts: memory is
      bounded by a page and the reference, whatever the range holds;
    * ``mode="binned"``: nothing but counts leaves the cluster — per time bucket, each
      numerical feature's counts in the reference-quantile bins (``range`` aggregations) and
      each categorical feature's category counts (``terms``); the tabular detector's binned
      tests give the p-values (KS on the CDF at the bin edges: conservative). Cells the index
      does not hold as they are (lists, objects, text over 1,024 characters, the text
      ``"true"``) are marked when written (``input_odd``) and read from the documents, so both
      modes count them alike; rows audited before that mark existed are counted from the index
      (a list's elements one by one, long text as missing).

    Windows: the whole range, ``window`` rows (exact mode), or ``every`` time bucket (``1h``,
    ``1d``: a ``date_histogram`` in binned mode). ``limit``: at most this many rows (exact mode,
    oldest first). The distribution plots are drawn from counts (the tabular detector's
    :meth:`~detectors.TabularDrift.window_counts`: the same cells in both modes).
    """
    info = references.latest(model, version)
    if info is None:
        raise _no_reference(model, [version], references)
    entries = scaled_detectors(detectors or DEFAULT_DETECTORS, mode, bins)
    monitor = monitor_from({"window": {"type": "count", "size": window or 1}, "detectors": entries}, references)
    if "inputs" not in {s.on for s in monitor.specs}:
        raise InferwatchError("reports from the audit store over a whole time range test the inputs; "
                              "the detectors given test only outputs")
    columns = list(info.columns)
    notes = [mode_note(mode, entries)]
    source: dict[str, Any] = {"audit": type(store).__name__, "since": since.isoformat() if since else None,
                              "until": until.isoformat() if until else None, "mode": mode}
    detections: list[Detection] = []
    counts: dict[int, dict[str, dict[str, Any]]] = {}
    total = 0
    if mode == "binned":
        if window:
            raise InferwatchError("--window counts rows in order; binned mode counts inside the cluster: "
                                  "use --every for time buckets, or --mode exact")
        feed = monitor.open_window(model, version, "inputs", columns)
        if feed is None:
            raise _no_reference(model, [version], references)
        dets: list[Any] = feed.detectors
        if not all(hasattr(d, "count_plan") for d in dets):
            raise InferwatchError("binned mode counts inside the cluster, which only the tabular detector can "
                                  f"test; {[s.type for s in monitor.specs]} need the rows: use --mode exact")
        plans = [d.count_plan() for d in dets]
        buckets = [store.aggregate(model, numeric=n, categorical=c, version=version, since=since, until=until,
                                   every=every) for n, c in plans]
        for i, slot in enumerate(buckets[0] if buckets else []):
            for d, b in zip(dets, buckets, strict=True):
                s = b[i]
                d.update_counts(s["rows"], s["cells"], s["categories"], s["present"], s["numbers"], s["odd"],
                                s.get("values"))
            feed.rows = slot["rows"]
            total += slot["rows"]
            detections += _close(feed, slot["start"], slot["end"], bins, counts, len(detections))
        source["documents"] = total
    else:
        import pandas as pd

        every_s = _interval_ms(every) / 1000 if every else None
        feed = None
        key: Any = None
        start = end = None
        with _progress(progress) as bar:
            task = bar.add_task(f"audited rows of {model} read", total=None)
            for page in store.row_pages(model, version=version, since=since, until=until):
                if limit is not None:
                    page = page[: max(limit - total, 0)]
                    if not page:
                        break
                frame = pd.DataFrame.from_records([d.get("input") or {} for d in page])
                frame.columns = [str(c) for c in frame.columns]
                stamps = [d.get("timestamp") for d in page]
                slots = [((total + i) // window if window else _slot(t, every_s)) for i, t in enumerate(stamps)]
                pos = 0
                while pos < len(page):
                    cut = pos
                    while cut < len(page) and slots[cut] == slots[pos]:
                        cut += 1
                    if feed is not None and slots[pos] != key:
                        detections += _close(feed, start, end, bins, counts, len(detections))
                        feed = None
                    if feed is None:
                        feed = monitor.open_window(model, version, "inputs", columns)
                        if feed is None:
                            raise _no_reference(model, [version], references)
                        key, start = slots[pos], _ts_or_none(stamps[pos])
                    feed.update(frame.iloc[pos:cut])
                    end = _ts_or_none(stamps[cut - 1])
                    pos = cut
                total += len(page)
                bar.update(task, completed=total)
            if feed is not None:
                detections += _close(feed, start, end, bins, counts, len(detections))
        source["documents"] = total
    if not total:
        raise InferwatchError(f"no audited rows for model {model!r}"
                              + (f" between {since or 'the start'} and {until or 'now'}" if since or until else ""))
    ref_ids = dict.fromkeys(d.reference_id for d in detections if d.reference_id)
    return BatchReport(
        model=model,
        detections=detections,
        rows=total,
        references={i: (references.get(i), references.load(i)) for i in ref_ids if i},
        source=source,
        window=window,
        detectors=[{"type": s.type, "name": s.name, "on": s.on, **s.params} for s in monitor.specs],
        notes=notes if counts or not detections else
        [*notes, "no distribution plots: they are drawn from the tabular detector's counts, and none ran here"],
        mode=mode,
        counts=counts,
    )


def _close(feed: Any, start: datetime | None, end: datetime | None, bins: int,
           counts: dict[int, dict[str, dict[str, Any]]], first: int) -> list[Detection]:
    """Close the window; its counts per feature (the tabular detector's, for the distribution
    plots: the cluster's counts in binned mode, the streamed values' in exact mode) go into
    ``counts`` under the index of each of its detections (from ``first``)."""
    window: dict[str, dict[str, Any]] | None = None
    for det in feed.detectors:
        if hasattr(det, "window_counts"):
            try:
                window = det.window_counts(getattr(det, "bins", None) or bins)
            except DetectorError:  # e.g. a detector that failed on this window's rows: no plot
                window = None
            break
    out: list[Detection] = feed.close(start, end)
    if window is not None:
        for i in range(len(out)):
            counts[first + i] = window
    return out


def _ts_or_none(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return parse_timestamp(str(value)) if value else None
    except ValueError:
        return None


def _interval_ms(every: str) -> int:
    """A fixed interval (``30s``, ``15m``, ``1h``, ``1d``) in milliseconds."""
    import re

    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", every.strip())
    if not m:
        raise InferwatchError(f"--every {every!r}: expected a number and ms, s, m, h or d (e.g. 1h)")
    return int(m.group(1)) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[m.group(2)]

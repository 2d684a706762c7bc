"""``inferwatch report``: drift reports over a batch, with the same detectors as the stream.

::

    audit store (--config, --model, --since/--until)  ─┐
    or a file (--input: records, audit documents,       ├─► detectors (build_monitor) ─► report.json
    JSON rows, CSV or Parquet)                          ─┘   over count windows          report.html
                                                                                          Pushgateway

The reference is the model's latest one in the reference store (per version, as the stream
picks it) or ``--reference FILE``. The rows are cut into count windows of ``--window`` rows
(default: the whole batch is one window) and the detectors of the configuration's ``detect``
section run on each, exactly as the detect role would (``Monitor.process`` then
``Monitor.flush``); without a configuration file the default is :class:`~detectors.TabularDrift`
(Kolmogorov-Smirnov for numerical, chi-squared for categorical features, Bonferroni).

The command is :data:`report`; :func:`run_report` is the same run as a function.
"""

from __future__ import annotations

import math
import sys
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson

from inferwatch.errors import InferwatchError
from inferwatch.record import Detection, InferenceRecord, parse_timestamp, row_id, utcnow
from inferwatch.table import Table, concat, from_rows, n_rows

__all__ = ["DEFAULT_DETECTORS", "EXIT_DRIFT", "load_audit", "load_input", "report", "run_report"]

DEFAULT_DETECTORS: list[dict[str, Any]] = [{"type": "tabular", "p_val": 0.05, "correction": "bonferroni"}]
EXIT_DRIFT = 3
"""Exit status of ``inferwatch report --fail-on-drift`` when a window drifted."""

_TABLE_SUFFIXES = (".csv", ".parquet", ".pq", ".csv.gz", ".txt")
_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
_CHUNK = 1000


# -- inputs ----------------------------------------------------------------------------------


def _ts(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            return parse_timestamp(value)
        except ValueError:
            return None
    return None


def _doc_record(doc: dict[str, Any], model: str | None) -> InferenceRecord | None:
    """One audit document (one row) as a one-row record; ``None`` if it has no input or output."""
    inp, out = doc.get("input"), doc.get("output")
    if not isinstance(inp, dict) and not isinstance(out, dict):
        return None
    when = _ts(doc.get("timestamp")) or _ts(doc.get("response_timestamp")) or utcnow()
    return InferenceRecord(
        id=str(doc.get("doc_id") or row_id(str(doc.get("record_id")), int(doc.get("row", 0)))),
        model=str(doc.get("model") or model or ""),
        version=doc.get("version"),
        timestamp=when,
        inputs={k: [v] for k, v in inp.items()} if isinstance(inp, dict) and inp else None,
        outputs={k: [v] for k, v in out.items()} if isinstance(out, dict) and out else None,
        truth={k: [v] for k, v in truth.items()} if isinstance(truth := doc.get("truth"), dict) and truth else None,
    )


def _table_records(table: Table, model: str, version: str | None, stem: str,
                   when: datetime) -> Iterator[InferenceRecord]:
    n = n_rows(table)
    for start in range(0, n, _CHUNK):
        chunk = {k: v[start : start + _CHUNK] for k, v in table.items()}
        yield InferenceRecord(id=f"{stem}-{start}", model=model, version=version, timestamp=when, inputs=chunk)


def load_input(path: str | Path, model: str | None = None,
               version: str | None = None) -> tuple[str, list[InferenceRecord], dict[str, Any]]:
    """Read ``--input``: (model, records in file order, a description of the source).

    * CSV or Parquet: a table whose columns are the model's inputs (``model`` defaults to the
      file name without suffix);
    * JSON lines (or one JSON array): inference records as on the log (``model``, ``inputs``,
      ``outputs``...), audit documents (``input``/``output``, what ``inferwatch search
      --format json`` prints), or plain row objects (inputs).

    With several models in the file, ``model`` must say which one.
    """
    p = Path(path)
    name = p.name.lower()
    stem = p.name.split(".")[0] or "batch"
    when = datetime.fromtimestamp(p.stat().st_mtime, UTC)
    if name.endswith(_TABLE_SUFFIXES):
        import pandas as pd

        try:
            frame = pd.read_parquet(p) if name.endswith((".parquet", ".pq")) else pd.read_csv(p)
        except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
            raise InferwatchError(f"cannot read {str(p)!r} as a {p.suffix.lstrip('.')} table: {exc}") from exc
        frame.columns = [str(c) for c in frame.columns]
        table = {c: frame[c].tolist() for c in frame.columns}
        model = model or stem
        rows_records = list(_table_records(table, model, version, stem, when))
        return model, rows_records, {"input": str(p), "format": "table"}
    if not name.endswith(_JSON_SUFFIXES):
        raise InferwatchError(f"--input {str(p)!r}: expected .csv, .parquet, .json or .jsonl "
                              "(records, audit documents or rows)")
    text = p.read_bytes()
    try:
        stripped = text.lstrip()
        if stripped.startswith(b"["):
            items = orjson.loads(stripped)
        else:
            items = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    except orjson.JSONDecodeError as exc:
        raise InferwatchError(f"--input {str(p)!r} is not JSON lines or a JSON array: {exc}") from exc
    records: list[InferenceRecord] = []
    plain: list[dict[str, Any]] = []
    kinds: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InferwatchError(f"--input {str(p)!r}: item {i + 1} is {type(item).__name__}, not an object")
        if "inputs" in item or "outputs" in item:
            try:
                rec = InferenceRecord.from_dict({"id": f"{stem}-{i}", "model": model or stem, **item})
            except (TypeError, ValueError) as exc:
                raise InferwatchError(f"--input {str(p)!r}: item {i + 1} is not an inference record: {exc}") from exc
            records.append(rec)
            kinds.add("records")
        elif "input" in item or "output" in item or "doc_id" in item:
            doc = _doc_record(item, model or stem)
            if doc is not None:
                records.append(doc)
            kinds.add("audit documents")
        else:
            plain.append(item)
            kinds.add("rows")
    if plain:
        records.extend(_table_records(from_rows(plain), model or stem, version, stem, when))
    if len(kinds) > 1:
        raise InferwatchError(f"--input {str(p)!r} mixes {' and '.join(sorted(kinds))}; use one kind per file")
    models = sorted({r.model for r in records})
    if model is None:
        if len(models) > 1:
            raise InferwatchError(f"--input {str(p)!r} holds several models ({', '.join(models)}); "
                                  "choose one with --model")
        model = models[0] if models else stem
    if "audit documents" in kinds:
        records.sort(key=lambda r: r.timestamp)
    return model, records, {"input": str(p), "format": next(iter(kinds), "empty")}


def load_audit(store: Any, model: str, *, version: str | None = None, since: datetime | None = None,
               until: datetime | None = None, limit: int = 100_000) -> tuple[list[InferenceRecord], dict[str, Any]]:
    """The newest ``limit`` audited rows of ``model`` in the time range, oldest first."""
    from inferwatch.audit import SearchQuery

    q = SearchQuery(kind="records", model=model, version=version, since=since, until=until, limit=limit)
    docs = store.search(q)
    total = store.count(q) if len(docs) >= limit else len(docs)
    docs.sort(key=lambda d: (str(d.get("timestamp") or d.get("response_timestamp") or ""),
                             str(d.get("record_id", "")), int(d.get("row", 0) or 0)))
    records = [r for r in (_doc_record(d, model) for d in docs) if r is not None]
    source = {"audit": type(store).__name__, "since": since.isoformat() if since else None,
              "until": until.isoformat() if until else None, "documents": len(docs)}
    if total > len(docs):
        source["truncated_from"] = total
    return records, source


# -- the run ---------------------------------------------------------------------------------


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


def run_report(records: Sequence[InferenceRecord], model: str, references: Any, *,
               detectors: list[dict[str, Any]] | None = None, window: int | None = None,
               source: dict[str, Any] | None = None, progress: bool = False,
               performance: dict[str, Any] | None = None) -> Any:
    """Run the detectors over ``records`` of ``model`` in count windows; a :class:`sinks.report.BatchReport`.

    ``references`` is a :class:`~inferwatch.references.ReferenceStore`. Raises
    :class:`InferwatchError` when there are no rows or no reference.
    """
    from detectors import build_monitor
    from sinks.report import BatchReport

    records = [r for r in records if r.model == model]
    if not records:
        raise InferwatchError(f"no rows for model {model!r}")
    versions = list(dict.fromkeys(r.version for r in records))
    refs = {v: references.latest(model, v) for v in versions}
    if not any(refs.values()):
        known = ", ".join(references.models()) or "none"
        raise InferwatchError(
            f"no reference for model {model!r}{' version ' + str(versions[0]) if versions != [None] else ''} "
            f"(models with references: {known}); register one with "
            f"`inferwatch reference add {model} FILE`, or pass --reference FILE")
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
    entries = detectors or DEFAULT_DETECTORS
    monitor = build_monitor({"window": {"type": "count", "size": window or max(total, 1)},
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
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), disable=not progress, transient=False) as bar:
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
    )


# -- the command -----------------------------------------------------------------------------


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    dt = _ts(value)
    if dt is None:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time (e.g. 2026-01-31T12:00:00Z)",
                                 param_hint=name)
    return dt


@click.command("report")
@click.option("--config", "-c", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              envvar="INFERWATCH_CONFIG",
              help="YAML or TOML configuration: audit store, references, detect section, Pushgateway.")
@click.option("--model", "-m", help="The model to report on (required for the audit store).")
@click.option("--version", "model_version", help="Only this model version.")
@click.option("--since", help="Audit store: ISO-8601 start of the time range (inclusive).")
@click.option("--until", help="Audit store: ISO-8601 end of the time range (inclusive).")
@click.option("--limit", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Audit store: at most this many rows (the newest).")
@click.option("--input", "-i", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read rows from this file instead of the audit store: CSV or Parquet table, or JSON lines "
                   "of records, audit documents or rows.")
@click.option("--reference", "-r", "reference_path",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Reference CSV or Parquet file (default: the model's latest registered reference).")
@click.option("--window", "-w", type=click.IntRange(min=1),
              help="Rows per window (tumbling); default: the whole batch is one window.")
@click.option("--detector", "-d", "detector_names", multiple=True, metavar="TYPE",
              help="Detector type to run (ks, cvm, chi2, tabular, psi, mmd, ...); repeat the option. "
                   "Default: the config's detect.detectors, else tabular.")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("inferwatch-report"), show_default=True, help="Folder for report.json and report.html.")
@click.option("--top", type=click.IntRange(min=0), default=6, show_default=True,
              help="Distribution plots for this many of the most drifted features.")
@click.option("--pushgateway", "pushgateway_url",
              help="Push the report's metrics here (default: pushgateway.url of the configuration).")
@click.option("--fail-on-drift", is_flag=True, help=f"Exit with status {EXIT_DRIFT} when any window drifted.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def report(config_path: Path | None, model: str | None, model_version: str | None, since: str | None,
           until: str | None, limit: int, input_path: Path | None, reference_path: Path | None,
           window: int | None, detector_names: tuple[str, ...], out_dir: Path, top: int,
           pushgateway_url: str | None, fail_on_drift: bool, quiet: bool) -> None:
    """Drift report over a batch: the audit store's rows of a model, or a file.

    Runs the same detectors as the stream over the batch (one window, or windows of --window
    rows) against the model's reference, and writes OUT/report.json and OUT/report.html (a
    self-contained page with plots). Exit status 0 when the report was written, drift or not;
    with --fail-on-drift, 3 when drift was found.

    \b
    inferwatch report -c inferwatch.yaml --model income --since 2026-01-01T00:00:00Z
    inferwatch report --input today.parquet --reference training.parquet --window 1000 --fail-on-drift
    """
    from inferwatch.config import load_config
    from inferwatch.references import ReferenceStore
    from sinks.report import REPORT_JOB, push_report_metrics, write_report

    try:
        cfg = load_config(config_path)
    except InferwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    since_dt, until_dt = _when(since, "--since"), _when(until, "--until")
    if input_path is not None and (since or until):
        raise click.UsageError("--since/--until select rows of the audit store; they do not apply to --input")
    if input_path is None and not model:
        raise click.UsageError("give --model (rows from the audit store) or --input FILE")

    with tempfile.TemporaryDirectory(prefix="inferwatch-report-") as tmp:
        try:
            if input_path is not None:
                model, records, source = load_input(input_path, model, model_version)
                if model_version is not None:
                    records = [r for r in records if r.version == model_version]
            else:
                assert model is not None
                records, source = _audit_rows(cfg, model, model_version, since_dt, until_dt, limit)
            if reference_path is not None:
                references = ReferenceStore(Path(tmp) / "references")
                references.register(model, reference_path, source=str(reference_path))
            elif cfg.references_path.is_dir():
                references = ReferenceStore(cfg.references_path)
            else:
                references = ReferenceStore(Path(tmp) / "references")  # empty: the errors below say so
            if not any(r.model == model for r in records):
                raise InferwatchError(_no_rows(model, model_version, input_path, since, until, records,
                                               references, cfg))
            if detector_names:
                entries = [{"type": t} for t in detector_names]
            elif config_path is not None:
                entries = list(cfg.detect.detectors)
            else:
                entries = DEFAULT_DETECTORS
            result = run_report(records, model, references, detectors=entries, window=window, source=source,
                                progress=not quiet and sys.stderr.isatty(), performance=cfg.detect.performance)
            json_path, html_path = write_report(result, out_dir, top=top)
        except InferwatchError as exc:
            raise click.ClickException(str(exc)) from exc

    from sinks.report import report_dict

    s = report_dict(result)["summary"]
    verdict = (f"drift in {s['drifted_windows']} of {s['windows']} window(s)"
               + (f" (features: {', '.join(s['drifted_features'])})" if s["drifted_features"] else "")
               if result.drift else f"no drift in {s['windows']} window(s)")
    click.echo(f"{model}: {s['rows']} rows, {verdict}")
    click.echo(f"report: {html_path}  {json_path}")
    gateway = pushgateway_url or cfg.pushgateway.url
    if gateway:
        try:
            push_report_metrics(result.detections, gateway, model)
        except OSError as exc:  # urllib's URLError/HTTPError
            raise click.ClickException(f"the report was written, but pushing its metrics to {gateway} "
                                       f"failed: {exc}") from exc
        click.echo(f"metrics pushed to {gateway} (job {REPORT_JOB}, model {model})")
    if fail_on_drift and result.drift:
        sys.exit(EXIT_DRIFT)


def _audit_rows(cfg: Any, model: str, version: str | None, since: datetime | None, until: datetime | None,
                limit: int) -> tuple[list[InferenceRecord], dict[str, Any]]:
    from inferwatch.wiring import build_audit_store

    if cfg.audit.backend == "sqlite" and not cfg.audit_path.exists():
        raise InferwatchError(f"no audit database at {str(cfg.audit_path)!r} (set data_dir or audit.path, "
                              "or read a file with --input)")
    with build_audit_store(cfg) as store:
        return load_audit(store, model, version=version, since=since, until=until, limit=limit)


def _no_rows(model: str, version: str | None, input_path: Path | None, since: str | None, until: str | None,
             records: list[InferenceRecord], references: Any, cfg: Any) -> str:
    what = f"model {model!r}" + (f" version {version!r}" if version else "")
    known_refs = references.models()
    if input_path is not None:
        in_file = sorted({r.model for r in records})
        return (f"no rows for {what} in {str(input_path)!r}"
                + (f" (it holds: {', '.join(in_file)})" if in_file else " (it is empty)"))
    span = f" between {since or 'the start'} and {until or 'now'}" if since or until else ""
    if model not in known_refs:
        return (f"unknown model {model!r}: no audited rows{span} and no reference "
                f"(models with references: {', '.join(known_refs) or 'none'})")
    return f"no audited rows for {what}{span} in the {cfg.audit.backend} audit store"

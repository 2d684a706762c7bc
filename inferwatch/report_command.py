"""``inferwatch report``: the command (options, messages, exit status).

It reads the rows (:mod:`inferwatch.batch`), runs the batch (:func:`inferwatch.report.run_report`)
and hands the result to the report writer (:mod:`sinks.report`: ``report.json``,
``report.html``, the Pushgateway).
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from inferwatch.batch import load_audit, load_input, open_table
from inferwatch.errors import InferwatchError
from inferwatch.record import InferenceRecord, parse_timestamp

__all__ = ["EXIT_DRIFT", "report"]

EXIT_DRIFT = 3
"""Exit status of ``inferwatch report --fail-on-drift`` when a window drifted."""


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time (e.g. 2026-01-31T12:00:00Z)",
                                 param_hint=name) from None


@click.command("report")
@click.option("--config", "-c", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              envvar="INFERWATCH_CONFIG",
              help="YAML or TOML configuration: audit store, references, detect section, Pushgateway.")
@click.option("--model", "-m", help="The model to report on (required for the audit store).")
@click.option("--version", "model_version", help="Only this model version.")
@click.option("--since", help="Audit store: ISO-8601 start of the time range (inclusive).")
@click.option("--until", help="Audit store: ISO-8601 end of the time range (inclusive).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Audit store: at most this many rows. Elasticsearch: every row in the range by default "
                   "(streamed, or counted in the cluster with --mode binned), the oldest N with --limit; "
                   "SQLite: the newest N (default 100000; its rows are read into memory).")
@click.option("--source", "source_backend", type=click.Choice(["elasticsearch", "sqlite"]), default=None,
              help="Audit store to read (default: audit.backend of the configuration).")
@click.option("--every", help="Audit store (Elasticsearch): one window per time bucket of this length "
                              "(30m, 1h, 1d; a date_histogram in --mode binned), for drift over time.")
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
@click.option("--mode", type=click.Choice(["exact", "binned"]), default="exact", show_default=True,
              help="exact: every test on the rows' values (large windows kept as counts that give the same "
                   "statistics); binned: numerical features counted in --bins reference-quantile bins (KS on the "
                   "CDF at the bin edges: conservative, approximate; from Elasticsearch, counted inside the cluster "
                   "with aggregations).")
@click.option("--bins", type=click.IntRange(min=2), default=100, show_default=True,
              help="Bins per numerical feature in --mode binned.")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("inferwatch-report"), show_default=True, help="Folder for report.json and report.html.")
@click.option("--top", type=click.IntRange(min=0), default=6, show_default=True,
              help="Distribution plots for this many of the most drifted features.")
@click.option("--pushgateway", "pushgateway_url",
              help="Push the report's metrics here (default: pushgateway.url of the configuration).")
@click.option("--fail-on-drift", is_flag=True, help=f"Exit with status {EXIT_DRIFT} when any window drifted.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def report(config_path: Path | None, model: str | None, model_version: str | None, since: str | None,
           until: str | None, limit: int | None, source_backend: str | None, every: str | None, input_path: Path | None, reference_path: Path | None,
           window: int | None, detector_names: tuple[str, ...], mode: str, bins: int, out_dir: Path, top: int,
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
    from inferwatch.references import ReferenceStore
    from inferwatch.report import DEFAULT_DETECTORS, run_report, run_report_audit, run_report_table
    from inferwatch.wiring import build_audit_store, load_config
    from sinks.report import REPORT_JOB, push_report_metrics, report_dict, write_report

    try:
        cfg = load_config(config_path)
        if source_backend:
            cfg.audit.backend = source_backend
    except InferwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    since_dt, until_dt = _when(since, "--since"), _when(until, "--until")
    if input_path is not None and (since or until):
        raise click.UsageError("--since/--until select rows of the audit store; they do not apply to --input")
    if input_path is None and not model:
        raise click.UsageError("give --model (rows from the audit store) or --input FILE")

    with tempfile.TemporaryDirectory(prefix="inferwatch-report-") as tmp:
        try:
            table = open_table(input_path) if input_path is not None else None
            records: list[InferenceRecord] = []
            store = None
            if table is not None:  # read in record batches by run_report_table, never whole
                model = model or table.path.name.split(".")[0] or "batch"
                source = {"input": str(input_path), "format": "table"}
            elif input_path is not None:
                model, records, source = load_input(input_path, model, model_version)
                if model_version is not None:
                    records = [r for r in records if r.version == model_version]
            else:
                assert model is not None
                if cfg.audit.backend == "elasticsearch":
                    store = build_audit_store(cfg)  # streamed or counted in the cluster: all rows in range
                    source = {}
                else:
                    if every:
                        raise click.UsageError("--every needs the Elasticsearch audit store (--source elasticsearch)")
                    records, source = _audit_rows(cfg, model, model_version, since_dt, until_dt, limit or 100_000)
            if reference_path is not None:
                references = ReferenceStore(Path(tmp) / "references")
                references.register(model, reference_path, source=str(reference_path))
            elif cfg.references_path.is_dir():
                references = ReferenceStore(cfg.references_path)
            else:
                references = ReferenceStore(Path(tmp) / "references")  # empty: the errors below say so
            if table is None and store is None and not any(r.model == model for r in records):
                raise InferwatchError(_no_rows(model, model_version, input_path, since, until, records,
                                               references, cfg))
            if detector_names:
                entries = [{"type": t} for t in detector_names]
            elif config_path is not None:
                entries = list(cfg.detect.detectors)
            else:
                entries = DEFAULT_DETECTORS
            show = not quiet and sys.stderr.isatty()
            if store is not None:
                assert model is not None
                with store:
                    result = run_report_audit(store, model, references, version=model_version, since=since_dt,
                                              until=until_dt, detectors=entries, window=window, every=every,
                                              mode=mode, bins=bins, limit=limit, progress=show)
            elif table is not None:
                result = run_report_table(table, model, references, version=model_version, detectors=entries,
                                          window=window, source=source, progress=show, mode=mode, bins=bins)
            else:
                result = run_report(records, model, references, detectors=entries, window=window, source=source,
                                    progress=show, performance=cfg.detect.performance, mode=mode, bins=bins)
            json_path, html_path = write_report(result, out_dir, top=top)
        except InferwatchError as exc:
            raise click.ClickException(str(exc)) from exc

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

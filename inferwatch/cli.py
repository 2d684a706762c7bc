"""The ``inferwatch`` command line."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson

from inferwatch.config import Config
from inferwatch.errors import InferwatchError
from inferwatch.masking import install as install_masking
from inferwatch.masking import mask, masked_dump

__all__ = ["main"]

_CONFIG = click.option(
    "--config", "-c", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="INFERWATCH_CONFIG", help="YAML or TOML configuration file (INFERWATCH_* variables override it).",
)


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("kafka", "elastic_transport", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # group joins, assignments and revocations are rare and say why a member holds what it holds
    logging.getLogger("kafka.coordinator").setLevel(logging.INFO)


def _load(config_path: Path | None, overrides: dict[str, Any] | None = None) -> Config:
    from inferwatch.wiring import load_config  # plug-in names checked against the registries

    try:
        return load_config(config_path, overrides=overrides)
    except InferwatchError as exc:
        raise click.ClickException(str(exc)) from exc


class _MaskingGroup(click.Group):
    """Error messages never show a configured secret (a client error may quote a URL or header)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            masked = mask(exc.message)
            if masked == exc.message:
                raise
            raise click.ClickException(masked) from exc


@click.group(cls=_MaskingGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="inferwatch")
def main() -> None:
    """inferwatch — audit, drift and outlier monitoring for served ML models.

    Payload logs from model servers (Seldon Core, KServe, MLServer, TF Serving, BentoML,
    FastAPI) come in through the collector, go onto a log (SQLite embedded, or Kafka), and are
    read independently by the audit role (SQLite or Elasticsearch, searchable) and the detect
    role (drift and outlier detectors, Prometheus metrics, Alertmanager alerts).

    \b
    Start here:
      inferwatch demo                      the whole pipeline on this machine, no servers
      inferwatch run -c inferwatch.yaml    run the pipeline (all roles, or --role ...)
      inferwatch search --model iris       search the audit trail
    """
    install_masking()


@main.command()
@_CONFIG
@click.option("--role", "roles", multiple=True, type=click.Choice(["collector", "audit", "detect", "all"]),
              default=("all",), show_default=True, help="Role(s) to run in this process; repeat the option.")
@click.option("--port", type=int, help="Collector HTTP port (overrides collector.port).")
@click.option("--metrics-port", type=int, help="Metrics port for roles without the collector (metrics.port).")
def run(config_path: Path | None, roles: tuple[str, ...], port: int | None, metrics_port: int | None) -> None:
    """Run the pipeline roles until interrupted (SIGINT/SIGTERM stop them cleanly).

    The collector answers on http://HOST:PORT/ (CloudEvents), /v1/records (JSON), /metrics,
    /healthz and /readyz. Audit and detect consumers commit their log position only after their
    work is durable, so a restart resumes exactly where they stopped.
    """
    from inferwatch.pipeline import ROLES, Pipeline

    overrides: dict[str, Any] = {}
    if port is not None:
        overrides["collector.port"] = port
    if metrics_port is not None:
        overrides["metrics.port"] = metrics_port
    cfg = _load(config_path, overrides)
    _setup_logging(cfg.log_level)
    selected = list(ROLES) if "all" in roles else list(dict.fromkeys(roles))
    logging.getLogger("inferwatch").info(
        "roles %s; log=%s audit=%s", ",".join(selected), cfg.log.backend, cfg.audit.backend)
    try:
        Pipeline(cfg, selected).run_forever()
    except InferwatchError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@_CONFIG
@click.option("--upstream", "-u", required=True, help="The model server's base URL, e.g. http://127.0.0.1:8080.")
@click.option("--host", help="Address to listen on (proxy.host, default 127.0.0.1).")
@click.option("--port", "-p", type=int, help="Port to listen on (proxy.port, default 8090).")
@click.option("--model", help="Model name for paths that do not name one (Seldon v1, MLflow, other POSTs).")
@click.option("--send-to", help="'log' (the configured log, e.g. Kafka) or a collector URL (proxy.send_to).")
@click.option("--spool", "spool_path", type=click.Path(dir_okay=False),
              help="Disk spool for records while the log is unreachable (proxy.spool_path).")
def proxy(config_path: Path | None, upstream: str, host: str | None, port: int | None, model: str | None,
          send_to: str | None, spool_path: str | None) -> None:
    """Run a logging reverse proxy in front of a model server.

    Point clients at the proxy instead of the model server: every request and answer passes
    unchanged (streamed answers too), and each inference call is logged after it is answered,
    off the request path, through a bounded disk spool (so the proxy keeps serving while the log
    is down). Metrics: http://HOST:PORT/.inferwatch/metrics.
    """
    from collectors.proxy import LoggingProxy
    from inferwatch.ingest import Ingestor
    from inferwatch.metrics import Metrics
    overrides: dict[str, Any] = {"proxy.upstream": upstream}
    for key, value in (("host", host), ("port", port), ("model", model), ("send_to", send_to),
                       ("spool_path", spool_path)):
        if value is not None:
            overrides[f"proxy.{key}"] = value
    cfg = _load(config_path, overrides)
    _setup_logging(cfg.log_level)
    try:  # the proxy's logger process builds the configured log itself
        from inferwatch.wiring import build_log

        LoggingProxy.from_config(cfg, log_factory=build_log).serve_forever(
            Ingestor(None, cfg, Metrics()))  # type: ignore[arg-type]
    except InferwatchError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the traffic and model.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("inferwatch-demo"),
              show_default=True, help="Where the demo's log, audit database and reference go.")
@click.option("--rows-per-phase", type=int, default=300, show_default=True, help="Rows sent in each phase.")
@click.option("--window", type=int, default=100, show_default=True, help="Rows per drift-test window.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of a table.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def demo(seed: int, data_dir: Path, rows_per_phase: int, window: int, as_json: bool, quiet: bool) -> None:
    """Train a small model, run the embedded pipeline, and send it clean and then shifted traffic.

    Everything runs in this process on loopback: the collector receives KServe-style
    CloudEvents, the audit role stores every row in SQLite, and a Kolmogorov-Smirnov drift
    detector tests each window against the training data. A summary shows what was found.
    """
    from inferwatch.demo import run_demo

    _setup_logging("ERROR")
    try:
        summary = run_demo(seed=seed, data_dir=data_dir, rows_per_phase=rows_per_phase, window=window,
                           progress=not quiet and not as_json)
    except InferwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        from inferwatch.demo import print_summary

        print_summary(summary)
    if not summary["ok"]:
        sys.exit(1)


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    from inferwatch.record import parse_timestamp

    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time (e.g. 2026-01-31T12:00:00Z)") from exc


@main.command()
@_CONFIG
@click.option("--kind", type=click.Choice(["records", "detections", "deadletters"]), default="records",
              show_default=True)
@click.option("--model", help="Only this model.")
@click.option("--version", "model_version", help="Only this model version (or variant).")
@click.option("--id", "doc_id", help="A request id (all its rows) or one document id <id>-<row>.")
@click.option("--since", help="ISO-8601 time, inclusive.")
@click.option("--until", help="ISO-8601 time, inclusive.")
@click.option("--text", "-q", help="Full-text query over the payloads.")
@click.option("--fired", is_flag=True, help="Detections: only windows that fired.")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="A table for people, JSON lines for programs.")
def search(config_path: Path | None, kind: str, model: str | None, model_version: str | None,
           doc_id: str | None, since: str | None, until: str | None, text: str | None, fired: bool,
           limit: int, fmt: str) -> None:
    """Search the audit trail (SQLite or Elasticsearch, as configured)."""
    from inferwatch.audit import SearchQuery
    from inferwatch.wiring import build_audit_store

    cfg = _load(config_path)
    q = SearchQuery(kind=kind, text=text, model=model, version=model_version, id=doc_id,  # type: ignore[arg-type]
                    since=_when(since), until=_when(until), drift_only=fired, limit=limit)
    try:
        with build_audit_store(cfg) as store:
            docs = store.search(q)
            total = store.count(q)
    except InferwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    if fmt == "json":
        for d in docs:
            click.echo(orjson.dumps(d).decode())
        return
    _print_docs(kind, docs, total)


def _print_docs(kind: str, docs: list[dict[str, Any]], total: int) -> None:
    from rich.console import Console
    from rich.table import Table

    def short(v: Any, n: int = 60) -> str:
        s = v if isinstance(v, str) else orjson.dumps(v).decode()
        return s if len(s) <= n else s[: n - 1] + "…"

    t = Table(title=f"{len(docs)} of {total} {kind}")
    if kind == "records":
        for c in ("id", "time", "model", "version", "input", "output"):
            t.add_column(c, overflow="fold")
        for d in docs:
            t.add_row(d.get("doc_id", ""), str(d.get("timestamp", d.get("response_timestamp", ""))),
                      d.get("model", ""), str(d.get("version") or ""), short(d.get("input", "")),
                      short(d.get("output", "")))
    elif kind == "detections":
        for c in ("time", "model", "version", "detector", "fired", "p-value", "window", "features"):
            t.add_column(c)
        for d in docs:
            fired = d.get("is_drift") or d.get("is_outlier")
            feats = [k for k, v in (d.get("feature_drift") or {}).items() if v]
            t.add_row(str(d.get("window_end") or d.get("timestamp")), d.get("model", ""),
                      str(d.get("version") or ""), d.get("detector", ""), "YES" if fired else "no",
                      "" if d.get("p_value") is None else f"{d['p_value']:.3g}", str(d.get("window_size", "")),
                      short(", ".join(feats), 40))
    else:
        for c in ("id", "time", "source", "stage", "reason"):
            t.add_column(c, overflow="fold")
        for d in docs:
            t.add_row(d.get("id", ""), str(d.get("timestamp", "")), d.get("source", ""), d.get("stage", ""),
                      short(d.get("reason", ""), 80))
    Console().print(t)


_BACKFILL_OPTIONS = [
    click.option("--model", "-m", help="Model name for rows without one."),
    click.option("--protocol", help="Payload protocol (default: detected per payload)."),
    click.option("--output-column", "output_columns", multiple=True,
                 help="CSV/Parquet: a column holding an output, not an input (repeat)."),
    click.option("--speed", type=float, default=0.0, show_default=True,
                 help="0: full speed; N: the recorded pace (timestamp gaps) N times faster."),
    click.option("--batch", type=int, default=500, show_default=True, help="Records per durable write."),
    click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
]


def _backfill_options(fn: Any) -> Any:
    for option in reversed(_BACKFILL_OPTIONS):
        fn = option(fn)
    return fn


def _backfill(cfg: Config, files: tuple[Path, ...], model: str | None, protocol: str | None,
              output_columns: tuple[str, ...], speed: float, batch: int, quiet: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from collectors.backfill import Backfill, read_rows
    from inferwatch.ingest import Ingestor
    from inferwatch.metrics import Metrics
    from inferwatch.wiring import build_log, log_message

    total = None if quiet else sum(1 for f in files for _ in read_rows(f))
    with build_log(cfg) as lg, Progress(TextColumn("backfill"), BarColumn(), MofNCompleteColumn(),
                                        TimeRemainingColumn(), disable=quiet, transient=False) as bar:
        task = bar.add_task("rows", total=total)
        job = Backfill(Ingestor(lg, cfg, Metrics(), log_message(lg, cfg)), model=model, protocol=protocol,
                       output_columns=output_columns, speed=speed, batch=batch)
        result = job.run(files, progress=lambda n: bar.advance(task, n))
    click.echo(f"{result.rows} rows from {len(result.files)} file(s): {result.records} records, "
               f"{result.dead_letters} dead letters (on {cfg.log.backend})")


@main.command()
@_CONFIG
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_backfill_options
def backfill(config_path: Path | None, files: tuple[Path, ...], model: str | None, protocol: str | None,
             output_columns: tuple[str, ...], speed: float, batch: int, quiet: bool) -> None:
    """Replay recorded exchanges from files (JSONL, CSV, Parquet; gzipped too) into the log.

    Each row is one exchange in any supported protocol (record fields as /v1/records takes them;
    CSV/Parquet columns are record fields or features). Idempotent: rows without an id get one
    derived from their position and content, so the same file twice duplicates nothing.
    """
    cfg = _load(config_path)
    _setup_logging(cfg.log_level)
    try:
        _backfill(cfg, files, model, protocol, output_columns, speed, batch, quiet)
    except (InferwatchError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@_CONFIG
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--role", type=click.Choice(["audit", "detect"]), default="audit", show_default=True,
              help="Without FILES: which consumer role to rewind.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_backfill_options
def replay(config_path: Path | None, files: tuple[Path, ...], role: str, yes: bool, model: str | None,
           protocol: str | None, output_columns: tuple[str, ...], speed: float, batch: int, quiet: bool) -> None:
    """With FILES: the same as `inferwatch backfill FILES`. Without: rewind a consumer role to the
    start of the log, so it re-reads everything.

    Stop that role first. Audit documents have deterministic ids, so replaying rewrites the
    same documents: nothing is duplicated. A detect replay starts with empty windows.
    """
    if files:
        cfg = _load(config_path)
        _setup_logging(cfg.log_level)
        try:
            _backfill(cfg, files, model, protocol, output_columns, speed, batch, quiet)
        except (InferwatchError, ValueError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc
        return
    from inferwatch.wiring import build_log

    cfg = _load(config_path)
    topic = cfg.log.records_topic
    groups = ([cfg.audit.group, cfg.audit.group + "-detections", cfg.audit.group + "-deadletters"]
              if role == "audit" else [cfg.detect.group])
    topics = ([topic, cfg.log.detections_topic, cfg.log.deadletter_topic] if role == "audit" else [topic])
    if not yes:
        click.confirm(f"rewind {', '.join(groups)} to the start of the log?", abort=True)
    try:
        with build_log(cfg) as lg:
            for group, t in zip(groups, topics, strict=True):
                lg.reset_group(t, group)
                click.echo(f"{group}: rewound to the start of {t} ({lg.group_lag(t, group)} messages to re-read)")
    except InferwatchError as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def reference() -> None:
    """Register and list reference data sets (what drift is measured against)."""


@reference.command("add")
@_CONFIG
@click.argument("model")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False)
@click.option("--version", "model_version", help="Model version the reference belongs to (default: all).")
@click.option("--from-audit", is_flag=True, help="Take the rows from the audit trail instead of a FILE.")
@click.option("--since", help="With --from-audit: ISO-8601 start of the time range.")
@click.option("--until", help="With --from-audit: ISO-8601 end of the time range.")
@click.option("--limit", type=int, default=10_000, show_default=True, help="With --from-audit: at most this many rows.")
def reference_add(config_path: Path | None, model: str, file: Path | None, model_version: str | None,
                  from_audit: bool, since: str | None, until: str | None, limit: int) -> None:
    """Register a reference for MODEL: a FILE (CSV or Parquet), or a time range of the audit trail.

    \b
    inferwatch reference add income training.parquet
    inferwatch reference add income --from-audit --since 2026-01-01T00:00:00Z --until 2026-01-08T00:00:00Z
    """
    from inferwatch.audit import reference_from_audit
    from inferwatch.references import ReferenceStore
    from inferwatch.wiring import build_audit_store

    cfg = _load(config_path)
    if from_audit == (file is not None):
        raise click.UsageError("give either FILE or --from-audit")
    data: Any = file
    source = str(file)
    if from_audit:
        try:
            with build_audit_store(cfg) as store:
                data = reference_from_audit(store, model, version=model_version, since=_when(since),
                                            until=_when(until), limit=limit)
        except (InferwatchError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
        source = f"audit {cfg.audit.backend}: {model} {since or '-inf'} .. {until or 'now'}"
    try:
        info = ReferenceStore(cfg.references_path).register(model, data, version=model_version, source=source)
    except InferwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"registered reference {info.id} for {model}"
               f"{'/' + model_version if model_version else ''}: {info.rows} rows, {len(info.columns)} columns")


@reference.command("list")
@_CONFIG
def reference_list(config_path: Path | None) -> None:
    """List registered references."""
    from inferwatch.references import ReferenceStore

    cfg = _load(config_path)
    for info in ReferenceStore(cfg.references_path).list():
        click.echo(f"{info.id}\t{info.model}\t{info.version or '*'}\t{info.rows} rows\t{info.created_at}\t{info.source}")


@main.command("config")
@_CONFIG
def show_config(config_path: Path | None) -> None:
    """Print the effective configuration (file + INFERWATCH_* overrides) as YAML; secrets show as ****."""
    import yaml

    cfg = _load(config_path)
    click.echo(yaml.safe_dump(masked_dump(cfg), sort_keys=False))


def _register_report() -> None:
    from inferwatch.report_command import report

    main.add_command(report)


_register_report()


def _register_dashboards() -> None:
    from dashboards.cli import dashboards

    main.add_command(dashboards)


_register_dashboards()


if __name__ == "__main__":  # pragma: no cover
    main()

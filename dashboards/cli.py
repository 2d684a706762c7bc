"""``inferwatch dashboards ...``: upload the generated Grafana dashboards."""

from __future__ import annotations

from pathlib import Path

import click

from inferwatch.config import load_config
from inferwatch.errors import InferwatchError

__all__ = ["dashboards"]


@click.group()
def dashboards() -> None:
    """Grafana dashboards (pipeline health, drift and outliers, model quality)."""


@dashboards.command("push")
@click.option("--config", "-c", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              envvar="INFERWATCH_CONFIG", help="inferwatch configuration (its prometheus.url is the default "
              "data source URL).")
@click.option("--url", envvar="INFERWATCH_GRAFANA_URL", required=True, help="Grafana's base URL.")
@click.option("--token", envvar="INFERWATCH_GRAFANA_TOKEN", help="Service-account token (or --user/--password).")
@click.option("--user", envvar="INFERWATCH_GRAFANA_USER", help="Basic-auth user.")
@click.option("--password", envvar="INFERWATCH_GRAFANA_PASSWORD", help="Basic-auth password.")
@click.option("--prometheus-url", help="The Prometheus URL as Grafana reaches it (default: prometheus.url).")
@click.option("--folder-uid", default="inferwatch", show_default=True, help="Folder for the dashboards.")
@click.option("--folder-title", default="inferwatch", show_default=True, help="Title when the folder is created.")
@click.option("--no-datasource", is_flag=True, help="Do not create or update the Prometheus data source.")
def push(config_path: Path | None, url: str, token: str | None, user: str | None, password: str | None,
         prometheus_url: str | None, folder_uid: str, folder_title: str, no_datasource: bool) -> None:
    """Upload the Prometheus data source, a folder and the three dashboards to a Grafana.

    \b
    inferwatch dashboards push --url https://grafana.example --token glsa_...
    """
    from dashboards.grafana import push as do_push

    if bool(token) == bool(user):
        raise click.UsageError("give either --token or --user (with --password)")
    credential: str | tuple[str, str] = token if token else (user or "", password or "")
    try:
        prom = prometheus_url or load_config(config_path).prometheus.url
        result = do_push(url, credential, prometheus_url=prom, folder_uid=folder_uid, folder_title=folder_title,
                         with_datasource=not no_datasource)
    except InferwatchError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"data source prometheus: {result.datasource} ({prom})" if not no_datasource
               else "data source: left alone")
    click.echo(f"folder {folder_uid}: {result.folder}")
    for uid, path in result.dashboards.items():
        click.echo(f"dashboard {uid}: {url.rstrip('/')}{path}")

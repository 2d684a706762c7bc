"""The generated Grafana dashboards and their upload to a Grafana server.

The JSON files in ``json/`` are written by :mod:`dashboards.grafana.generate` (typed builders of
``grafana-foundation-sdk``); this module only reads them, so pushing needs no SDK.

:func:`push` uploads, through ``grafana-client``:

1. the Prometheus data source as ``provisioning/datasources/prometheus.yml`` describes it
   (uid ``prometheus``, the uid every panel refers to), with the URL Grafana should use —
   created when missing, updated otherwise;
2. a folder (created when missing);
3. every dashboard, overwriting the same uid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inferwatch.errors import InferwatchError

__all__ = ["DASHBOARD_UIDS", "PushResult", "datasource", "load", "push"]

HERE = Path(__file__).resolve().parent
JSON_DIR = HERE / "json"
PROVISIONED_DATASOURCE = HERE / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_UIDS = ("inferwatch-health", "inferwatch-drift", "inferwatch-quality")


def load(uid: str) -> dict[str, Any]:
    """One generated dashboard, as Grafana's JSON model."""
    if uid not in DASHBOARD_UIDS:
        raise KeyError(uid)
    out: dict[str, Any] = json.loads((JSON_DIR / f"{uid}.json").read_text())
    return out


def datasource(prometheus_url: str | None = None) -> dict[str, Any]:
    """The data source body for Grafana's HTTP API: the provisioned one, at ``prometheus_url``.

    >>> ds = datasource("http://prometheus.example:9090")
    >>> ds["uid"], ds["type"], ds["url"]
    ('prometheus', 'prometheus', 'http://prometheus.example:9090')
    """
    provisioned = yaml.safe_load(PROVISIONED_DATASOURCE.read_text())
    (ds,) = [d for d in provisioned["datasources"] if d["type"] == "prometheus"]
    body = {k: v for k, v in ds.items() if k != "editable"}  # `editable` is a provisioning-only field
    if prometheus_url:
        body["url"] = prometheus_url
    return body


@dataclass
class PushResult:
    datasource: str  # "created" or "updated" or "skipped"
    folder: str  # "created" or "exists" or "none"
    dashboards: dict[str, str] = field(default_factory=dict)  # uid -> URL path Grafana answered


def push(url: str, credential: str | tuple[str, str], *, prometheus_url: str | None = None,
         folder_uid: str | None = "inferwatch", folder_title: str = "inferwatch",
         with_datasource: bool = True, timeout: float = 10.0) -> PushResult:
    """Upload the data source, folder and dashboards to the Grafana at ``url``.

    ``credential`` is a service-account token or a ``(user, password)`` pair. Any refusal
    (authentication, validation, a server error) raises :class:`InferwatchError` naming the step.
    """
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaClientError, GrafanaException

    api = GrafanaApi.from_url(url, credential=credential, timeout=timeout)
    result = PushResult(datasource="skipped", folder="none")
    step = "data source"
    try:
        if with_datasource:
            body = datasource(prometheus_url)
            try:
                api.datasource.get_datasource_by_uid(body["uid"])
            except GrafanaClientError as exc:
                if exc.status_code != 404:
                    raise
                api.datasource.create_datasource(body)
                result.datasource = "created"
            else:
                api.datasource.update_datasource_by_uid(body["uid"], body)
                result.datasource = "updated"
        if folder_uid:
            step = f"folder {folder_uid}"
            try:
                api.folder.get_folder(folder_uid)
                result.folder = "exists"
            except GrafanaClientError as exc:
                if exc.status_code != 404:
                    raise
                api.folder.create_folder(folder_title, uid=folder_uid)
                result.folder = "created"
        for uid in DASHBOARD_UIDS:
            step = f"dashboard {uid}"
            payload: dict[str, Any] = {"dashboard": load(uid), "overwrite": True,
                                       "message": "inferwatch dashboards push"}
            if folder_uid:
                payload["folderUid"] = folder_uid
            answer = api.dashboard.update_dashboard(payload)
            result.dashboards[uid] = str((answer or {}).get("url", ""))
    except GrafanaException as exc:
        raise InferwatchError(f"Grafana at {url} refused the {step}: {exc.message}") from exc
    return result

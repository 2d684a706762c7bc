"""``inferwatch dashboards push`` against a loopback stand-in of Grafana's HTTP API.

No Grafana server runs here, so a small HTTP server answers the calls Grafana's API documents
(data sources by uid, folders, ``POST /api/dashboards/db``) and keeps what it was sent; the
tests check the paths, methods, auth header and bodies, and that a second push updates rather
than duplicates.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from click.testing import CliRunner

from dashboards.grafana import DASHBOARD_UIDS, load
from inferwatch.cli import main

TOKEN = "glsa_test_token"


@dataclass
class FakeGrafana:
    auth: str = f"Bearer {TOKEN}"
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    reject_dashboard: str | None = None

    def handle(self, method: str, path: str, headers: Any, body: Any) -> tuple[int, Any]:
        self.calls.append((method, path, body))
        if headers.get("Authorization") != self.auth:
            return 401, {"message": "Unauthorized"}
        if method in ("POST", "PUT") and headers.get("Content-Type", "").split(";")[0] != "application/json":
            return 415, {"message": "bad content type"}
        parts = path.strip("/").split("/")
        if parts[:3] == ["api", "datasources", "uid"] and len(parts) == 4:
            uid = parts[3]
            if method == "GET":
                ds = self.datasources.get(uid)
                return (200, ds) if ds else (404, {"message": "Data source not found"})
            if method == "PUT":
                if uid not in self.datasources:
                    return 404, {"message": "Data source not found"}
                self.datasources[uid] = body
                return 200, {"message": "Datasource updated", "name": body["name"]}
        if parts == ["api", "datasources"] and method == "POST":
            if body.get("uid") in self.datasources:
                return 409, {"message": "data source with the same uid already exists"}
            for key in ("name", "type", "url", "access"):
                if not body.get(key):
                    return 400, {"message": f"{key} missing"}
            self.datasources[body["uid"]] = body
            return 200, {"message": "Datasource added", "id": len(self.datasources), "name": body["name"]}
        if parts[:2] == ["api", "folders"]:
            if method == "GET" and len(parts) == 3:
                f = self.folders.get(parts[2])
                return (200, f) if f else (404, {"message": "folder not found"})
            if method == "POST" and len(parts) == 2:
                if body["uid"] in self.folders:
                    return 409, {"message": "a folder with the same uid already exists"}
                self.folders[body["uid"]] = body
                return 200, {"uid": body["uid"], "title": body["title"]}
        if parts == ["api", "dashboards", "db"] and method == "POST":
            d = body.get("dashboard") or {}
            if not d.get("uid") or not d.get("title") or not isinstance(d.get("panels"), list):
                return 400, {"message": "Dashboard title cannot be empty"}
            if d["uid"] == self.reject_dashboard:
                return 400, {"message": "Dashboard has invalid panels"}
            if body.get("folderUid") and body["folderUid"] not in self.folders:
                return 400, {"message": "folder not found"}
            if d["uid"] in self.dashboards and not body.get("overwrite"):
                return 412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"}
            version = self.dashboards.get(d["uid"], {}).get("version", 0) + 1
            self.dashboards[d["uid"]] = {"body": body, "version": version}
            return 200, {"id": len(self.dashboards), "uid": d["uid"], "url": f"/d/{d['uid']}/x",
                         "status": "success", "version": version}
        return 404, {"message": "Not found"}


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _serve(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            status, answer = fake.handle(self.command, self.path, self.headers, json.loads(raw) if raw else None)
            out = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _push(url: str, *args: str) -> Any:
    return CliRunner().invoke(main, ["dashboards", "push", "--url", url, *args], catch_exceptions=False, env={})


def test_first_push_creates_datasource_folder_and_every_dashboard(grafana):
    fake, url = grafana
    result = _push(url, "--token", TOKEN, "--prometheus-url", "http://prom.internal:9090")
    assert result.exit_code == 0, result.output
    assert [(m, p) for m, p, _ in fake.calls] == [
        ("GET", "/api/datasources/uid/prometheus"),
        ("POST", "/api/datasources"),
        ("GET", "/api/folders/inferwatch"),
        ("POST", "/api/folders"),
        *[("POST", "/api/dashboards/db")] * len(DASHBOARD_UIDS),
    ]
    ds = fake.datasources["prometheus"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prom.internal:9090" and ds["access"] == "proxy"
    assert "editable" not in ds  # provisioning-only field, refused by the HTTP API's model
    assert fake.folders == {"inferwatch": {"title": "inferwatch", "uid": "inferwatch"}}
    assert set(fake.dashboards) == set(DASHBOARD_UIDS)
    for uid in DASHBOARD_UIDS:
        sent = fake.dashboards[uid]["body"]
        assert sent["dashboard"] == load(uid)  # the committed JSON, byte for byte as a document
        assert sent["folderUid"] == "inferwatch" and sent["overwrite"] is True
        # every panel's queries go to the data source this push created
        for panel in sent["dashboard"]["panels"]:
            for t in panel.get("targets", []):
                assert t["datasource"] == {"type": "prometheus", "uid": ds["uid"]}
        assert f"{url}/d/{uid}/x" in result.output


def test_second_push_updates_in_place(grafana):
    fake, url = grafana
    assert _push(url, "--token", TOKEN, "--prometheus-url", "http://a:9090").exit_code == 0
    fake.calls.clear()
    result = _push(url, "--token", TOKEN, "--prometheus-url", "http://b:9090")
    assert result.exit_code == 0, result.output
    assert [(m, p) for m, p, _ in fake.calls] == [
        ("GET", "/api/datasources/uid/prometheus"),
        ("PUT", "/api/datasources/uid/prometheus"),
        ("GET", "/api/folders/inferwatch"),
        *[("POST", "/api/dashboards/db")] * len(DASHBOARD_UIDS),
    ]
    assert fake.datasources["prometheus"]["url"] == "http://b:9090"
    assert {uid: d["version"] for uid, d in fake.dashboards.items()} == dict.fromkeys(DASHBOARD_UIDS, 2)


def test_basic_auth_and_no_datasource(grafana):
    fake, url = grafana
    fake.auth = "Basic " + base64.b64encode(b"admin:s3cret").decode()
    result = _push(url, "--user", "admin", "--password", "s3cret", "--no-datasource")
    assert result.exit_code == 0, result.output
    assert not fake.datasources and not [c for c in fake.calls if "datasources" in c[1]]
    assert set(fake.dashboards) == set(DASHBOARD_UIDS)


def test_refusals_name_the_step_and_fail(grafana):
    fake, url = grafana
    bad = _push(url, "--token", "wrong")
    assert bad.exit_code == 1 and "refused the data source" in bad.output and "Unauthorized" in bad.output
    assert not fake.dashboards
    fake.reject_dashboard = "inferwatch-drift"
    result = _push(url, "--token", TOKEN)
    assert result.exit_code == 1
    assert "dashboard inferwatch-drift" in result.output and "invalid panels" in result.output


def test_token_or_user_is_required(grafana):
    _, url = grafana
    assert _push(url).exit_code == 2
    assert _push(url, "--token", TOKEN, "--user", "admin").exit_code == 2

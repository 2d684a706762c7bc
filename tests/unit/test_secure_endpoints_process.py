"""Authentication and TLS on running processes (issue 11): ``inferwatch run --role collector`` and
``--role detect`` (its own metrics endpoint), started as real processes with bearer/API-key
tokens and a certificate made here by ``openssl``, probed with a real HTTP client: plain HTTP and
an untrusted certificate are refused at the TLS layer, a missing or wrong credential gets 401,
the right one 202/200 (``/metrics`` included), liveness stays open, the records reach the log,
and no log line holds a token."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from inferwatch.config import load_config
from inferwatch.record import InferenceRecord
from inferwatch.sqlite_log import SQLiteLog
from tests.faults.harness import Role, free_port
from tests.optional import missing
from tests.waiting import wait_until


@pytest.fixture(autouse=True)
def _openssl() -> None:
    if shutil.which("openssl") is None:
        missing("needs the openssl command (`make test` installs it: apt-get install openssl)")


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def _status(url: str, **kw: object) -> int:
    try:
        return httpx.request(kw.pop("method", "GET"), url, timeout=5, **kw).status_code  # type: ignore[arg-type]
    except httpx.HTTPError:
        return 0


def test_collector_and_metrics_endpoints_demand_tls_and_a_token(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    token, api_key = "tok-" + secrets.token_hex(12), "key-" + secrets.token_hex(12)
    port, metrics_port = free_port(), free_port()
    env = {"INFERWATCH_DATA_DIR": str(tmp_path / "data"), "INFERWATCH_LOG_LEVEL": "DEBUG",
           "INFERWATCH_COLLECTOR_PORT": str(port), "INFERWATCH_COLLECTOR_AUTH_TOKENS": f"{token},{api_key}",
           "INFERWATCH_COLLECTOR_TLS_CERTFILE": str(cert), "INFERWATCH_COLLECTOR_TLS_KEYFILE": str(key),
           "INFERWATCH_METRICS_PORT": str(metrics_port), "INFERWATCH_METRICS_AUTH_TOKENS": token,
           "INFERWATCH_METRICS_TLS_CERTFILE": str(cert), "INFERWATCH_METRICS_TLS_KEYFILE": str(key)}
    collector = Role(["collector"], env, tmp_path / "logs", name="collector")
    detect = Role(["detect"], env, tmp_path / "logs", name="detect")
    base, metrics = f"https://127.0.0.1:{port}", f"https://127.0.0.1:{metrics_port}"
    trusted = {"verify": str(cert)}
    records = [{"id": f"r{i}", "model": "m", "inputs": {"x": [float(i)]}} for i in range(3)]
    try:
        collector.start()
        detect.start()
        for url in (base, metrics):
            wait_until(lambda url=url: _status(url + "/healthz", **trusted) == 200, 60,
                       f"{url} to answer over TLS", every=0.3)
        assert collector.running and detect.running
        for url in (base, metrics):
            # the TLS handshake is required: plain HTTP and an unknown certificate fail before HTTP
            with pytest.raises(httpx.HTTPError):
                httpx.get(url.replace("https://", "http://") + "/healthz", timeout=5)
            with pytest.raises(httpx.ConnectError):
                httpx.get(url + "/healthz", timeout=5)  # the system trust store does not know our certificate
            assert _status(url + "/metrics", **trusted) == 401
            assert _status(url + "/metrics", headers={"Authorization": "Bearer nope"}, **trusted) == 401
            ok = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=5, **trusted)
            assert ok.status_code == 200 and "inferwatch_" in ok.text
        post = {"method": "POST", "json": records[:1], **trusted}
        assert _status(base + "/v1/records", **post) == 401
        assert _status(base + "/v1/records", headers={"Authorization": f"Bearer {api_key}x"}, **post) == 401
        assert _status(base + "/v1/records", headers={"X-API-Key": token[:-1]}, **post) == 401
        assert _status(base + "/v1/records", headers={"Authorization": f"Bearer {token}"}, **post) == 202
        assert _status(base + "/v1/records", method="POST", json=records[1:], headers={"X-API-Key": api_key},
                       **trusted) == 202
        assert _status(base + "/readyz", **trusted) == 401  # readiness is not liveness: it needs the token
    finally:
        collector.stop(30)
        detect.stop(30)
    cfg = load_config(None, env={"INFERWATCH_DATA_DIR": str(tmp_path / "data")})
    lg = SQLiteLog(cfg.log_path)
    c = lg.consumer(cfg.log.records_topic, "reader")
    assert sorted(InferenceRecord.from_json(e.value).id for e in c.poll(100)) == ["r0", "r1", "r2"]
    c.close()
    lg.close()
    logs = collector.log_text() + detect.log_text()
    assert "collector listening on https" in logs
    assert token not in logs and api_key not in logs and token[:-1] not in logs

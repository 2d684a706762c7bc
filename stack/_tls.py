"""The secure mode's certificates and credentials, made with the ``openssl`` command.

``<datadir>/secure/`` holds a private CA (``ca.pem``), a server certificate for 127.0.0.1 and
localhost signed by it (``server.crt``, ``server.key``, and ``server.pem`` = key + certificate,
the PEM key store Kafka reads), and ``credentials.json`` (random passwords, mode 0600): the
Kafka SCRAM users ``admin`` (inter-broker) and ``inferwatch``, and the Elasticsearch proxy's
basic-auth user and API key. Everything is created once and kept across ``up``/``down``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class TlsError(RuntimeError):
    pass


@dataclass(frozen=True)
class SecureFiles:
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def cert(self) -> Path:
        return self.folder / "server.crt"

    @property
    def key(self) -> Path:
        return self.folder / "server.key"

    @property
    def keystore(self) -> Path:
        return self.folder / "server.pem"

    @property
    def credentials_file(self) -> Path:
        return self.folder / "credentials.json"

    def credentials(self) -> dict[str, str]:
        return dict(json.loads(self.credentials_file.read_text()))


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise TlsError("the secure stack needs the openssl command (apt-get install openssl)")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise TlsError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()[-800:]}")


def ensure(folder: Path) -> SecureFiles:
    """Create the CA, server certificate and credentials under ``folder`` unless present."""
    files = SecureFiles(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    if not (files.ca.is_file() and files.keystore.is_file()):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                 "-days", "3650", "-subj", "/CN=inferwatch-stack-test-ca", "-addext",
                 "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 cwd=folder)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
                 "-subj", "/CN=127.0.0.1", cwd=folder)
        (folder / "server.ext").write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n")
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", "server.crt", "-days", "3650", "-extfile", "server.ext", cwd=folder)
        # Kafka's PEM key store: an unencrypted PKCS#8 key followed by the certificate chain
        _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "server.key", "-out", "server.pk8", cwd=folder)
        files.keystore.write_text((folder / "server.pk8").read_text() + files.cert.read_text()
                                  + files.ca.read_text())
        for name in ("ca.key", "server.key", "server.pk8", "server.pem"):
            os.chmod(folder / name, 0o600)
    if not files.credentials_file.is_file():
        creds = {
            "kafka_admin_password": secrets.token_urlsafe(18),
            "kafka_username": "inferwatch",
            "kafka_password": secrets.token_urlsafe(18),
            "es_username": "inferwatch",
            "es_password": secrets.token_urlsafe(18),
            "es_api_key_id": secrets.token_hex(8),
            "es_api_key_secret": secrets.token_urlsafe(18),
        }
        tmp = files.credentials_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(creds, indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(files.credentials_file)
    return files


def encoded_api_key(creds: dict[str, str]) -> str:
    """The API key as Elasticsearch hands it out: base64 of ``id:secret`` (the ``encoded`` field)."""
    return base64.b64encode(f"{creds['es_api_key_id']}:{creds['es_api_key_secret']}".encode()).decode()

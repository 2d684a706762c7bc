"""A TLS-terminating, authenticating reverse proxy in front of the stack's Elasticsearch node.

Elasticsearch's security (the x-pack-security plugin) cannot be booted from Maven Central:
``org.elasticsearch.plugin:x-pack-security`` itself resolves, but its dependency
``org.opensaml:opensaml-core`` (and the other OpenSAML artifacts) is not served there. So the
secure stack puts this proxy in front of the node: it serves HTTPS with the stack's certificate
and answers every request without valid credentials with 401 and Elasticsearch's
``security_exception`` body, exactly as a secured node does; requests with HTTP Basic
credentials or an ``Authorization: ApiKey <base64(id:key)>`` header matching
``credentials.json`` are forwarded to the node and its answer relayed. This exercises the
client side (TLS verification against our CA, basic auth, API keys) with the real client.

    python -m stack._authproxy --port 19243 --backend 127.0.0.1:19200 --secure-dir DIR
"""

from __future__ import annotations

import argparse
import base64
import hmac
import http.client
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from stack._tls import SecureFiles, encoded_api_key

_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
        "transfer-encoding", "upgrade"}


def _unauthorized(path: str, missing: bool) -> bytes:
    reason = (f"missing authentication credentials for REST request [{path}]" if missing
              else f"unable to authenticate user for REST request [{path}]")
    cause = {"type": "security_exception", "reason": reason,
             "header": {"WWW-Authenticate": ['Basic realm="security", charset="UTF-8"', "ApiKey"]}}
    return json.dumps({"error": {"root_cause": [cause], **cause}, "status": 401}).encode()


def make_handler(backend: tuple[str, int], creds: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    basic = base64.b64encode(f"{creds['es_username']}:{creds['es_password']}".encode()).decode()
    api_key = encoded_api_key(creds)
    local = threading.local()
    counts = {"ok": 0, "rejected": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "inferwatch-es-authproxy"

        def log_message(self, format: str, *args: object) -> None:  # no per-request log lines
            pass

        def _authorized(self) -> bool | None:
            """True: valid; False: wrong credentials; None: none given."""
            header = self.headers.get("Authorization")
            if not header:
                return None
            scheme, _, value = header.partition(" ")
            value = value.strip()
            if scheme.lower() == "basic":
                return hmac.compare_digest(value, basic)
            if scheme.lower() == "apikey":
                return hmac.compare_digest(value, api_key)
            return False

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            ok = self._authorized()
            if not ok:
                counts["rejected"] += 1
                payload = _unauthorized(self.path, ok is None)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="security", charset="UTF-8"')
                self.send_header("WWW-Authenticate", "ApiKey")
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                return
            counts["ok"] += 1
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP and k.lower() != "authorization"}
            headers["Content-Length"] = str(len(body))
            for attempt in range(2):  # a pooled connection the node closed: reconnect once
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection(*backend, timeout=300)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    local.conn = None
                    if attempt:
                        self.send_error(502, "Elasticsearch node unreachable")
                        return
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in _HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    return Handler


def serve(port: int, backend: tuple[str, int], files: SecureFiles, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_handler(backend, files.credentials()))
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stack._authproxy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backend", required=True, help="HOST:PORT of the Elasticsearch node")
    p.add_argument("--secure-dir", required=True, type=Path)
    args = p.parse_args(argv)
    host, _, port = args.backend.rpartition(":")
    server = serve(args.port, (host, int(port)), SecureFiles(args.secure_dir))
    print(f"authproxy: https://127.0.0.1:{args.port} -> http://{args.backend}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

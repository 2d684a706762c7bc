"""Health checks with the standard library: HTTP GETs and a minimal Kafka protocol client.

The Kafka check speaks the wire protocol directly (ApiVersions v0, then a non-flexible
Metadata request) so that it needs no client package: the broker is healthy when it answers
Metadata with at least one registered broker, which is what clients need to produce.
"""

from __future__ import annotations

import base64
import socket
import ssl
import struct
import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str


def http_get(url: str, timeout: float = 3.0) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def http_ready(url: str) -> Health:
    try:
        status, _headers, body = http_get(url)
    except (OSError, urllib.error.URLError) as exc:
        return Health(False, f"GET {url}: {exc}")
    if status == 200:
        return Health(True, f"GET {url}: 200")
    return Health(False, f"GET {url}: {status} {body[:200]!r}")


def https_ready(url: str, cafile: object, basic_auth: tuple[str, str]) -> Health:
    """GET an HTTPS URL verified against ``cafile`` with HTTP Basic credentials: healthy on 200."""
    context = ssl.create_default_context(cafile=str(cafile))
    token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
    request = urllib.request.Request(url, headers={"Accept": "application/json", "Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5.0, context=context) as response:
            return Health(response.status == 200, f"GET {url}: {response.status} (TLS verified, authenticated)")
    except urllib.error.HTTPError as exc:
        return Health(False, f"GET {url}: {exc.code}")
    except (OSError, urllib.error.URLError, ssl.SSLError) as exc:
        return Health(False, f"GET {url}: {exc}")


def elasticsearch_health(base_url: str) -> Health:
    url = f"{base_url}/_cluster/health?wait_for_status=yellow&timeout=1s"
    try:
        status, headers, body = http_get(url, timeout=5.0)
    except (OSError, urllib.error.URLError) as exc:
        return Health(False, f"GET {url}: {exc}")
    product = headers.get("x-elastic-product")
    if status != 200:
        return Health(False, f"cluster health {status}: {body[:200]!r}")
    if product != "Elasticsearch":
        return Health(False, f"X-Elastic-Product header is {product!r}, clients will refuse this node")
    text = body.decode("utf-8", "replace")
    colour = "green" if '"status":"green"' in text else "yellow" if '"status":"yellow"' in text else "red"
    return Health(colour in ("green", "yellow"), f"cluster {colour}, X-Elastic-Product: {product}")


# --- Kafka ----------------------------------------------------------------------------------

_API_METADATA = 3
_API_VERSIONS = 18


def _kafka_request(
    sock: socket.socket, api_key: int, version: int, correlation_id: int, body: bytes
) -> bytes:
    client_id = b"inferwatch-stack"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", _recv_exact(sock, 4))[0]
    response = _recv_exact(sock, size)
    (got_id,) = struct.unpack_from(">i", response, 0)
    if got_id != correlation_id:
        raise ValueError(f"correlation id {got_id} != {correlation_id}")
    return response[4:]


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks.extend(chunk)
    return bytes(chunks)


def kafka_health(host: str, port: int, timeout: float = 3.0, cafile: object = None) -> Health:
    """ApiVersions, then Metadata: healthy when the broker lists at least one broker.

    With ``cafile`` (a SASL_SSL listener) the connection is TLS, verified against that CA, and
    only ApiVersions is asked: a broker answers it before authentication, Metadata only after."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            sock = raw
            if cafile is not None:
                sock = ssl.create_default_context(cafile=str(cafile)).wrap_socket(raw, server_hostname=host)
            sock.settimeout(timeout)
            body = _kafka_request(sock, _API_VERSIONS, 0, 1, b"")
            (error,) = struct.unpack_from(">h", body, 0)
            if error:
                return Health(False, f"ApiVersions error code {error}")
            (count,) = struct.unpack_from(">i", body, 2)
            versions = {}
            for i in range(count):
                key, low, high = struct.unpack_from(">hhh", body, 6 + 6 * i)
                versions[key] = (low, high)
            if cafile is not None:
                sasl = 17 in versions and 36 in versions  # SaslHandshake, SaslAuthenticate
                return Health(sasl, f"TLS verified, ApiVersions: {len(versions)} APIs"
                                    + ("" if sasl else ", but no SASL APIs"))
            if _API_METADATA not in versions:
                return Health(False, "broker does not offer Metadata")
            low, high = versions[_API_METADATA]
            version = max(low, 4)
            if version > min(high, 8):  # 9+ are flexible versions, which this client does not speak
                return Health(False, f"no non-flexible Metadata version in [{low}, {high}]")
            # topics: null array (all topics); allow_auto_topic_creation: false (v4+);
            # include_cluster/topic_authorized_operations: false (v8)
            request = struct.pack(">i", -1) + b"\x00"
            if version >= 8:
                request += b"\x00\x00"
            meta = _kafka_request(sock, _API_METADATA, version, 2, request)
            offset = 4  # throttle_time_ms (v3+)
            (brokers,) = struct.unpack_from(">i", meta, offset)
    except (OSError, ValueError, struct.error, ssl.SSLError) as exc:
        return Health(False, f"{host}:{port}: {exc}")
    if brokers < 1:
        return Health(False, "broker answers but no broker is registered yet")
    return Health(True, f"metadata v{version}: {brokers} broker(s), ApiVersions: {len(versions)} APIs")

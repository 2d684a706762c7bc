"""One HTTP exchange with a model server, as a logging proxy or an ASGI middleware saw it.

:func:`match_endpoint` recognises the serving protocol from the request path (and, for paths
no protocol owns, leaves it to the body); :func:`exchange_fields` turns the exchange into the
record fields a collector hands to the ingest path (:class:`inferwatch.ingest.Envelope`):
request and response bodies verbatim, the request id (``X-Request-Id``, else a new one), the
W3C ``traceparent``, the latency, and for a non-2xx answer the status and error text instead of
decoded outputs.

============================================================  ===========  =====================
path                                                          protocol     model, version
============================================================  ===========  =====================
``/v2/models/<m>[/versions/<v>]/infer``                       oip-v2       ``<m>``, ``<v>``
``/api/v1.0/predictions`` (Seldon v1)                         seldon-v1    default model
``/seldon/<ns>/<m>/api/v1.0/predictions``                     seldon-v1    ``<m>``
``/v1/models/<m>[/versions/<v>]:predict`` (KServe v1, TF      kserve-v1    ``<m>``, ``<v>``
Serving; ``:classify``, ``:regress``)
``/invocations`` (MLflow scoring server)                      mlflow       default model
``/v1/chat/completions``, ``/v1/completions`` (OpenAI)        openai       the body's ``model``
any other ``POST``                                            detected     default model
============================================================  ===========  =====================

>>> match_endpoint("POST", "/v2/models/iris/versions/3/infer")
Endpoint(protocol='oip-v2', model='iris', version='3')
>>> match_endpoint("POST", "/v1/models/flowers:predict")
Endpoint(protocol='kserve-v1', model='flowers', version=None)
>>> match_endpoint("GET", "/v2/models/iris") is None  # metadata, health: forwarded, not logged
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inferwatch.errors import DecodeError
from inferwatch.record import new_id

__all__ = ["OPT_OUT_HEADER", "Endpoint", "exchange_fields", "match_endpoint", "request_id"]

#: a request carrying this header (any value but ``0``/``false``) is forwarded and not logged
OPT_OUT_HEADER = "x-inferwatch-skip"

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?/infer/?$"), "oip-v2"),
    (re.compile(r"^/seldon/[^/]+/(?P<model>[^/]+)/api/v[01]\.0/predictions/?$"), "seldon-v1"),
    (re.compile(r"^/api/v[01]\.0/predictions/?$"), "seldon-v1"),
    (re.compile(r"^/v1/models/(?P<model>[^/:]+)(?:/versions/(?P<version>[^/:]+))?:(?:predict|classify|regress)$"),
     "kserve-v1"),
    (re.compile(r"^/invocations/?$"), "mlflow"),
    (re.compile(r"^(?:/v1)?/(?:chat/)?completions/?$"), "openai"),
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What the path says: the protocol (``None``: detect from the body), model and version."""

    protocol: str | None
    model: str | None = None
    version: str | None = None


def match_endpoint(method: str, path: str) -> Endpoint | None:
    """The endpoint of an inference call, or ``None`` for what is not one (a ``GET``, health,
    metadata): those are forwarded and not logged."""
    if method.upper() != "POST":
        return None
    for pattern, protocol in _RULES:
        m = pattern.match(path)
        if m is not None:
            d = m.groupdict()
            return Endpoint(protocol, d.get("model"), d.get("version"))
    if path.startswith(("/v2/", "/v1/models/")):  # other OIP / KServe routes: repository, metadata
        return None
    return Endpoint(None)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    v = headers.get(name)
    if v is None:
        v = next((val for k, val in headers.items() if k.lower() == name), None)
    return v


def request_id(headers: Mapping[str, str]) -> str:
    """The exchange's id: ``X-Request-Id`` when the caller set one, else a new UUIDv7."""
    return (_header(headers, "x-request-id") or "").strip() or new_id()


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("0", "false", "no", "")


def opted_out(headers: Mapping[str, str]) -> bool:
    return _is_true(_header(headers, OPT_OUT_HEADER))


def exchange_fields(endpoint: Endpoint, *, rid: str, status: int, request: bytes, response: bytes,
                    request_headers: Mapping[str, str], response_headers: Mapping[str, str],
                    latency_ms: float, ttft_ms: float | None = None, default_model: str | None = None,
                    path: str = "") -> dict[str, Any]:
    """Record fields (:class:`~inferwatch.record.InferenceRecord` names) for one exchange.

    A 2xx answer's bodies are decoded later by the ingest path (for OpenAI endpoints here,
    where the stream and the timing are known); a non-2xx answer keeps both bodies and records
    the status and error text in ``meta`` with empty outputs, so it is audited as the error it
    was, not a dead letter.

    >>> f = exchange_fields(Endpoint("kserve-v1", "m"), rid="r1", status=503, request=b'{"instances": [[1]]}',
    ...                     response=b"overloaded", request_headers={}, response_headers={}, latency_ms=2.0)
    >>> f["meta"]["status"], f["meta"]["error"], f["outputs"]
    ('503', 'overloaded', {})
    """
    fields: dict[str, Any] = {"id": rid, "part": "both", "latency_ms": round(latency_ms, 3), "request": request,
                              "response": response}
    meta: dict[str, str] = {"status": str(status)}
    if path:
        meta["path"] = path
    ctype = _header(response_headers, "content-type")
    if ctype:
        meta["response_content_type"] = ctype.split(";", 1)[0]
    trace = _header(request_headers, "traceparent")
    if trace:
        fields["trace"] = trace
    model = endpoint.model or default_model
    if model:
        fields["model"] = model
    if endpoint.version:
        fields["version"] = endpoint.version
    if endpoint.protocol:
        fields["protocol"] = endpoint.protocol
    ok = 200 <= status < 300
    if not ok:
        meta["error"] = response[:2000].decode("utf-8", "replace")
        fields["outputs"] = {}
    elif endpoint.protocol == "openai":
        from inferwatch.codecs.llm import exchange_fields as llm_fields

        try:
            llm = llm_fields(request, response, response_content_type=ctype, latency_ms=latency_ms, ttft_ms=ttft_ms)
        except DecodeError:
            pass  # the ingest path decodes it again and keeps it as a dead letter with the reason
        else:
            meta.update(llm.pop("meta", {}))
            if not endpoint.model and llm.get("model"):
                fields["model"] = llm["model"]
            llm.pop("model", None)
            llm.pop("latency_ms", None)
            fields.update(llm)
    if ttft_ms is not None and "ttft_ms" not in meta:
        meta["ttft_ms"] = str(round(ttft_ms, 3))
    fields["meta"] = meta
    return fields

"""Protocol auto-detection by structure, and protocol-name aliases."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from inferwatch.codecs import _json, _kserve, _mlflow, _oip, _seldon
from inferwatch.codecs._common import PARTS, describe, fail, parse

CODECS: dict[str, ModuleType] = {
    "oip-v2": _oip,
    "seldon-v1": _seldon,
    "kserve-v1": _kserve,
    "mlflow": _mlflow,
    "json": _json,
}
# Most specific first; ``json`` (any object) is the fallback. ``instances``/``inputs`` and
# ``predictions`` bodies are kserve-v1 unless MLflow-only keys (dataframe_*, params) appear.
ORDER = ("oip-v2", "seldon-v1", "mlflow", "kserve-v1", "json")
ALIASES = {
    "oip": "oip-v2", "v2": "oip-v2", "kserve-v2": "oip-v2", "open-inference": "oip-v2",
    "mlserver": "oip-v2", "triton": "oip-v2",
    "seldon": "seldon-v1", "seldon-core": "seldon-v1",
    "kserve": "kserve-v1", "v1": "kserve-v1", "tfserving": "kserve-v1", "tf-serving": "kserve-v1",
    "records": "json",
}
_ERROR_KEYS = frozenset(
    {"error", "error_code", "code", "message", "status", "details", "id", "model_name", "model_version", "stack_trace"}
)


def check_part(part: Any) -> str:
    if part not in PARTS:
        raise fail(None, f"part is {part!r}", "'request' or 'response'")
    return str(part)


def canonical(protocol: Any) -> str:
    """The canonical protocol name for ``protocol`` or one of its aliases."""
    name = str(protocol).strip().lower()
    name = ALIASES.get(name, name)
    if name not in CODECS:
        raise fail(None, f"unknown protocol {protocol!r}", f"one of {', '.join(CODECS)}")
    return name


def error_message(obj: Any) -> str | None:
    """The text of an error response, or ``None`` when ``obj`` is not one.

    ``{"error": "..."}`` (OIP, KServe, TF Serving), ``{"error_code", "message"}`` (MLflow),
    ``{"status": {"status": "FAILURE", ...}}`` (Seldon).
    """
    if not isinstance(obj, dict):
        return None
    if set(obj) <= _ERROR_KEYS:
        if isinstance(obj.get("error"), (str, dict)):
            return str(obj["error"])[:500]
        if isinstance(obj.get("error_code"), str) and "message" in obj:
            return f"{obj['error_code']}: {str(obj['message'])[:500]}"
    if _seldon.is_error(obj):
        status = obj["status"]
        return f"{status.get('code')} {str(status.get('info') or status.get('reason'))[:500]}"
    return None


def expected(part: str) -> str:
    return "one of: " + "; ".join(f"{p} {CODECS[p].EXPECTED[part]}" for p in ORDER)


def detect_protocol(obj: Any, part: str) -> str:
    """The protocol of a payload (parsed, or raw JSON bytes/str), judged by its structure.

    ``part`` matters: an OIP response has ``outputs`` and ``model_name``, a KServe v1
    response ``predictions``. Raises :class:`~inferwatch.errors.DecodeError` for error
    responses and when nothing matches, listing what each protocol expects.

    >>> detect_protocol({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}, "request")
    'oip-v2'
    >>> detect_protocol({"data": {"ndarray": [[1, 2]]}}, "request")
    'seldon-v1'
    >>> detect_protocol({"instances": [[1, 2]]}, "request"), detect_protocol({"predictions": [1]}, "response")
    ('kserve-v1', 'kserve-v1')
    >>> detect_protocol({"dataframe_split": {"columns": ["a"], "data": [[1]]}}, "request")
    'mlflow'
    >>> detect_protocol([{"a": 1}], "response")
    'json'
    >>> detect_protocol(42, "request")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    inferwatch.errors.DecodeError: no protocol matches this request (a number) (expected one of: oip-v2 ...)
    """
    check_part(part)
    if isinstance(obj, (bytes, bytearray, memoryview, str)):
        obj = parse(obj)
    return detect(obj, part)


def detect(obj: Any, part: str) -> str:
    """:func:`detect_protocol` for parsed JSON values (a ``str`` here is a JSON string)."""
    err = error_message(obj)
    if err is not None:
        raise fail(None, f"error response: {err}")
    for name in ORDER:
        if CODECS[name].matches(obj, part):
            return name
    raise fail(None, f"no protocol matches this {part} ({describe(obj)})", expected(part))

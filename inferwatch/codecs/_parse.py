"""Bodies to plain JSON values (bytes, text, NDJSON, or Python objects), and back to bytes."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from inferwatch.codecs._values import bytes_to_value
from inferwatch.codecs.base import fail
from inferwatch.codecs.limits import BudgetExceeded
from inferwatch.errors import DecodeError

_BINARY_TYPES = ("application/x-protobuf", "application/protobuf", "application/grpc", "application/vnd.google.protobuf")
_NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/jsonlines", "application/x-jsonlines")


# Python's json (and so tritonclient's and seldon-core's wrapper's bodies) writes a float NaN or
# infinity as a bare NaN / Infinity / -Infinity, which is not JSON and which orjson refuses.
# NaN is a missing value (None), as "NaN" text and NaN bytes decode to; infinities stay floats.
_CONSTANTS: dict[str, Any] = {"NaN": None, "Infinity": math.inf, "-Infinity": -math.inf}


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: orjson refuses it, so does this
        raise ValueError(f"number {text[:40]} is infinity when parsed as double")
    return value


def _int(text: str) -> int | float:
    value = int(text)
    return value if -(2**63) <= value <= 2**64 - 1 else float(value)  # as orjson reads it


def _json_loads(raw: bytes | str) -> Any:
    """``orjson.loads``, also reading the NaN / Infinity literals of Python's json (see
    :data:`_CONSTANTS`); raises ``orjson.JSONDecodeError`` (the original one) otherwise."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        words = (b"NaN", b"Infinity") if isinstance(raw, bytes) else ("NaN", "Infinity")
        if not any(w in raw for w in words):  # type: ignore[operator]
            raise
        try:
            value = json.loads(raw, parse_constant=_CONSTANTS.__getitem__, parse_float=_float, parse_int=_int)
            orjson.dumps(value)  # what orjson would not have read: lone surrogates
        except RecursionError:
            raise BudgetExceeded("max_depth", "invalid JSON: nested deeper than JSON parsing allows",
                                 status=400) from None
        except (ValueError, TypeError, orjson.JSONEncodeError):
            raise exc from None
        return value


def json_default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes_to_value(bytes(obj))
    if hasattr(obj, "tolist"):  # numpy scalars/arrays not covered by OPT_SERIALIZE_NUMPY
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def parse(body: Any, content_type: str | None = None) -> Any:
    """Body (bytes, str, or already-parsed Python objects) -> plain JSON values.

    Python objects are normalised through orjson too, so tuples, numpy values, bytes and
    datetimes become JSON values and absurd nesting is refused.
    """
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        raw: bytes | str = bytes(body) if not isinstance(body, (bytes, str)) else body
        media, charset = _media(content_type)
        if media in _BINARY_TYPES:
            raise fail(None, f"binary body of content type {media!r} is not supported", "a JSON body")
        if charset and charset not in ("utf-8", "utf8") and isinstance(raw, bytes):
            try:
                raw = raw.decode(charset)
            except (LookupError, ValueError) as exc:  # unknown codec, bad bytes
                raise fail(None, f"cannot decode body as {charset}: {exc}") from exc
        if isinstance(raw, bytes) and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        elif isinstance(raw, str) and raw.startswith("\ufeff"):
            raw = raw[1:]
        if not raw.strip():
            raise fail(None, "empty body", "a JSON body")
        if media in _NDJSON_TYPES:
            try:
                return [_json_loads(line) for line in raw.splitlines() if line.strip()]
            except orjson.JSONDecodeError as exc:
                raise _invalid("invalid JSON line", exc) from exc
        try:
            return _json_loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _invalid("invalid JSON", exc) from exc
    try:
        dumped = orjson.dumps(
            body, default=json_default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        )
    except (orjson.JSONEncodeError, TypeError, ValueError, RecursionError) as exc:
        raise fail(None, f"not JSON-serialisable: {exc}") from exc
    return orjson.loads(dumped)


def loads(raw: bytes | str, what: str = "invalid JSON") -> Any:
    """``orjson.loads`` (also reading Python's NaN / Infinity literals) whose errors are
    :class:`DecodeError` s (nesting beyond what the parser takes is :class:`BudgetExceeded`
    ``max_depth``)."""
    try:
        return _json_loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _invalid(what, exc) from exc


def _invalid(what: str, exc: orjson.JSONDecodeError) -> DecodeError:
    if "depth limit" in str(exc):  # orjson parses at most 1024 levels
        return BudgetExceeded("max_depth", f"{what}: nested deeper than JSON parsing allows ({exc})", status=400)
    return fail(None, f"{what}: {exc}")


def _media(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    parts = [p.strip() for p in str(content_type).split(";")]
    charset = None
    for p in parts[1:]:
        if p.lower().startswith("charset="):
            charset = p.split("=", 1)[1].strip().strip('"').lower() or None
    return parts[0].lower(), charset


def dumps(obj: Any) -> bytes:
    """Serialise an encoded payload."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)

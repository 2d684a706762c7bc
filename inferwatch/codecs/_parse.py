"""Bodies to plain JSON values (bytes, text, NDJSON, or Python objects), and back to bytes."""

from __future__ import annotations

from typing import Any

import orjson

from inferwatch.codecs._values import bytes_to_value
from inferwatch.codecs.base import fail
from inferwatch.codecs.limits import BudgetExceeded
from inferwatch.errors import DecodeError

_BINARY_TYPES = ("application/x-protobuf", "application/protobuf", "application/grpc", "application/vnd.google.protobuf")
_NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/jsonlines", "application/x-jsonlines")


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
                return [orjson.loads(line) for line in raw.splitlines() if line.strip()]
            except orjson.JSONDecodeError as exc:
                raise _invalid("invalid JSON line", exc) from exc
        try:
            return orjson.loads(raw)
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
    """``orjson.loads`` whose errors are :class:`DecodeError` s (nesting beyond what the parser
    takes is :class:`BudgetExceeded` ``max_depth``)."""
    try:
        return orjson.loads(raw)
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

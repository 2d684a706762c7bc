"""Scalar values: binary strings (base64, raw bytes), ISO datetimes, scalar-only checks."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any

from inferwatch.codecs.base import describe, fail

SCALARS = (str, int, float, bool, type(None))


def bytes_to_value(raw: bytes) -> str:
    """Bytes as a JSON-friendly string: the text when UTF-8, else base64."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")


_URLSAFE_B64 = re.compile(r"[A-Za-z0-9_\-]*={0,2}")


def b64_bytes(text: Any, protocol: str, what: str = "base64 value") -> bytes:
    """A base64 string (standard, or URL-safe without padding as some clients send it) -> bytes."""
    if not isinstance(text, str):
        raise fail(protocol, f"{what} is {describe(text)}", "a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        if not _URLSAFE_B64.fullmatch(text) or len(text.rstrip("=")) % 4 == 1:
            raise fail(protocol, f"{what} is not valid base64") from None
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))


def b64_values(values: list[Any], protocol: str, what: str = "base64 value") -> tuple[list[Any], str]:
    """One column of base64 strings (``None`` allowed) -> ``(values, encoding)``.

    The whole column is decided at once, so a reader can always tell: ``"utf-8"`` when every
    value decodes to UTF-8 (the values are that text), otherwise ``"base64"`` (every value is
    standard, padded base64 of the bytes).

    >>> b64_values(["aGk=", None], "oip-v2")
    (['hi', None], 'utf-8')
    >>> b64_values(["aGk=", "_wA"], "oip-v2")  # URL-safe in, standard base64 out
    (['aGk=', '/wA='], 'base64')
    """
    raws = [None if v is None else b64_bytes(v, protocol, what) for v in values]
    try:
        return [None if r is None else r.decode("utf-8") for r in raws], "utf-8"
    except UnicodeDecodeError:
        return [None if r is None else base64.b64encode(r).decode("ascii") for r in raws], "base64"


def check_datetime(text: Any, protocol: str) -> Any:
    """Validate an ISO-8601 value (MLServer ``datetime`` content type); keep it as given."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise fail(protocol, f"datetime value is {describe(text)}", "an ISO-8601 string")
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise fail(protocol, f"{text[:40]!r} is not an ISO-8601 datetime") from exc
    return text


def scalar_leaves(flat: list[Any], protocol: str, what: str) -> None:
    """Refuse objects (or lists) among what should be scalar tensor elements."""
    types = set(map(type, flat))
    if not types.issubset(SCALARS):
        bad = next(v for v in flat if not isinstance(v, SCALARS))
        raise fail(protocol, f"{what} holds {describe(bad)} where a scalar was expected")

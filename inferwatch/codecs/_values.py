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


def b64_to_value(text: Any, protocol: str, what: str = "base64 value") -> str | None:
    """A base64 string -> decoded text (UTF-8) or the base64 string itself."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise fail(protocol, f"{what} is {describe(text)}", "a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        # URL-safe alphabet and missing padding, as some clients send it; nothing else.
        if not _URLSAFE_B64.fullmatch(text) or len(text.rstrip("=")) % 4 == 1:
            raise fail(protocol, f"{what} is not valid base64") from None
        raw = base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return text


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

"""The one exception tree of inferwatch.

::

    InferwatchError
    ├── ConfigError            invalid configuration file or environment override
    ├── DecodeError            a payload that no codec (or the chosen one) can read
    ├── MissingExtraError      an optional dependency is not installed
    ├── LogError               the log (SQLite or Kafka) failed
    ├── AuditStoreError        the audit store (SQLite or Elasticsearch) failed
    │   ├── BackpressureError  the store asks us to slow down (HTTP 429, outage)
    │   └── RequestRefused     a whole request refused for what it carries (HTTP 400, 413)
    └── DetectorError          a detector was misused (update before fit, bad shapes)

Client errors from kafka-python and elasticsearch are wrapped at the boundary with
``raise ... from exc`` so callers only ever catch these.
"""

from __future__ import annotations

__all__ = [
    "AuditStoreError",
    "BackpressureError",
    "ConfigError",
    "DecodeError",
    "DetectorError",
    "InferwatchError",
    "LogError",
    "MissingExtraError",
    "RequestRefused",
    "require",
]


class InferwatchError(Exception):
    """Base class of every error raised by inferwatch."""


class ConfigError(InferwatchError):
    """The configuration file or an ``INFERWATCH_*`` override is invalid."""


class DecodeError(InferwatchError, ValueError):
    """A payload could not be decoded.

    ``protocol`` names the codec that failed (or ``None`` for auto-detection) and
    ``expected`` says what shape that codec looks for.
    """

    def __init__(self, reason: str, *, protocol: str | None = None, expected: str | None = None):
        self.reason = reason
        self.protocol = protocol
        self.expected = expected
        msg = reason
        if protocol:
            msg = f"{protocol}: {msg}"
        if expected:
            msg = f"{msg} (expected {expected})"
        super().__init__(msg)


class MissingExtraError(InferwatchError, ImportError):
    """An optional dependency is missing; the message names the pip command to run."""

    def __init__(self, module: str, extra: str):
        self.module = module
        self.extra = extra
        super().__init__(
            f"{module} is not installed; run: pip install 'inferwatch[{extra}]'"
        )


class LogError(InferwatchError):
    """The record log (SQLite or Kafka) failed."""


class AuditStoreError(InferwatchError):
    """The audit store (SQLite or Elasticsearch) failed."""


class BackpressureError(AuditStoreError):
    """The audit store is overloaded or unavailable; retry later, keep the data."""


class RequestRefused(AuditStoreError):
    """A service refused a whole write request for what it carries (``status`` 400, or 413 over its
    request size): the batching engine splits the request to find the one document refused."""

    def __init__(self, status: int, reason: str):
        self.status = status
        self.reason = reason
        super().__init__(f"{status} {reason}")


class DetectorError(InferwatchError):
    """A detector was used wrongly (update before fit, mismatched features...)."""


def require(module: str, extra: str):  # type: ignore[no-untyped-def]
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra) from exc

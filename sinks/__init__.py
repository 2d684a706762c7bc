"""Where results go: audit stores, Prometheus metrics, Alertmanager, reports."""

from sinks.sqlite_audit import SQLiteAuditStore

__all__ = ["SQLiteAuditStore"]

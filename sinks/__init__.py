"""Where results go: audit stores (SQLite, Elasticsearch), Prometheus metrics, Alertmanager.

Each is a class satisfying a core protocol (:class:`inferwatch.audit.AuditStore`,
:class:`inferwatch.sink.DetectionSink`), built from the configuration by :mod:`inferwatch.wiring`.
The Elasticsearch store is imported lazily (``sinks.elasticsearch``) so the embedded default
never needs a cluster client at import time.
"""

from sinks.alertmanager import AlertSink, detection_alert
from sinks.prometheus import PrometheusSink
from sinks.sqlite_audit import SQLiteAuditStore

__all__ = ["AlertSink", "PrometheusSink", "SQLiteAuditStore", "detection_alert"]

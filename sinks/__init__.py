"""Where results go: audit stores (SQLite, Elasticsearch), Prometheus metrics, Alertmanager.

The Elasticsearch store is imported lazily (``sinks.elasticsearch``) so the embedded default
never needs a cluster client at import time.
"""

from sinks.alertmanager import AlertSink, detection_alert
from sinks.prometheus import Metrics
from sinks.sqlite_audit import SQLiteAuditStore

__all__ = ["AlertSink", "Metrics", "SQLiteAuditStore", "detection_alert"]

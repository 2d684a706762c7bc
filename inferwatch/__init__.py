"""inferwatch core: the record schema, payload codecs, configuration, the log and audit-store
interfaces, the pipeline runner and the CLI.

>>> from inferwatch import InferenceRecord, decode
>>> d = decode(b'{"instances": [{"age": 30}]}', part="request")
>>> InferenceRecord(id="r1", model="m", inputs=d.table, protocol=d.protocol).doc_ids()
['r1-0']
"""

from inferwatch.audit import AuditStore, SearchQuery, record_documents, reference_from_audit
from inferwatch.codecs import PROTOCOLS, Decoded, decode, detect_protocol, encode
from inferwatch.config import Config, load_config
from inferwatch.errors import (
    AuditStoreError,
    BackpressureError,
    ConfigError,
    DecodeError,
    DetectorError,
    InferwatchError,
    LogError,
    MissingExtraError,
)
from inferwatch.ingest import Collector, Envelope
from inferwatch.log import Consumer, Log, LogEntry
from inferwatch.metrics import Metrics
from inferwatch.record import DeadLetter, Detection, InferenceRecord, new_id
from inferwatch.sink import DetectionSink
from inferwatch.sqlite_log import SQLiteLog
from inferwatch.table import Table

__version__ = "0.1.0"

__all__ = [
    "PROTOCOLS",
    "AuditStore",
    "AuditStoreError",
    "BackpressureError",
    "Collector",
    "Config",
    "ConfigError",
    "Consumer",
    "DeadLetter",
    "DecodeError",
    "Decoded",
    "Detection",
    "DetectionSink",
    "DetectorError",
    "Envelope",
    "InferenceRecord",
    "InferwatchError",
    "Log",
    "LogEntry",
    "LogError",
    "Metrics",
    "MissingExtraError",
    "SQLiteLog",
    "SearchQuery",
    "Table",
    "decode",
    "detect_protocol",
    "encode",
    "load_config",
    "new_id",
    "record_documents",
    "reference_from_audit",
]

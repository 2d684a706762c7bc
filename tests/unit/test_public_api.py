"""The public surface of each package is pinned: changing it is a deliberate act."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "inferwatch": {
        "PROTOCOLS", "AuditStore", "AuditStoreError", "BackpressureError", "Collector", "Config", "ConfigError",
        "Consumer", "DeadLetter", "DecodeError", "Decoded", "Detection", "DetectionSink", "DetectorError",
        "Envelope", "InferenceRecord", "InferwatchError", "Log", "LogEntry", "LogError", "Metrics", "MissingExtraError", "SQLiteLog", "SearchQuery", "Table", "decode",
        "detect_protocol", "encode", "load_config", "new_id", "record_documents", "reference_from_audit",
    },
    "collectors": {"HTTPCollector", "create_app", "envelope_from_cloudevent", "envelope_from_json"},
    "detectors.performance": {"CBPE", "DLE", "PerformanceTracker", "RealizedPerformance", "VariantComparison"},
    "sinks": {"AlertSink", "PrometheusSink", "SQLiteAuditStore", "detection_alert"},
    "inferwatch.codecs": {"PROTOCOLS", "REGISTRY", "Budget", "BudgetExceeded", "Codec", "Decoded", "decode",
                          "detect_protocol", "encode"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_all_is_pinned_and_importable(name):
    mod = importlib.import_module(name)
    assert set(mod.__all__) == EXPECTED[name]
    for attr in mod.__all__:
        assert hasattr(mod, attr), f"{name}.{attr} is in __all__ but missing"


def test_missing_extra_names_the_pip_command():
    from inferwatch.errors import MissingExtraError, require

    with pytest.raises(MissingExtraError, match=r"pip install 'inferwatch\[alibi\]'"):
        require("surely_not_installed_module_xyz", "alibi")

"""The public surface of each package is pinned: changing it is a deliberate act."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "inferwatch": {
        "PROTOCOLS", "AuditStore", "AuditStoreError", "BackpressureError", "Config", "ConfigError", "Consumer",
        "DeadLetter", "DecodeError", "Decoded", "Detection", "DetectorError", "InferenceRecord", "InferwatchError",
        "Log", "LogEntry", "LogError", "MissingExtraError", "SQLiteLog", "SearchQuery", "Table", "decode",
        "detect_protocol", "encode", "load_config", "new_id", "record_documents", "reference_from_audit",
    },
    "collectors": {"BatchAppender", "Envelope", "Ingestor", "create_app", "envelope_from_cloudevent",
                   "envelope_to_record"},
    "detectors.performance": {"CBPE", "DLE", "PerformanceTracker", "RealizedPerformance", "VariantComparison"},
    "sinks": {"AlertSink", "Metrics", "SQLiteAuditStore", "detection_alert"},
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

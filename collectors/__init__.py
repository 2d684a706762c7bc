"""How payloads get in. Each way in is one module with a class satisfying
:class:`inferwatch.ingest.Collector`; all of them hand envelopes to the one ingest path."""

from collectors.http import HTTPCollector, create_app, envelope_from_cloudevent, envelope_from_json

__all__ = ["HTTPCollector", "create_app", "envelope_from_cloudevent", "envelope_from_json"]

"""How payloads get in: the HTTP CloudEvents/JSON receiver and the ingest path they share."""

from collectors.http import create_app, envelope_from_cloudevent
from collectors.ingest import BatchAppender, Envelope, Ingestor, envelope_to_record

__all__ = ["BatchAppender", "Envelope", "Ingestor", "create_app", "envelope_from_cloudevent", "envelope_to_record"]

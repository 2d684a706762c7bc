"""Each record document goes to its model's index of the UTC day of its timestamp, whatever the
mix of models, days and time zones in one batch (the store remembers each (model, day) index
within a batch)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from inferwatch.config import ElasticsearchConfig
from inferwatch.record import InferenceRecord
from sinks.elasticsearch import ElasticsearchAuditStore


class _NoIndices:
    def exists(self, **_: object) -> bool:
        return False


class _NoClient:
    indices = _NoIndices()


def test_every_document_goes_to_the_index_of_its_model_and_utc_day() -> None:
    store = ElasticsearchAuditStore(ElasticsearchConfig(index_prefix="ix"), client=_NoClient(), setup=False)
    east = timezone(timedelta(hours=5))
    stamps = [datetime(2026, 3, 1, 23, 59, tzinfo=UTC), datetime(2026, 3, 2, 0, 1, tzinfo=UTC),
              datetime(2026, 3, 2, 2, 0, tzinfo=east),  # 1 March in UTC
              datetime(2026, 3, 2, 6, 0, tzinfo=east), datetime(2026, 3, 1, 12, 0, tzinfo=UTC)]
    records = [InferenceRecord(id=f"r{i}", model=model, timestamp=ts, inputs={"x": [i]})
               for i, (model, ts) in enumerate((m, ts) for m in ("Fraud Model", "churn") for ts in stamps)]
    got = {a.id: a.target for a in store._record_actions(records)}
    want = {f"{r.id}-0": f"ix-records-{r.model.lower().replace(' ', '_')}-"
                         f"{r.timestamp.astimezone(UTC).strftime('%Y.%m.%d')}" for r in records}
    assert got == want
    assert len(set(got.values())) == 4  # two models, two UTC days

"""The CLI as a user drives it: search (table and JSON lines), references, config, help."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from click.testing import CliRunner

from inferwatch.cli import main
from inferwatch.record import DeadLetter, Detection, InferenceRecord
from inferwatch.references import ReferenceStore
from sinks.sqlite_audit import SQLiteAuditStore


@pytest.fixture
def data_dir(tmp_path):
    store = SQLiteAuditStore(tmp_path / "audit.db")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    store.write_records([
        InferenceRecord(id=f"r{i}", model="iris" if i < 6 else "wine", version="v1",
                        timestamp=t0 + timedelta(hours=i), inputs={"petal": [float(i)], "colour": [f"c{i}"]},
                        outputs={"cls": ["setosa" if i % 2 else "virginica"]})
        for i in range(8)])
    store.write_detections([Detection(detector="ks", kind="drift", model="iris", version="v1", window_size=100,
                                      is_drift=True, p_value=1e-5, window_start=t0, window_end=t0,
                                      feature_drift={"petal": True})])
    store.write_deadletters([DeadLetter(raw=b"\xff", source="cloudevents", reason="invalid JSON")])
    store.close()
    return tmp_path


def _run(args, data_dir):
    result = CliRunner().invoke(main, args, env={"INFERWATCH_DATA_DIR": str(data_dir)}, catch_exceptions=False)
    return result


def test_help_reads_well():
    out = CliRunner().invoke(main, ["--help"]).output
    for cmd in ("run", "demo", "search", "replay", "reference", "config"):
        assert cmd in out
    assert "--role" in CliRunner().invoke(main, ["run", "--help"]).output


def test_search_json_lines_with_filters(data_dir):
    r = _run(["search", "--model", "iris", "--since", "2026-01-01T02:00:00Z", "--until", "2026-01-01T04:00:00Z",
              "--format", "json"], data_dir)
    assert r.exit_code == 0, r.output
    docs = [orjson.loads(line) for line in r.output.splitlines()]
    assert sorted(d["doc_id"] for d in docs) == ["r2-0", "r3-0", "r4-0"]
    r = _run(["search", "-q", "virginica", "--model", "wine", "--format", "json"], data_dir)
    assert [orjson.loads(line)["doc_id"] for line in r.output.splitlines()] == ["r6-0"]


def test_search_tables_for_each_kind(data_dir):
    r = _run(["search", "--model", "wine"], data_dir)
    assert r.exit_code == 0 and "2 of 2 records" in r.output and "r7-0" in r.output
    r = _run(["search", "--kind", "detections", "--fired"], data_dir)
    assert "YES" in r.output and "petal" in r.output
    r = _run(["search", "--kind", "deadletters"], data_dir)
    assert "invalid JSON" in r.output


def test_search_bad_time_is_a_usage_error(data_dir):
    r = CliRunner().invoke(main, ["search", "--since", "yesterday"], env={"INFERWATCH_DATA_DIR": str(data_dir)})
    assert r.exit_code == 2 and "ISO-8601" in r.output


def test_reference_from_file_and_from_the_audit_trail(data_dir, tmp_path):
    csv = tmp_path / "ref.csv"
    csv.write_text("petal,colour\n1.0,a\n2.0,b\n")
    r = _run(["reference", "add", "iris", str(csv)], data_dir)
    assert r.exit_code == 0 and "2 rows" in r.output
    r = _run(["reference", "add", "iris", "--from-audit", "--since", "2026-01-01T01:00:00Z",
              "--until", "2026-01-01T03:00:00Z"], data_dir)
    assert r.exit_code == 0, r.output
    assert "3 rows" in r.output
    refs = ReferenceStore(data_dir / "references")
    latest = refs.latest("iris")
    assert latest is not None and latest.source.startswith("audit sqlite")
    assert sorted(refs.load(latest.id)["petal"]) == [1.0, 2.0, 3.0]
    r = _run(["reference", "list"], data_dir)
    assert [line.split("\t")[1] for line in r.output.splitlines()] == ["iris", "iris"]
    r = CliRunner().invoke(main, ["reference", "add", "nobody", "--from-audit"],
                           env={"INFERWATCH_DATA_DIR": str(data_dir)})
    assert r.exit_code == 1 and "no audited input rows" in r.output


def test_config_shows_env_overrides():
    r = CliRunner().invoke(main, ["config"], env={"INFERWATCH_KAFKA_PARTITIONS": "7"})
    assert r.exit_code == 0 and "partitions: 7" in r.output
    r = CliRunner().invoke(main, ["config"], env={"INFERWATCH_KAFKA_PARTITIONS": "x"})
    assert r.exit_code == 1 and "INFERWATCH_KAFKA_PARTITIONS" in r.output

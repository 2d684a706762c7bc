"""``inferwatch backfill`` (and ``replay FILE``) on the real stack: JSONL, CSV and Parquet, gzipped,
several protocols, into Kafka and by the audit worker into Elasticsearch; twice, duplicating nothing."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from inferwatch.cli import main
from tests.integration.scaled import scaled_path
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

CHAT_REQ = {"model": "llm", "messages": [{"role": "user", "content": "backfilled narwhal question"}]}
CHAT_RESP = {"id": "c1", "object": "chat.completion", "model": "llm", "usage": {"prompt_tokens": 3,
             "completion_tokens": 2, "total_tokens": 5},
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "narwhal answer"},
                          "finish_reason": "stop"}]}


def _files(tmp: Path) -> list[Path]:
    rows = [
        {"id": "k-1", "model": "iris", "timestamp": "2026-03-01T10:00:00Z",
         "request": {"instances": [[5.1, 3.5], [6.2, 2.9]]}, "response": {"predictions": [0, 1]}},
        {"id": "o-1", "model": "iris", "timestamp": "2026-03-01T10:00:01Z",
         "request": {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1.5, 2.5]}]},
         "response": {"model_name": "iris", "outputs": [{"name": "y", "shape": [1], "datatype": "INT64",
                                                         "data": [2]}]}},
        {"model": "seldon-m", "request": {"data": {"names": ["a", "b"], "ndarray": [[1, 2]]}},
         "response": {"data": {"names": ["p"], "ndarray": [[0.75]]}}},  # no id: derived
        {"id": "llm-1", "request": orjson.dumps(CHAT_REQ).decode(), "response": orjson.dumps(CHAT_RESP).decode()},
    ]
    jsonl = tmp / "exchanges.jsonl.gz"
    with gzip.open(jsonl, "wb") as f:
        for r in rows:
            f.write(orjson.dumps(r) + b"\n")
        f.write(b"{not json\n")  # a dead letter, not a crash
    csv = tmp / "features.csv"
    csv.write_text("timestamp,age,income,label\n2026-03-01T10:00:00Z,31,52000.5,1\n2026-03-01T10:00:02Z,45,,0\n")
    parquet = tmp / "mlflow.parquet"
    table = pa.table({"id": ["mf-1", "mf-2"], "model": ["wine", "wine"],
                      "request": [orjson.dumps({"dataframe_split": {"columns": ["alcohol"], "data": [[12.5]]}}).decode(),
                                  orjson.dumps({"dataframe_split": {"columns": ["alcohol"], "data": [[13.1]]}}).decode()],
                      "response": ['{"predictions": [5]}', '{"predictions": [6]}'], "latency_ms": [3.5, 4.0]})
    pq.write_table(table, parquet)
    return [jsonl, csv, parquet]


def test_backfill_twice_duplicates_nothing(stack_env, tmp_path):
    files = _files(tmp_path)
    with scaled_path(stack_env, "backfill") as s:
        cfg_file = tmp_path / "inferwatch.yaml"
        cfg_file.write_text(yaml.safe_dump(s.cfg.model_dump(mode="json")))
        runner = CliRunner()
        args = ["backfill", "-c", str(cfg_file), *map(str, files), "--model", "fallback", "--output-column", "label"]
        first = runner.invoke(main, args, catch_exceptions=False)
        assert first.exit_code == 0, first.output
        assert "9 rows from 3 file(s): 8 records, 1 dead letters" in first.output
        s.start_audit()
        # k-1: 2 rows, o-1: 1, seldon: 1, llm: 1, csv: 2 records of 1 row, parquet: 2
        wait_until(lambda: s.count() >= 9, 120, "the backfilled documents")
        assert s.count() == 9
        again = runner.invoke(main, ["replay", *args[1:]], catch_exceptions=False)  # the alias
        assert again.exit_code == 0, again.output
        group = s.cfg.audit.group
        wait_until(lambda: s.log.size(s.cfg.log.records_topic) == 16 and
                   s.log.group_lag(s.cfg.log.records_topic, group) == 0, 120, "the second pass audited")
        assert s.count() == 9  # the same file twice duplicates nothing
        k = s.store.get("k-1-1")
        assert k["input"] == {"f0": 6.2, "f1": 2.9} and k["output"] == {"f0": 1} and k["timestamp"].startswith("2026-03-01")
        assert s.store.get("o-1-0")["output"] == {"y": 2}
        seldon = s.docs(model="seldon-m")
        assert len(seldon) == 1 and seldon[0]["record_id"].startswith("bf-") and seldon[0]["output"] == {"p": 0.75}
        llm = s.store.get("llm-1-0")
        assert llm["model"] == "llm" and llm["output"]["completion"] == "narwhal answer"
        assert [d["record_id"] for d in s.docs(text="narwhal")] == ["llm-1"]
        rows = sorted(s.docs(model="fallback"), key=lambda d: d["timestamp"])
        assert [(d["input"], d["output"]) for d in rows] == [({"age": 31, "income": 52000.5}, {"label": 1}),
                                                              ({"age": 45, "income": None}, {"label": 0})]
        wine = sorted(s.docs(model="wine"), key=lambda d: d["record_id"])
        assert [(d["input"]["alcohol"], d["output"]["f0"], d["latency_ms"]) for d in wine] == [
            (12.5, 5, 3.5), (13.1, 6, 4.0)]
        letters = s.letters_on_log()
        assert len(letters) == 2 and all("not JSON" in dl.reason for dl in letters)  # once per pass

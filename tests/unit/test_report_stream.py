"""``inferwatch report`` over table files read in record batches (inferwatch.report.run_report_table):
the same detections as the in-memory path (run_report over load_input's records) of the same file,
windows crossing batch boundaries included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from inferwatch import batch
from inferwatch.batch import load_input, open_table
from inferwatch.references import ReferenceStore
from inferwatch.report import run_report, run_report_table
from sinks.report import report_dict


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "age": rng.normal(40 + shift, 10, n),
        "income": rng.lognormal(10, 0.5, n),
        "count": rng.integers(0, 20, n),
        "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2] if not shift else [0.3, 0.3, 0.4]),
    })


def _comparable(report) -> list[dict]:
    doc = report_dict(report)
    return [{k: w[k] for k in ("window", "rows", "size", "detector", "fired", "p_value", "distance",
                               "drifted_features", "reason", "untested", "missing_values", "bad_values")}
            for w in doc["windows"]]


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
@pytest.mark.parametrize("window", [None, 700])
def test_batched_file_gives_the_same_windows_as_the_records_path(tmp_path, monkeypatch, suffix, window):
    rng = np.random.default_rng(7)
    refs = ReferenceStore(tmp_path / "refs")
    _frame(rng, 2000).to_parquet(tmp_path / "ref.parquet")
    refs.register("cur", tmp_path / "ref.parquet")
    cur = pd.concat([_frame(rng, 1500), _frame(rng, 1500, shift=3.0)], ignore_index=True)
    cur.loc[5, "age"] = np.nan
    path = tmp_path / f"cur.{suffix}"
    cur.to_parquet(path) if suffix == "parquet" else cur.to_csv(path, index=False)
    monkeypatch.setattr(batch, "BATCH_ROWS", 256)  # many batches; 700-row windows straddle them
    table = open_table(path)
    assert table is not None and table.columns == list(cur.columns)
    assert len(list(table.batches())) == -(-len(cur) // 256)
    streamed = run_report_table(table, "cur", refs, window=window)
    model, records, _ = load_input(path)
    in_memory = run_report(records, model, refs, window=window)
    assert streamed.rows == in_memory.rows == len(cur)
    assert _comparable(streamed) == _comparable(in_memory)
    assert len(_comparable(streamed)) == (1 if window is None else -(-len(cur) // window))
    assert streamed.drift and "age" in report_dict(streamed)["summary"]["drifted_features"]
    # the plots read a column alone from the file: the same values as the in-memory rows
    pd.testing.assert_series_equal(streamed.current[(None, "inputs")]["age"].reset_index(drop=True),
                                   in_memory.current[(None, "inputs")]["age"], check_names=False)

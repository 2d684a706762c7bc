"""``inferwatch report`` over table files read in record batches (inferwatch.report.run_report_table):
the same detections as the in-memory path (run_report over load_input's records) of the same file,
windows crossing batch boundaries included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from inferwatch import batch
from inferwatch.batch import load_input, open_table
from inferwatch.errors import InferwatchError
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


def _p_values(report) -> dict[str, list[float | None]]:
    return {f["feature"]: f["p_values"] for f in report_dict(report)["features"]}


@pytest.mark.parametrize("mode", ["exact", "binned"])
def test_the_same_table_as_csv_and_as_parquet_gives_identical_p_values(tmp_path, monkeypatch, mode):
    rng = np.random.default_rng(5)
    refs = ReferenceStore(tmp_path / "refs")
    _frame(rng, 2000).to_parquet(tmp_path / "ref.parquet")
    refs.register("cur", tmp_path / "ref.parquet")
    cur = pd.concat([_frame(rng, 1500), _frame(rng, 1500, shift=0.5)], ignore_index=True)
    cur.loc[[3, 700, 2999], "income"] = np.nan
    cur.loc[[4, 1800], "colour"] = None
    cur.to_parquet(tmp_path / "cur.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    monkeypatch.setattr(batch, "BATCH_ROWS", 512)
    monkeypatch.setattr(batch, "_CSV_BLOCK", 4096)  # many CSV blocks gathered into each batch
    got = {s: run_report_table(open_table(tmp_path / f"cur.{s}"), "cur", refs, window=1000, mode=mode)
           for s in ("parquet", "csv")}
    assert _p_values(got["csv"]) == _p_values(got["parquet"])
    assert _comparable(got["csv"]) == _comparable(got["parquet"])
    assert got["csv"].rows == 3000
    missing = {k: sum(w["missing_values"].get(k, 0) for w in report_dict(got["csv"])["windows"])
               for k in ("income", "colour")}
    assert missing == {"income": 3, "colour": 2}


def _tricky_csv(path, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """A CSV whose first blocks mislead a reader that fixes types from them: ``late_text`` is
    numbers until a text cell near the end, ``code`` holds category codes written as numbers
    (``07`` too) with one word late, ``late_float`` is integers then one decimal; plus quoted
    fields with commas, quotes and line breaks, and pandas' missing-value markers."""
    words = ['plain', 'with, comma', 'say "hi"', 'two\nlines', 'NA', '']
    lines = ["x,late_text,code,late_float,note"]
    for i in range(n):
        x = f"{rng.normal():.17g}" if i % 97 else ""
        late = "n/a" if i == n - 3 else ("oops" if i == n - 2 else f"{rng.normal(0, 1):.17g}")
        code = "abc" if i == n - 5 else f"{int(rng.integers(0, 4)):02d}"
        late_float = "2.5" if i == n - 1 else str(int(rng.integers(0, 50)))
        note = words[i % len(words)]
        note = '"' + note.replace('"', '""') + '"' if any(c in note for c in ',"\n') else note
        lines.append(f"{x},{late},{code},{late_float},{note}")
    path.write_text("\n".join(lines) + "\n")
    return pd.read_csv(path)


def test_tricky_csv_is_read_with_the_types_pandas_gives_the_whole_file(tmp_path, monkeypatch):
    rng = np.random.default_rng(9)
    cur = _tricky_csv(tmp_path / "cur.csv", 3000, rng)
    # what pandas makes of the whole file: the oracle
    assert cur["late_text"].dtype == object and cur["code"].dtype == object and cur["late_float"].dtype == float
    assert cur["note"].isna().sum() == 3000 // 6 * 2  # "NA" and the empty cell
    ref = _tricky_csv(tmp_path / "ref.csv", 2000, np.random.default_rng(10))
    refs = ReferenceStore(tmp_path / "refs")
    refs.register("cur", ref)
    monkeypatch.setattr(batch, "BATCH_ROWS", 700)
    monkeypatch.setattr(batch, "_CSV_BLOCK", 2048)  # the first block is all numbers
    table = open_table(tmp_path / "cur.csv")
    assert table is not None and table.columns == list(cur.columns)
    streamed = run_report_table(table, "cur", refs, window=1000)
    assert set(table.types) >= {"late_text", "code", "late_float", "note"}  # learned, then read again
    model, records, _ = load_input(tmp_path / "cur.csv")
    in_memory = run_report(records, model, refs, window=1000)
    assert _comparable(streamed) == _comparable(in_memory)
    assert streamed.rows == 3000
    # each batch has one type per column, the one pandas gives the whole file
    frames = list(table.batches())
    assert sum(len(f) for f in frames) == 3000 and table.rows == 3000
    for name in ("late_text", "code", "note"):
        assert all(isinstance(f[name].dtype, pd.CategoricalDtype) for f in frames)
        got = pd.concat([f[name].astype(object) for f in frames], ignore_index=True)
        pd.testing.assert_series_equal(got, cur[name].astype(object), check_names=False)
    assert all(f["late_float"].dtype == float for f in frames)
    np.testing.assert_array_equal(np.concatenate([f["late_float"].to_numpy() for f in frames]), cur["late_float"])
    # numbers are parsed correctly rounded (pandas' default parser can be an ulp off; its
    # round-trip parser is not)
    exact = pd.read_csv(tmp_path / "cur.csv", float_precision="round_trip")["x"].to_numpy()
    np.testing.assert_array_equal(np.concatenate([f["x"].to_numpy() for f in frames]), exact)
    # the bad cell of a numerical feature is counted, not a crash; the plots read the same columns
    bad = {k: sum(w["bad_values"].get(k, 0) for w in report_dict(streamed)["windows"]) for k in ("late_text",)}
    assert bad == {"late_text": 1}
    cols = table.read_columns(["code", "x"])
    assert cols["code"].astype(object).tolist() == cur["code"].astype(object).tolist()


@pytest.mark.parametrize("good_rows", [1, 5000])
def test_a_csv_that_is_not_a_table_is_a_clear_error(tmp_path, monkeypatch, good_rows):
    monkeypatch.setattr(batch, "_CSV_BLOCK", 4096)  # 5000 good rows: the bad one is found while reading
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n" + "1,2\n" * good_rows + "3,4,5\n")  # a row longer than the header
    with pytest.raises(InferwatchError, match=r"cannot read .* table: .*Expected 2 columns, got 3"):
        table = open_table(path)
        assert table is not None and good_rows > 1
        list(table.batches())

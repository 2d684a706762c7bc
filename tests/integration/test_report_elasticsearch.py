"""``inferwatch report`` from Elasticsearch over every row of a time range: exact (rows streamed
through a point in time) and binned (distributions counted in the cluster with aggregations).

30,000 audited rows (more than one page of the stream) written through the store's own bulk
path, and 3,000 rows whose cells a ``flattened`` field turns into text (number strings,
booleans, categories as text); the oracles are the tabular detector run locally on the same
values (itself checked against scipy and alibi-detect), scipy's ``ks_2samp``, numpy's counts of
the known rows and the cluster's own aggregations written in the tests. Small on purpose (CI
time); the several-million-row run is ``bench/bench_report_es.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import ks_2samp

from detectors.drift.tabular import TabularDrift
from inferwatch.config import ElasticsearchConfig
from inferwatch.record import InferenceRecord
from inferwatch.references import ReferenceStore
from inferwatch.report import run_report_audit
from sinks.elasticsearch import ElasticsearchAuditStore
from tests.integration.conftest import drop_es_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
ROWS_PER_HOUR = 15_000


def _frame(rng: np.random.Generator, n: int, shift: float, bad: bool = True) -> pd.DataFrame:
    x = np.round(rng.normal(shift, 1.0, n), 6)
    x[rng.random(n) < 0.01] = np.nan
    messy = np.round(rng.normal(0.0, 1.0, n), 3).astype(object)
    if bad:
        messy[rng.random(n) < 0.01] = "?"  # cells that are not numbers
    else:
        messy = messy.astype(float)
    return pd.DataFrame({
        "x": x,
        "y": np.round(rng.exponential(2.0, n), 2),  # ties with each other and the reference
        "code": rng.integers(0, 3, n),  # numbers tested as categories
        "city": rng.choice(["oslo", "lima", "pune"], n, p=[0.5, 0.3, 0.2]),
        "messy": messy,
    })


def _records(frame: pd.DataFrame, start: datetime, model: str) -> list[InferenceRecord]:
    out = []
    for k in range(0, len(frame), 1000):
        part = frame.iloc[k : k + 1000]
        inputs = {c: [None if isinstance(v, float) and np.isnan(v) else v for v in part[c].tolist()]
                  for c in part.columns}
        out.append(InferenceRecord(id=f"r{start:%H}-{k}", model=model, timestamp=start + timedelta(seconds=k // 10),
                                   inputs=inputs, part="both"))
    return out


@pytest.fixture(scope="module")
def loaded(stack_env, tmp_path_factory):
    rng = np.random.default_rng(42)
    ref = _frame(rng, 5000, 0.0, bad=False)
    hours = [_frame(rng, ROWS_PER_HOUR, 0.0), _frame(rng, ROWS_PER_HOUR, 0.15)]
    records = [r for i, h in enumerate(hours) for r in _records(h, T0 + timedelta(hours=i), "scored")]
    with _loaded_store(stack_env, tmp_path_factory, "scored", ref, records) as (store, refs, cfg):
        yield store, refs, ref, hours, cfg


@contextlib.contextmanager
def _loaded_store(stack_env, tmp_path_factory, model: str, ref: pd.DataFrame, records: list[InferenceRecord]
                  ) -> Iterator[tuple[ElasticsearchAuditStore, ReferenceStore, ElasticsearchConfig]]:
    """A store of its own (a fresh index prefix) holding ``records``, and a reference store with
    ``ref`` registered for ``model``; the indices and templates are dropped afterwards."""
    cfg = ElasticsearchConfig(hosts=[stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"]],
                              index_prefix="iwt-" + uuid.uuid4().hex[:10])
    store = ElasticsearchAuditStore(cfg)
    try:
        store.write_records(records)
        store.refresh()
        folder = tmp_path_factory.mktemp(f"es-{model}")
        ref.to_parquet(folder / "reference.parquet")
        refs = ReferenceStore(folder / "references")
        refs.register(model, folder / "reference.parquet", source="test")
        yield store, refs, cfg
    finally:
        drop_es_store(store)


def _local(ref: pd.DataFrame, cur: pd.DataFrame, **kw):
    return TabularDrift(**kw).fit(ref).update(cur).result()


def test_exact_streams_every_row_and_gives_the_values_p_values(loaded):
    store, refs, ref, hours, _ = loaded
    # counted after 1,000 rows (the default, 50,000, would keep these 30,000 as values)
    report = run_report_audit(store, "scored", refs, mode="exact", detectors=[{"type": "tabular", "counts_after": 1000}])
    (det,) = report.detections
    whole = pd.concat(hours, ignore_index=True)
    assert report.rows == det.window_size == 2 * ROWS_PER_HOUR  # more than one page, all rows
    oracle = _local(ref, whole)
    assert det.feature_p_values == pytest.approx(oracle.feature_p_values, rel=1e-12, abs=1e-300)
    assert det.extra["missing_values"] == oracle.extra["missing_values"]
    assert det.extra["bad_values"] == oracle.extra["bad_values"] == {"messy": int((whole.messy == "?").sum())}
    assert det.feature_distances["x"] == ks_2samp(ref.x.dropna(), whole.x.dropna()).statistic
    assert report.mode == "exact" and det.extra["window_kept_as"] == "counts"


def test_binned_counts_in_the_cluster_like_binned_counts_here(loaded):
    store, refs, ref, hours, _ = loaded
    report = run_report_audit(store, "scored", refs, mode="binned", bins=20)
    (det,) = report.detections
    whole = pd.concat(hours, ignore_index=True)
    here = _local(ref, whole, bins=20)
    assert det.window_size == 2 * ROWS_PER_HOUR
    assert det.feature_p_values == pytest.approx(here.feature_p_values, rel=1e-12, abs=1e-300)
    assert det.extra["missing_values"] == here.extra["missing_values"]
    assert det.extra["bad_values"] == here.extra["bad_values"]
    exact = _local(ref, whole)
    for f in ("x", "y", "messy"):
        assert det.extra["methods"][f] == "binned-asymptotic"
        assert det.feature_p_values[f] >= exact.feature_p_values[f]  # conservative
    assert det.feature_p_values["city"] == pytest.approx(exact.feature_p_values["city"], rel=1e-12)
    assert any("binned mode" in n and "conservative" in n for n in report.notes)


@pytest.mark.parametrize("mode", ["exact", "binned"])
def test_every_hour_is_a_window(loaded, mode):
    store, refs, ref, hours, _ = loaded
    report = run_report_audit(store, "scored", refs, mode=mode, every="1h", bins=20)
    assert [d.window_size for d in report.detections] == [ROWS_PER_HOUR, ROWS_PER_HOUR]
    assert [d.window_start.hour for d in report.detections] == [10, 11]
    kw = {"bins": 20} if mode == "binned" else {}
    for det, hour in zip(report.detections, hours, strict=True):
        oracle = _local(ref, hour, **kw)
        assert det.feature_p_values == pytest.approx(oracle.feature_p_values, rel=1e-12, abs=1e-300)
        assert det.is_drift == oracle.is_drift
    assert report.detections[1].feature_p_values["x"] < report.detections[0].feature_p_values["x"]


def test_the_command_reads_past_the_old_limit(loaded, tmp_path: Path, monkeypatch):
    _, _, ref, _, cfg = loaded
    from inferwatch.cli import main

    monkeypatch.setenv("INFERWATCH_ELASTICSEARCH_HOSTS", cfg.hosts[0])
    monkeypatch.setenv("INFERWATCH_ELASTICSEARCH_INDEX_PREFIX", cfg.index_prefix)
    ref_path = tmp_path / "reference.parquet"
    ref.to_parquet(ref_path)
    for mode in ("exact", "binned"):
        out = tmp_path / mode
        res = CliRunner().invoke(main, ["report", "--source", "elasticsearch", "--model", "scored", "--reference",
                                        str(ref_path), "--mode", mode, "--out", str(out), "--quiet"])
        assert res.exit_code == 0, res.output
        assert f"scored: {2 * ROWS_PER_HOUR} rows" in res.output
        page = (out / "report.html").read_text()
        assert f"{mode} tests" in page
    limited = CliRunner().invoke(main, ["report", "--source", "elasticsearch", "--model", "scored", "--reference",
                                        str(ref_path), "--limit", "12345", "--out", str(tmp_path / "l"), "--quiet"])
    assert limited.exit_code == 0, limited.output
    assert "scored: 12345 rows" in limited.output


def _cells(values: np.ndarray, edges: list[float]) -> list[int]:
    """Counts in ``(-inf, e0), [e0, e1), ..., [e_last, inf)`` (numpy, the oracle)."""
    return np.bincount(np.searchsorted(np.asarray(edges), values, side="right"), minlength=len(edges) + 1).tolist()


def _numbers(col: pd.Series) -> np.ndarray:
    x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    return x[~np.isnan(x)]


def _cluster_cells(store, query_filter, feature: str, edges: list[float]) -> list[int]:
    """The cluster's own counts of ``feature`` in the cells (a range aggregation written here)."""
    ranges = [{"to": edges[0]}] + [{"from": a, "to": b} for a, b in itertools.pairwise(edges)] + \
        [{"from": edges[-1]}]
    resp = store.es.search(index=f"{store.prefix}-records-*", size=0, query=query_filter,
                           aggs={"r": {"range": {"field": f"input_num.{feature}", "ranges": ranges}}})
    return [b["doc_count"] for b in resp["aggregations"]["r"]["buckets"]]


def _cluster_terms(store, query_filter, feature: str, numbers: bool) -> dict[str, int]:
    field = f"input_num.{feature}" if numbers else f"input.{feature}"
    resp = store.es.search(index=f"{store.prefix}-records-*", size=0, query=query_filter,
                           aggs={"t": {"terms": {"field": field, "size": 100}}})
    return {str(int(b["key"])) if numbers else b["key"]: b["doc_count"] for b in resp["aggregations"]["t"]["buckets"]}


@pytest.mark.parametrize(("mode", "every"), [("binned", None), ("binned", "1h"), ("exact", "1h")])
def test_a_plot_per_feature_drawn_from_the_clusters_counts(loaded, tmp_path: Path, mode, every):
    store, refs, ref, hours, _ = loaded
    from sinks.report import write_report

    report = run_report_audit(store, "scored", refs, mode=mode, bins=20, every=every)
    json_path, html_path = write_report(report, tmp_path, top=10)
    page = html_path.read_text()
    doc = __import__("json").loads(json_path.read_text())
    entries = {e["feature"]: e for e in doc["distributions"]}
    assert set(entries) == set(ref.columns)
    for f in ref.columns:
        assert page.count(f'alt="{f}: p = ') == 1, f  # one plot per feature
        assert f'<figcaption>{f}: p = ' in page
    for f, e in entries.items():
        # the window the entry names: the one where the feature's p-value was lowest
        lowest = min(range(len(report.detections)), key=lambda i: report.detections[i].feature_p_values[f])
        assert e["window"] == lowest and e["p_value"] == report.detections[lowest].feature_p_values[f]
        rows = hours[lowest] if every else pd.concat(hours, ignore_index=True)
        start = T0 + timedelta(hours=lowest)
        flt = {"bool": {"filter": [{"term": {"model": "scored"}}] + ([{"range": {"timestamp": {
            "gte": start.isoformat(), "lt": (start + timedelta(hours=1)).isoformat()}}}] if every else [])}}
        if e["kind"] == "numerical":
            # the reference's 20 quantile edges (its own values), computed here
            r = _numbers(ref[f])
            assert e["edges"] == np.unique(np.quantile(r, np.linspace(0, 1, 21)[:-1], method="inverted_cdf")).tolist()
            assert e["reference"] == _cells(r, e["edges"])
            assert e["current"] == _cells(_numbers(rows[f]), e["edges"])  # the known values
            assert e["current"] == _cluster_cells(store, flt, f, e["edges"])  # the cluster's counts
        else:
            assert f in ("code", "city")
            cur = dict(zip(e["categories"], e["current"], strict=True))
            want = rows[f].astype(str).value_counts().to_dict()
            assert {k: v for k, v in cur.items() if v} == want
            assert want == _cluster_terms(store, flt, f, numbers=f == "code")
            refc = dict(zip(e["categories"], e["reference"], strict=True))
            assert {k: v for k, v in refc.items() if v} == ref[f].astype(str).value_counts().to_dict()


# -- what a flattened field does to values: the two modes read them alike ------------------------

ODD_ROWS = 3000


def _odd_frame(rng: np.random.Generator, n: int, odd: bool) -> pd.DataFrame:
    num = np.round(rng.normal(0.0, 1.0, n), 4).astype(object)
    code = rng.integers(0, 3, n).astype(object)
    if odd:
        u = rng.random(n)
        num[u < 0.03] = [f"{v:.3f}" for v in rng.normal(0.0, 1.0, int((u < 0.03).sum()))]  # numbers as text
        num[(u >= 0.03) & (u < 0.04)] = True  # booleans: 1.0 to a test on the values
        num[(u >= 0.04) & (u < 0.05)] = "?"  # not a number
        code[u > 0.97] = "1"  # a category given as text
    return pd.DataFrame({
        "num": num,
        "flag": rng.random(n) < (0.5 if not odd else 0.6),  # booleans as categories: "true"/"false" there
        "code": code,
        "many": np.asarray([f"k{i}" for i in range(40)], dtype=object)[rng.integers(0, 40, n)],
    })


@pytest.fixture(scope="module")
def odd(stack_env, tmp_path_factory):
    rng = np.random.default_rng(7)
    ref = _odd_frame(rng, 4000, odd=False)
    ref["num"] = ref["num"].astype(float)
    ref["code"] = ref["code"].astype(int)
    cur = _odd_frame(rng, ODD_ROWS, odd=True)
    with _loaded_store(stack_env, tmp_path_factory, "odd", ref, _records(cur, T0, "odd")) as (store, refs, _):
        yield store, refs, ref, cur


def test_numbers_as_text_booleans_and_text_categories_read_alike_in_both_modes(odd):
    store, refs, ref, cur = odd
    exact = run_report_audit(store, "odd", refs, mode="exact", bins=20,
                             detectors=[{"type": "tabular", "counts_after": 100}])
    binned = run_report_audit(store, "odd", refs, mode="binned", bins=20)
    (de,), (db,) = exact.detections, binned.detections
    # the oracles: the detector here on the values as written (number strings and booleans are numbers)
    here_exact = _local(ref, cur)
    here_binned = _local(ref, cur, bins=20)
    assert de.feature_p_values == pytest.approx(here_exact.feature_p_values, rel=1e-12, abs=1e-300)
    assert db.feature_p_values == pytest.approx(here_binned.feature_p_values, rel=1e-12, abs=1e-300)
    n_q = int((cur.num == "?").sum())
    assert n_q > 0 and de.extra["bad_values"] == db.extra["bad_values"] == {"num": n_q}  # only "?" is bad
    assert de.extra["missing_values"] == db.extra["missing_values"]
    # categories: exactly the same tables, so the same chi-squared p-values in both modes
    for f in ("flag", "code", "many"):
        assert db.feature_p_values[f] == pytest.approx(de.feature_p_values[f], rel=1e-12), f
    counts_e, counts_b = exact.counts[0], binned.counts[0]
    assert counts_b["flag"]["current"] == counts_e["flag"]["current"] == {
        True: int(cur.flag.sum()), False: int((~cur.flag).sum())}
    assert counts_b["code"]["current"] == counts_e["code"]["current"]
    assert counts_b["num"]["current"] == counts_e["num"]["current"]  # number strings binned like numbers
    assert not any(n.startswith("more than") for n in binned.notes)


def test_every_category_is_counted_beyond_the_first_pages_limit(odd):
    store, _, _, cur = odd
    full = store.aggregate("odd", numeric={}, categorical={"many": False, "code": True})
    small = store.aggregate("odd", numeric={}, categorical={"many": False, "code": True}, max_categories=3)
    assert small == full  # counted again page by page, nothing left out
    (slot,) = full
    assert slot["categories"]["many"] == cur.many.value_counts().to_dict() and len(slot["categories"]["many"]) == 40
    assert slot["other"] == {"many": 0, "code": 0}
    assert slot["odd"]["code"] == {"1": int((cur.code == "1").sum())}  # the text cells, for the caller to read


LOSSY_ROWS = 2000
LONG = 1500  # characters: over the flattened field's ignore_above (1,024), so not indexed


def _lossy_frame(rng: np.random.Generator, n: int, lossy: bool) -> pd.DataFrame:
    """Cells the ``flattened`` field does not hold as they are, one kind per band of ``u``."""
    num = np.round(rng.normal(0.0, 1.0, n), 4).astype(object)
    city = rng.choice(["oslo", "lima", "pune"], n).astype(object)
    flag = (rng.random(n) < 0.5).astype(object)
    zip_ = rng.choice(["1", "2", "x"], n).astype(object)  # text categories that look like numbers
    if lossy:
        u = rng.random(n)
        bands = [u < 0.02, (u >= 0.02) & (u < 0.03), (u >= 0.03) & (u < 0.04), (u >= 0.04) & (u < 0.05),
                 (u >= 0.05) & (u < 0.06), (u >= 0.06) & (u < 0.07), (u >= 0.07) & (u < 0.08)]
        lists, single, empty, objects, words, long_, booleans = bands
        for i in np.flatnonzero(lists):  # a list: one bad cell to a test on the values, not 2 numbers
            num[i] = [round(float(rng.normal()), 3), round(float(rng.normal()), 3)]
            city[i] = ["oslo", "lima"]
        for i in np.flatnonzero(single):  # a one-element list looks like its element in the index
            num[i] = [0.5]
            city[i] = ["pune"]
        for i in np.flatnonzero(empty):  # an empty list: nothing in the index (looked missing)
            num[i] = []
            city[i] = []
        for i in np.flatnonzero(objects):  # an object: indexed under its own keys
            num[i] = {"k": 1.5}
            city[i] = {"k": "oslo"}
        num[words] = rng.choice(["true", "false"], int(words.sum()))  # text, not the booleans
        city[words] = "true"  # a category of its own, not True
        flag[words] = "false"  # the text, not the reference's False
        num[long_] = "7" * LONG  # a number to a test on the values? not indexed at all
        city[long_] = "x" * LONG  # an unseen category, not a missing cell
        num[booleans] = True  # a boolean is 1.0 in a numerical column (both modes, as before)
        zip_[(u >= 0.08) & (u < 0.10)] = 1  # the number: not the category "1" (its text in the index)
        zip_[(u >= 0.10) & (u < 0.11)] = 2.5
        flag[(u >= 0.08) & (u < 0.09)] = 1  # the number 1: to Python the category True
    return pd.DataFrame({"num": num, "city": city, "flag": flag, "zip": zip_})


@pytest.fixture(scope="module")
def lossy(stack_env, tmp_path_factory):
    rng = np.random.default_rng(11)
    ref = _lossy_frame(rng, 3000, lossy=False)
    ref["num"] = ref["num"].astype(float)
    ref["flag"] = ref["flag"].astype(bool)
    # two hours, so that per-hour windows (a date_histogram) get their odd cells back too
    cur = _lossy_frame(rng, LOSSY_ROWS, lossy=True)
    half = LOSSY_ROWS // 2
    records = _records(cur.iloc[:half], T0, "lossy") + _records(cur.iloc[half:], T0 + timedelta(hours=1), "lossy")
    with _loaded_store(stack_env, tmp_path_factory, "lossy", ref, records) as (store, refs, _):
        yield store, refs, ref, cur


def _kinds(col: pd.Series) -> dict[str, int]:
    """How many cells of each kind a column holds (the independent tally the tests expect)."""
    out: dict[str, int] = {}
    for v in col.tolist():
        k = ("list" if isinstance(v, list) else "object" if isinstance(v, dict) else "bool" if isinstance(v, bool)
             else "long" if isinstance(v, str) and len(v) > 1024 else "word" if v in ("true", "false")
             else "plain")
        out[k] = out.get(k, 0) + 1
    return out


@pytest.mark.parametrize("every", [None, "1h"])
def test_lists_long_text_and_true_as_text_read_alike_in_both_modes(lossy, every):
    """Lists (each element indexed, an empty one not at all), objects, text over ignore_above and
    the text "true" in a numerical column: binned mode reads those cells from the documents, so
    both modes give what the detector gives on the values as written."""
    store, refs, ref, cur = lossy
    exact = run_report_audit(store, "lossy", refs, mode="exact", bins=20, every=every,
                             detectors=[{"type": "tabular", "counts_after": 100}])
    binned = run_report_audit(store, "lossy", refs, mode="binned", bins=20, every=every)
    parts = [cur] if every is None else [cur.iloc[: LOSSY_ROWS // 2], cur.iloc[LOSSY_ROWS // 2 :]]
    assert len(exact.detections) == len(binned.detections) == len(parts)
    for de, db, part, ce, cb in zip(exact.detections, binned.detections, parts, exact.counts.values(),
                                    binned.counts.values(), strict=True):
        here_exact, here_binned = _local(ref, part), _local(ref, part, bins=20)
        assert de.feature_p_values == pytest.approx(here_exact.feature_p_values, rel=1e-12, abs=1e-300)
        assert db.feature_p_values == pytest.approx(here_binned.feature_p_values, rel=1e-12, abs=1e-300)
        num, city = _kinds(part.num), _kinds(part.city)
        # the tally: every list, object, word and long text of num is one bad cell; booleans are 1.0;
        # in city lists and objects are bad cells, "true" and the long text are categories
        bad = {"num": num["list"] + num["object"] + num["word"] + num["long"], "city": city["list"] + city["object"]}
        assert min(num["list"], num["word"], num["long"], city["word"], city["long"]) > 0
        assert de.extra["bad_values"] == db.extra["bad_values"] == here_exact.extra["bad_values"] == bad
        assert de.extra["missing_values"] == db.extra["missing_values"] == here_exact.extra["missing_values"]
        assert sum(de.extra["missing_values"].values()) == 0  # nothing became a missing cell
        for f in ("city", "flag", "zip"):  # the same category tables, so the same chi-squared p-values
            assert cb[f]["current"] == ce[f]["current"], f
            assert db.feature_p_values[f] == pytest.approx(de.feature_p_values[f], rel=1e-12), f
        assert cb["city"]["current"]["true"] == city["word"] and cb["city"]["current"]["x" * LONG] == city["long"]
        assert cb["flag"]["current"]["false"] == int((part.flag == "false").sum())  # the text, not False
        assert cb["num"]["current"] == ce["num"]["current"]
        n_one = sum(type(v) is int for v in part.zip)
        assert n_one > 0 and cb["zip"]["current"][1] == n_one  # the numbers apart from the text "1"
        assert cb["zip"]["current"]["1"] == int((part.zip == "1").sum())


def test_odd_cells_are_marked_at_write_and_read_back_from_the_documents(lossy):
    store, _, _, cur = lossy
    (slot,) = store.aggregate("lossy", numeric={"num": [-1.0, 0.0, 1.0]}, categorical={"city": False, "flag": False})
    num, city = _kinds(cur.num), _kinds(cur.city)
    n_num = num["list"] + num["object"] + num["word"] + num["long"]
    assert len(slot["values"]["num"]) == n_num
    assert len(slot["values"]["city"]) == city["list"] + city["object"] + city["word"] + city["long"]
    assert len(slot["values"]["flag"]) == sum(isinstance(v, str) for v in cur.flag) > 0
    assert slot["present"]["num"] == LOSSY_ROWS  # every cell is there: none missing
    # the cluster's counts hold no element of a list, and the odd texts no "true"
    assert slot["numbers"]["num"] == num["plain"] and set(slot["odd"].get("num", {})) <= {"true"}
    assert slot["odd"].get("num", {}).get("true", 0) == num["bool"]  # the booleans, by their text

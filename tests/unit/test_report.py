"""``inferwatch report`` end to end without services: the numbers against scipy on the same data,
the null case, the HTML page, the audit-store source, the Pushgateway push, and clear errors."""

from __future__ import annotations

import base64
import http.server
import re
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import chi2_contingency, ks_2samp

from inferwatch.record import InferenceRecord
from inferwatch.references import ReferenceStore
from inferwatch.report_command import EXIT_DRIFT, report
from sinks.sqlite_audit import SQLiteAuditStore

NUMERIC = ["age", "income", "score"]
COLOURS = ["red", "green", "blue"]


def _frame(rng, n, shift=0.0, colour_p=(0.5, 0.3, 0.2)):
    df = pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.lognormal(10, 0.5, n),
                       "score": rng.normal(0, 1, n) + shift})
    df["colour"] = rng.choice(COLOURS, n, p=colour_p)
    return df


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(11)
    _frame(rng, 3000).to_parquet(tmp_path / "ref.parquet")
    _frame(rng, 600).to_csv(tmp_path / "null.csv", index=False)
    shifted = _frame(rng, 900)
    shifted.loc[600:, "score"] += 0.8  # only the last 300 rows move
    shifted.to_parquet(tmp_path / "shifted.parquet")
    return tmp_path


def _run(args, tmp_path, **env):
    base = {"INFERWATCH_CONFIG": None, "INFERWATCH_PUSHGATEWAY_URL": None,
            "INFERWATCH_DATA_DIR": str(tmp_path / "data")}
    return CliRunner().invoke(report, [*args, "-q"], env={**base, **env})


def _json(out):
    return orjson.loads((out / "report.json").read_bytes())


def test_shifted_batch_drifts_on_the_shifted_feature_with_scipys_p_values(files):
    out = files / "out"
    r = _run(["--input", str(files / "shifted.parquet"), "--reference", str(files / "ref.parquet"),
              "--out", str(out), "--top", "0"], files)
    assert r.exit_code == 0, r.output
    doc = _json(out)
    # the batch drifts on "score": its last 300 of 900 rows moved 0.8 sd. A miss (score's p not
    # under the Bonferroni cut 0.05/4) measured: 12 of 100,000 simulated batches
    # (bench/false_failure_budgets.py ks-power --rows 900 --shifted 300 --shift 0.8 --cut 0.0125),
    # ~1.2e-4 a run (this and the tests below that run the same batch)
    assert doc["summary"]["drift"] is True and doc["summary"]["windows"] == 1
    assert "score" in doc["summary"]["drifted_features"]
    (det,) = doc["detections"]
    assert det["window_size"] == 900 and det["detector"] == "tabular"
    ref, cur = pd.read_parquet(files / "ref.parquet"), pd.read_parquet(files / "shifted.parquet")
    p = {}
    for f in NUMERIC:  # the same p-values and statistics as scipy on the same data
        expected = ks_2samp(ref[f], cur[f], mode="asymp")
        assert det["feature_p_values"][f] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
        assert det["feature_distances"][f] == pytest.approx(expected.statistic, rel=1e-12)
        p[f] = expected.pvalue
    table = pd.crosstab(pd.concat([ref["colour"], cur["colour"]]),
                        np.r_[np.zeros(len(ref)), np.ones(len(cur))])
    p["colour"] = chi2_contingency(table.T).pvalue
    assert det["feature_p_values"]["colour"] == pytest.approx(p["colour"], rel=1e-9)
    # which features drifted, from those p-values and the Bonferroni definition (not a fixed
    # ["score"]: each of the three unshifted features is under 0.05/4 with probability up to 1.25%)
    assert sorted(doc["summary"]["drifted_features"]) == sorted(f for f, v in p.items() if v < 0.05 / 4)
    feats = {f["feature"]: f for f in doc["features"]}
    assert feats["score"]["drifted_windows"] == 1 and feats["colour"]["test"] == "chi2"
    assert feats["age"]["p_values"] == [det["feature_p_values"]["age"]]


def test_count_windows_are_consecutive_slices_tested_like_scipy(files):
    out = files / "out"
    r = _run(["--input", str(files / "shifted.parquet"), "--reference", str(files / "ref.parquet"),
              "--window", "300", "--detector", "ks", "--out", str(out), "--top", "0"], files)
    assert r.exit_code == 0, r.output
    doc = _json(out)
    assert [w["rows"] for w in doc["windows"]] == [[0, 300], [300, 600], [600, 900]]
    ref, cur = pd.read_parquet(files / "ref.parquet"), pd.read_parquet(files / "shifted.parquet")
    # which windows fire, from scipy and the Bonferroni definition (not a list that held for one
    # seed: each null window fires ~5% of the time at the default p_val 0.05)
    expected = [bool(min(ks_2samp(ref[f], cur.iloc[300 * k : 300 * (k + 1)][f], mode="asymp").pvalue
                    for f in NUMERIC) * len(NUMERIC) < 0.05) for k in range(3)]
    assert [w["fired"] for w in doc["windows"]] == expected
    # the shifted window fires: a 0.8 sd shift over 300 rows against 3,000 gives KS D ~ 0.3,
    # p ~ 1e-20; a miss has probability < 1e-6
    assert expected[2] is True
    assert doc["summary"]["windows"] == 3 and doc["summary"]["drifted_windows"] == sum(expected)
    for k, det in enumerate(doc["detections"]):
        part = cur.iloc[300 * k : 300 * (k + 1)]
        for f in NUMERIC:
            assert det["feature_p_values"][f] == pytest.approx(
                ks_2samp(ref[f], part[f], mode="asymp").pvalue, rel=1e-9, abs=1e-300)
    assert "colour" not in doc["detections"][0]["feature_p_values"]  # ks tests numerical features only


def test_null_batch_reports_no_drift_and_exits_0_even_with_fail_on_drift(files):
    """A null batch, tested at p_val 0.0005 (the configuration's detectors): it drifts with
    probability <= 5e-4 (Bonferroni over four valid p-values; KS's asymptotic one measured
    conservative at this size: 34 of 200,000 null windows of 600 rows under 2.5e-4, i.e. 1.7e-4,
    bench/false_failure_budgets.py ks-power --rows 600 --shift 0 --cut 0.00025). At the default
    0.05 this test failed for up to 5% of seeds."""
    out = files / "out"
    cfg = files / "strict.yaml"
    cfg.write_text("detect:\n  detectors:\n    - {type: tabular, p_val: 0.0005}\n")
    r = _run(["--config", str(cfg), "--input", str(files / "null.csv"), "--reference", str(files / "ref.parquet"),
              "--out", str(out), "--fail-on-drift", "--top", "0"], files)
    assert r.exit_code == 0, r.output
    assert "no drift in 1 window" in r.output
    doc = _json(out)
    assert doc["summary"]["drift"] is False and doc["summary"]["drifted_features"] == []
    assert doc["model"] == "null" and doc["summary"]["rows"] == 600
    assert doc["detections"][0]["detector"] == "tabular" and doc["detections"][0]["threshold"] == 0.0005
    cur = pd.read_csv(files / "null.csv")
    ref = pd.read_parquet(files / "ref.parquet")
    assert doc["detections"][0]["feature_p_values"]["age"] == pytest.approx(
        ks_2samp(ref["age"], cur["age"], mode="asymp").pvalue, rel=1e-9)


def test_fail_on_drift_exits_3(files):
    r = _run(["--input", str(files / "shifted.parquet"), "--reference", str(files / "ref.parquet"),
              "--out", str(files / "out"), "--fail-on-drift", "--top", "0"], files)
    assert r.exit_code == EXIT_DRIFT == 3, r.output
    assert (files / "out" / "report.json").is_file()


def test_html_is_self_contained_with_one_inline_png_per_plot(files):
    out = files / "out"
    r = _run(["--input", str(files / "shifted.parquet"), "--reference", str(files / "ref.parquet"),
              "--window", "300", "--out", str(out), "--top", "3"], files)
    assert r.exit_code == 0, r.output
    page = (out / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    # p-value bars + p-value per window + 3 distributions (score and colour drifted, then the next)
    assert len(images) == 5
    for b64 in images:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    for name in (*NUMERIC, "colour"):
        assert name in page
    # the headline counts the windows: the shifted third one, and a null window may fire at the
    # level (a fixed "1 of 3" failed for sweep seed 8); which ones drifted is asserted elsewhere
    counted = re.search(r"Drift detected in (\d) of 3 window\(s\)", page)
    assert counted is not None and 1 <= int(counted.group(1)) <= 3
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing loaded from elsewhere
    # the most drifted features are plotted from the window where they drifted
    assert "score: p = " in page and "window 3, rows 601-900" in page


@pytest.fixture
def audited(tmp_path):
    """A data dir with an audit store of one model over 10 hours and its registered reference."""
    data = tmp_path / "data"
    rng = np.random.default_rng(5)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    store = SQLiteAuditStore(data / "audit.db")
    recs = []
    for h in range(10):
        x = rng.normal(size=(40, 2)) + (1.0 if h >= 5 else 0.0) * np.array([1.0, 0.0])
        recs.append(InferenceRecord(id=f"h{h}", model="credit", version="v1", timestamp=t0 + timedelta(hours=h),
                                    inputs={"a": x[:, 0].tolist(), "b": x[:, 1].tolist()},
                                    outputs={"p": rng.random(40).tolist()}))
    store.write_records(recs)
    store.close()
    ref = pd.DataFrame(rng.normal(size=(1000, 2)), columns=["a", "b"])
    ReferenceStore(data / "references").register("credit", ref, version="v1")
    cfg = tmp_path / "inferwatch.yaml"
    cfg.write_text(f"data_dir: {data}\ndetect:\n  detectors:\n    - {{type: ks, p_val: 0.01}}\n")
    return tmp_path, cfg, recs, ref


def test_audit_store_rows_in_a_time_range_with_the_configs_detectors(audited):
    tmp_path, cfg, recs, ref = audited
    out = tmp_path / "out"
    r = _run(["--config", str(cfg), "--model", "credit", "--since", "2026-01-01T05:00:00Z",
              "--until", "2026-01-01T09:00:00Z", "--window", "100", "--out", str(out), "--top", "2"], tmp_path)
    assert r.exit_code == 0, r.output
    doc = _json(out)
    assert doc["source"]["audit"] == "SQLiteAuditStore" and doc["source"]["documents"] == 200
    assert [d["detector"] for d in doc["detections"]] == ["ks", "ks"]
    assert doc["detectors"][0]["p_val"] == 0.01
    assert all(d["version"] == "v1" for d in doc["detections"])
    cur = {f: np.concatenate([recs[h].inputs[f] for h in range(5, 10)]) for f in ("a", "b")}  # oldest first
    for k, det in enumerate(doc["detections"]):
        p = {f: ks_2samp(ref[f], cur[f][100 * k : 100 * (k + 1)], mode="asymp").pvalue for f in cur}
        assert det["feature_p_values"] == pytest.approx(p, rel=1e-9)
        # "b" is not shifted: whether it fires, from its p-value (a fixed False fails with
        # probability up to 0.5% a window). "a" moved 1 sd in 100 rows against 1,000: no miss in
        # 500,000 simulated windows, largest p 8e-4 against the cut 5e-3 (ks-power --ref-rows 1000
        # --rows 100 --shift 1 in bench/false_failure_budgets.py): < 6e-6 a window (95% bound)
        assert det["feature_drift"] == {"a": True, "b": bool(p["b"] < 0.01 / 2)}, p
        assert det["is_drift"] is True
    assert "version v1" in (out / "report.html").read_text()


class _Gateway(http.server.BaseHTTPRequestHandler):
    pushes: list[tuple[str, str, bytes]] = []

    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.pushes.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_pushes_the_batch_metrics_to_the_pushgateway(files):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Gateway.pushes.clear()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        r = _run(["--input", str(files / "shifted.parquet"), "--reference", str(files / "ref.parquet"),
                  "--out", str(files / "out"), "--top", "0", "--model", "churn"], files,
                 INFERWATCH_PUSHGATEWAY_URL=url)  # the configuration's pushgateway.url is the default
        assert r.exit_code == 0, r.output
    finally:
        server.shutdown()
    ((method, path, body),) = _Gateway.pushes
    assert (method, path) == ("PUT", "/metrics/job/inferwatch-report/model/churn")
    text = body.decode()
    assert 'inferwatch_drift_detected{detector="tabular",model="churn",version=""} 1.0' in text
    assert re.search(r'inferwatch_drift_feature_p_value\{detector="tabular",feature="score",model="churn",'
                     r'version=""\} \d', text)
    assert re.search(r"^inferwatch_report_last_success_timestamp_seconds \d\.\d+e\+09$", text, re.M)


def test_a_failed_push_is_a_clear_error_after_the_report_is_written(files):
    r = _run(["--input", str(files / "null.csv"), "--reference", str(files / "ref.parquet"),
              "--out", str(files / "out"), "--top", "0", "--pushgateway", "http://127.0.0.1:9"], files)
    assert r.exit_code == 1
    assert "the report was written, but pushing its metrics to http://127.0.0.1:9 failed" in r.output
    assert (files / "out" / "report.html").is_file()


def test_records_file_with_several_models(tmp_path, files):
    rng = np.random.default_rng(3)
    lines = [InferenceRecord(id=f"r{i}", model="a" if i % 2 else "b",
                             inputs={"score": rng.normal(size=5).tolist()}).to_json() for i in range(40)]
    path = tmp_path / "records.jsonl"
    path.write_bytes(b"\n".join(lines))
    r = _run(["--input", str(path), "--reference", str(files / "ref.parquet"), "--out", str(tmp_path / "o")],
             tmp_path)
    assert r.exit_code == 1 and "holds several models (a, b); choose one with --model" in r.output
    r = _run(["--input", str(path), "--reference", str(files / "ref.parquet"), "--model", "a", "--top", "1",
              "--detector", "ks", "--out", str(tmp_path / "o")], tmp_path)
    assert r.exit_code == 0, r.output
    doc = _json(tmp_path / "o")
    assert doc["summary"]["rows"] == 100 and doc["detections"][0]["window_size"] == 100


@pytest.mark.parametrize("case, args, message", [
    ("empty", ["--input", "{tmp}/empty.csv", "--reference", "{tmp}/ref.parquet"], "no rows for model 'empty'"),
    ("no reference", ["--input", "{tmp}/null.csv"], "no reference for model 'null'"),
    ("unknown model", ["--model", "nope"], "unknown model 'nope': no audited rows and no reference"),
    ("no audit db", ["--model", "nope"], "no audit database at"),
    ("bad format", ["--input", "{tmp}/rows.xml"], "expected .csv, .parquet, .json or .jsonl"),
    ("bad detector", ["--input", "{tmp}/null.csv", "--reference", "{tmp}/ref.parquet", "-d", "nosuch"],
     "detectors[0].type must be one of"),
])
def test_bad_inputs_give_clear_errors(files, audited, case, args, message):
    tmp = files
    (tmp / "empty.csv").write_text("age,income,score,colour\n")
    (tmp / "rows.xml").write_text("<rows/>")
    env = {}
    if case == "unknown model":
        env["INFERWATCH_DATA_DIR"] = str(audited[0] / "data")
    if case == "no audit db":
        env["INFERWATCH_DATA_DIR"] = str(tmp / "nowhere")
    r = _run([a.format(tmp=tmp) for a in args] + ["--out", str(tmp / "out")], tmp, **env)
    assert r.exit_code == 1, r.output
    assert message in r.output
    assert isinstance(r.exception, SystemExit)  # a ClickException, not a traceback


@pytest.mark.parametrize("args, message", [
    ([], "give --model (rows from the audit store) or --input FILE"),
    (["--input", "{tmp}/null.csv", "--since", "2026-01-01T00:00:00Z"], "do not apply to --input"),
    (["--model", "m", "--since", "yesterday"], "is not an ISO-8601 time"),
    (["--input", "{tmp}/null.csv", "--window", "0"], "0 is not in the range x>=1"),
])
def test_usage_errors(files, args, message):
    r = _run([a.format(tmp=files) for a in args], files)
    assert r.exit_code == 2 and message in r.output, r.output


def test_columns_missing_against_the_reference_are_reported_not_crashed(files):
    pd.DataFrame({"height": np.arange(50.0)}).to_csv(files / "other.csv", index=False)
    out = files / "out"
    r = _run(["--input", str(files / "other.csv"), "--reference", str(files / "ref.parquet"), "--out", str(out)],
             files)
    assert r.exit_code == 0, r.output
    doc = _json(out)
    (quality,) = doc["detections"]
    assert quality["kind"] == "quality" and quality["extra"]["missing_columns"] == ["age", "colour", "income",
                                                                                     "score"]
    assert doc["summary"]["drift"] is True
    assert "columns missing vs reference" in (out / "report.html").read_text()


def test_performance_over_time_from_audited_labels_equals_sklearn(tmp_path):
    """Predictions audited, labels attached later by feedback events (some never): the report's
    per-window realized figures are scikit-learn's on the labelled rows of each window."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    data = tmp_path / "data"
    rng = np.random.default_rng(8)
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    n_req, rows = 60, 10
    store = SQLiteAuditStore(data / "audit.db")
    y = rng.integers(0, 2, (n_req, rows))
    p = np.clip(y * 0.35 + rng.random((n_req, rows)) * 0.65, 0, 1).round(3)
    pred = (p > 0.5).astype(int)
    x = rng.normal(size=(n_req, rows))
    labelled = rng.random((n_req, rows)) < 0.7
    preds = [InferenceRecord(id=f"r{i}", model="churn", version="v1", timestamp=t0 + timedelta(hours=i // 20),
                             inputs={"x": x[i].tolist()}, part="both",
                             outputs={"label": pred[i].tolist(), "proba": p[i].tolist()}) for i in range(n_req)]
    feedback = [InferenceRecord(id=f"r{i}", model="churn", part="feedback",
                                timestamp=t0 + timedelta(days=2),
                                truth={"truth": [int(v) if ok else None for v, ok in zip(y[i], labelled[i], strict=True)]})
                for i in rng.permutation(n_req)]
    store.write_records(preds)
    store.write_records(feedback)
    store.close()
    ReferenceStore(data / "references").register("churn", pd.DataFrame({"x": rng.normal(size=500)}), version="v1")
    cfg = tmp_path / "inferwatch.yaml"
    cfg.write_text(f"data_dir: {data}\ndetect:\n  detectors: [{{type: ks}}]\n  performance:\n"
                   "    prediction: label\n    scores: proba\n    window_seconds: 3600\n")
    out = tmp_path / "out"
    r = _run(["--config", str(cfg), "--model", "churn", "--out", str(out), "--top", "0"], tmp_path)
    assert r.exit_code == 0, r.output
    perf = _json(out)["performance"]
    assert [w["start"][:13] for w in perf] == ["2026-02-01T00", "2026-02-01T01", "2026-02-01T02"]
    for h, w in enumerate(perf):
        sl = slice(20 * h, 20 * (h + 1))
        lab = labelled[sl].ravel()
        yy, pp, hat = y[sl].ravel()[lab], p[sl].ravel()[lab], pred[sl].ravel()[lab]
        assert w["method"] == "realized" and w["rows"] == 200 and w["labelled"] == lab.sum()
        assert w["metrics"]["accuracy"] == pytest.approx(accuracy_score(yy, hat), rel=1e-12)
        assert w["metrics"]["f1"] == pytest.approx(f1_score(yy, hat), rel=1e-12)
        assert w["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(yy, pp), rel=1e-9)
    assert "Performance over time" in (out / "report.html").read_text()


def test_performance_estimated_by_cbpe_when_no_label_is_in(tmp_path):
    from detectors.performance import CBPE

    rng = np.random.default_rng(9)
    p_ref = rng.random(3000)
    ref = pd.DataFrame({"x": rng.normal(size=3000), "proba": p_ref, "label": (p_ref > 0.5).astype(int),
                        "truth": (rng.random(3000) < p_ref).astype(int)})
    ref.to_parquet(tmp_path / "ref.parquet")
    t0 = datetime(2026, 2, 1, tzinfo=UTC)
    p = rng.random((2, 400)) ** np.array([[1.0], [0.3]])  # the second hour is surer of class 1
    lines = [InferenceRecord(id=f"r{h}", model="churn", timestamp=t0 + timedelta(hours=h),
                             inputs={"x": rng.normal(size=400).tolist()},
                             outputs={"label": (p[h] > 0.5).astype(int).tolist(), "proba": p[h].tolist()}).to_json()
             for h in range(2)]
    (tmp_path / "rows.jsonl").write_bytes(b"\n".join(lines))
    cfg = tmp_path / "inferwatch.yaml"
    cfg.write_text("detect:\n  performance: {prediction: label, scores: proba, window_seconds: 3600, classes: [0, 1]}\n")
    out = tmp_path / "out"
    r = _run(["--config", str(cfg), "--input", str(tmp_path / "rows.jsonl"), "--reference",
              str(tmp_path / "ref.parquet"), "--out", str(out), "--top", "0"], tmp_path)
    assert r.exit_code == 0, r.output
    perf = _json(out)["performance"]
    assert [w["method"] for w in perf] == ["estimated", "estimated"]
    est = CBPE(scores="proba", classes=[0, 1], min_rows=1).fit(
        {"proba": ref["proba"], "prediction": ref["label"], "truth": ref["truth"]})
    for h, w in enumerate(perf):
        want = est.reset().update({"proba": p[h], "prediction": (p[h] > 0.5).astype(int)}).result()
        assert w["rows"] == 400
        for m in ("accuracy", "f1", "roc_auc"):
            assert w["metrics"][m] == pytest.approx(want.extra["metrics"][m], rel=1e-12)
    assert perf[1]["metrics"]["accuracy"] > perf[0]["metrics"]["accuracy"]


def test_the_report_imports_only_the_detectors_it_runs():
    """``detectors`` and its subpackages name their classes lazily: the report's default detector
    (and the registry) never import scikit-learn; a detector that needs it does, when built."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import inferwatch.report, detectors, detectors.drift, detectors.outlier\n"
        "from inferwatch.wiring import DETECTORS\n"
        "from detectors import TabularDrift, KSDrift, build_monitor\n"
        "TabularDrift(counts_after=10).fit({'x': [1.0, 2.0, 3.0]})\n"
        "before = 'sklearn' in sys.modules\n"
        "DETECTORS.get('classifier').load()()\n"
        "print(before, 'sklearn' in sys.modules, detectors.drift.ClassifierDrift.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True", "detectors.drift.classifier"]


def test_distribution_plot_counts_are_matplotlibs_histogram():
    """The plot's densities (counted once with numpy, drawn as steps) are what ``Axes.hist``
    computes on the same values and bins; category shares are counted per category."""
    from matplotlib.figure import Figure

    from sinks.report.charts import distribution_chart, distribution_summary

    rng = np.random.default_rng(4)
    ref, cur = pd.Series(rng.normal(0, 1, 5000)), pd.Series(np.r_[rng.normal(0.5, 2, 3000), [np.nan] * 7])
    d = distribution_summary(ref, cur)
    assert d is not None and d.numeric and (d.n_ref, d.n_cur) == (5000, 3000)
    ax = Figure().add_subplot()
    for side, values in ((d.ref, ref.dropna()), (d.cur, cur.dropna())):
        n, edges, _ = ax.hist(values, bins=d.edges, density=True)
        np.testing.assert_allclose(side, n, rtol=1e-12)
        np.testing.assert_array_equal(edges, d.edges)
    cats = distribution_summary(pd.Series(["a", "b", "b", None]), pd.Series(pd.Categorical(["b", "c", "c", "c"])))
    # ordered by the sum of both shares: b 2/3 + 1/4, c 0 + 3/4, a 1/3 + 0
    assert cats is not None and not cats.numeric and cats.categories == ["b", "c", "a"]
    np.testing.assert_allclose(cats.ref, [2 / 3, 0, 1 / 3])
    np.testing.assert_allclose(cats.cur, [1 / 4, 3 / 4, 0])
    png = base64.b64decode(distribution_chart("x", d, None, "p = 0.001") or "")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

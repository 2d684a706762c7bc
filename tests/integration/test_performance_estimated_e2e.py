"""Estimated performance in the streaming detect role, on the real stack (issue 14).

A classifier and a regressor served side by side; their predictions (inputs and outputs in one
record) replayed through the collector onto Kafka, three chunks of 2,000 rows under covariate
shift, one chunk per hour of prediction time; the detect role configured with CBPE and DLE like
any detector (``detect.detectors``, count windows of 2,000 rows), fitted on a labelled reference,
restarted half-way, with records re-sent after the restart. Labels come afterwards, through the
feedback endpoint, for the realized figures (``detect.performance``).

Oracles and tolerances (derived as in tests/unit/test_performance_cbpe.py and _dle.py):

* NannyML 0.13.1 (its own venv, ``make nannyml-venv``; a subprocess) on the same reference and the
  same chunks. CBPE is the same estimator: the streaming figures must be within 1% of NannyML's
  sampling error of that chunk and metric. DLE fits the same conditional expectations with another
  boosting library (scikit-learn's histogram GBM here, LightGBM there): within one of NannyML's
  sampling errors. A record counted twice (a replay after the restart) or lost would shift every
  later window's rows, and the estimates with them.
* The realized figures, once the labels arrived (labels drawn independently given the score, whose
  relation to the label is the same in every chunk: CBPE's assumption, held exactly): the
  estimated accuracy within 4 of the estimator's standard errors (false failure ~6e-5 per window
  under normality, ignoring the calibration's own error on 5,000 reference rows; the data are
  seeded). NannyML's realized figures are scikit-learn's, and ours must equal them (rel 1e-9).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from inferwatch.config import load_config
from inferwatch.kafka_log import KafkaLog
from inferwatch.pipeline import Pipeline
from inferwatch.record import Detection
from inferwatch.references import ReferenceStore
from tests.integration.scaled import delete_test_indices, e2e_overrides
from tests.reference import run_nannyml
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = datetime(2026, 8, 3, 9, 0, tzinfo=UTC)
CHUNK = 2000
SHIFTS = (0.0, 0.5, -0.7)
FEATURES = ["x0", "x1", "x2"]
W = np.array([1.0, -2.0, 0.5])
PER_RECORD = 20
CBPE_METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")


def draw(rng: np.random.Generator, n: int, shift: float) -> dict[str, np.ndarray]:
    """Inputs; the classifier's probability (a monotone function of ``x @ W``) and its label drawn
    from another function of it (miscalibrated: calibration has work to do); the regressor's
    prediction ``x @ W`` and a target with more noise where ``x0 > 0.5``."""
    x = rng.normal(size=(n, 3)) + np.array([shift, 0.0, 0.0])
    z = x @ W
    proba = 1 / (1 + np.exp(-z / 2))
    truth = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    y = z + rng.normal(size=n) * (0.5 + 1.0 * (x[:, 0] > 0.5))
    return {"x": x, "proba": proba, "label": (proba > 0.5).astype(int), "truth": truth, "yhat": z, "y": y}


def test_streaming_estimates_match_nannyml_and_the_realized_figures(stack_env, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    model = f"est-{tag}"
    rng = np.random.default_rng(1414)
    ref = draw(rng, 5000, 0.0)
    chunks = [draw(rng, CHUNK, s) for s in SHIFTS]
    ana = {k: np.concatenate([c[k] for c in chunks]) for k in ref}
    n = len(ana["label"])

    # NannyML on the same data, in its own venv
    np.savez(tmp_path / "cbpe.npz", ref_scores=np.column_stack([1 - ref["proba"], ref["proba"]]),
             ref_pred=ref["label"], ref_truth=ref["truth"],
             ana_scores=np.column_stack([1 - ana["proba"], ana["proba"]]), ana_pred=ana["label"],
             ana_truth=ana["truth"])
    np.savez(tmp_path / "dle.npz", ref_x=ref["x"], ref_pred=ref["yhat"], ref_truth=ref["y"],
             ana_x=ana["x"], ana_pred=ana["yhat"], ana_truth=ana["y"])
    nml_cbpe = run_nannyml.run("nannyml_cbpe.py", tmp_path / "cbpe.npz", CHUNK)
    nml_dle = run_nannyml.run("nannyml_dle.py", tmp_path / "dle.npz", CHUNK)
    assert [c["start"] for c in nml_cbpe] == [c["start"] for c in nml_dle] == [0, CHUNK, 2 * CHUNK]

    cfg = load_config(None, env={}, overrides=e2e_overrides(stack_env, tag, tmp_path / "data", **{
        "detect.window": {"type": "count", "size": CHUNK},
        "detect.detectors": [
            {"type": "cbpe", "scores": "proba", "prediction": "label", "min_rows": 100},
            {"type": "dle", "features": FEATURES, "prediction": "yhat", "truth": "y", "min_rows": 100},
        ],
        "detect.performance": {"classes": [0, 1], "prediction": "label", "scores": "proba", "truth": "truth",
                               "window_seconds": 3600, "min_labelled": 30},
    }))
    refs = ReferenceStore(cfg.references_path)
    refs.register(model, pd.DataFrame({**{f: ref["x"][:, j] for j, f in enumerate(FEATURES)},
                                       **{k: ref[k] for k in ("label", "proba", "truth", "yhat", "y")}}))

    def body(r: int) -> dict:
        sl = slice(r * PER_RECORD, (r + 1) * PER_RECORD)
        hour, offset = divmod(r * PER_RECORD, CHUNK)
        return {"model": model, "version": "v1", "id": f"{tag}-e{r}",
                "timestamp": (T0 + timedelta(hours=hour, seconds=offset)).isoformat(),
                "inputs": {f: ana["x"][sl, j].tolist() for j, f in enumerate(FEATURES)},
                "outputs": {k: ana[k][sl].tolist() for k in ("label", "proba", "yhat")}}

    def post(c: httpx.Client, path: str, payload: object) -> None:
        r = c.post(path, json=payload)
        assert r.status_code == 202, r.text

    seen: list[Detection] = []
    kafka = KafkaLog(cfg.kafka)
    pipe = Pipeline(cfg, on_detection=seen.append)
    n_rec = n // PER_RECORD
    try:
        pipe.start()
        with httpx.Client(base_url=f"http://127.0.0.1:{pipe.bound_port}", timeout=60) as c:
            half = n_rec // 2 + 7  # the restart falls inside the second window
            for k in range(0, half, 50):
                post(c, "/v1/records", [body(r) for r in range(k, min(k + 50, half))])
            assert pipe.wait_idle(timeout=300)
        pipe.stop()
        pipe = Pipeline(cfg, on_detection=seen.append)  # every role restarted
        pipe.start()
        with httpx.Client(base_url=f"http://127.0.0.1:{pipe.bound_port}", timeout=60) as c:
            post(c, "/v1/records", [body(r) for r in range(half - 30, half)])  # re-sent: counted once
            for k in range(half, n_rec, 50):
                post(c, "/v1/records", [body(r) for r in range(k, min(k + 50, n_rec))])
            wait_until(lambda: pipe.wait_idle(timeout=5) and len({d.window_start for d in seen
                                                                   if d.detector == "cbpe"}) >= 3,
                       300, "three estimated windows")
            metrics = c.get("/metrics").text
            # the labels, later and shuffled, for the realized figures
            order = rng.permutation(n)
            items = [{"id": f"{tag}-e{i // PER_RECORD}", "row": i % PER_RECORD, "truth": int(ana["truth"][i]),
                      "model": model} for i in order.tolist()]
            for k in range(0, n, 500):
                post(c, "/v1/feedback", items[k:k + 500])

            def labelled() -> bool:
                last = {d.window_start: d for d in seen if d.detector == "performance"}
                return pipe.wait_idle(timeout=5) and len(last) == 3 and all(
                    d.extra["labelled"] == CHUNK for d in last.values())

            wait_until(labelled, 300, "every window's labels")

        # one figure per window: a window emitted again (a replay after the restart) must repeat
        # its figures exactly, never count its rows twice
        estimated: dict[str, list[Detection]] = {}
        for det in ("cbpe", "dle"):
            windows: dict[datetime | None, list[Detection]] = {}
            for d in seen:
                if d.detector == det:
                    windows.setdefault(d.window_start, []).append(d)
            for copies in windows.values():
                assert all(d.extra["metrics"] == copies[0].extra["metrics"] for d in copies), det
            estimated[det] = [windows[w][0] for w in sorted(windows, key=lambda w: w or T0)]
        realized = {d.window_start: d for d in seen if d.detector == "performance"}
        worst = {"cbpe": 0.0, "dle": 0.0, "realized": 0.0}
        for k, (ours, dle, theirs, their_dle) in enumerate(zip(estimated["cbpe"], estimated["dle"], nml_cbpe,
                                                                 nml_dle, strict=True)):
            assert ours.window_size == dle.window_size == CHUNK and ours.version == "v1"
            assert ours.extra["method"] == "cbpe" and dle.extra["method"] == "dle"
            for m in CBPE_METRICS:
                value, want = ours.extra["metrics"][m], theirs[m]
                assert abs(value - want["value"]) <= 0.01 * want["sampling_error"], (k, m, value, want)
                worst["cbpe"] = max(worst["cbpe"], abs(value - want["value"]) / want["sampling_error"])
            for m in ("mae", "rmse"):
                value, want = dle.extra["metrics"][m], their_dle[m]
                assert abs(value - want["value"]) <= want["sampling_error"], (k, m, value, want)
                worst["dle"] = max(worst["dle"], abs(value - want["value"]) / want["sampling_error"])
            real = realized[T0 + timedelta(hours=k)]
            assert real.window_size == CHUNK
            for m in ("accuracy", "roc_auc", "f1", "precision", "recall"):
                assert real.extra["metrics"][m] == pytest.approx(theirs[m]["realized"], rel=1e-9), (k, m)
            se = ours.extra["standard_error"]["accuracy"]
            gap = ours.extra["metrics"]["accuracy"] - real.extra["metrics"]["accuracy"]
            assert abs(gap) <= 4 * se, (k, gap, se)
            worst["realized"] = max(worst["realized"], abs(gap) / se)
            print(f"window {k} (shift {SHIFTS[k]:+.1f}): accuracy estimated {ours.extra['metrics']['accuracy']:.4f}, "
                  f"NannyML {theirs['accuracy']['value']:.4f}, realized {real.extra['metrics']['accuracy']:.4f}; "
                  f"MAE estimated {dle.extra['metrics']['mae']:.4f}, NannyML {their_dle['mae']['value']:.4f}, "
                  f"realized {their_dle['mae']['realized']:.4f}")
        print(f"largest |streaming CBPE - NannyML| = {worst['cbpe']:.2e} sampling errors; DLE {worst['dle']:.2f}; "
              f"largest |estimated - realized accuracy| = {worst['realized']:.2f} standard errors")

        # the estimates on /metrics, as inferwatch_model_performance{method="cbpe"|"dle"} (newest window)
        newest = estimated["cbpe"][-1].extra["metrics"]["accuracy"]
        line = next(ln for ln in metrics.splitlines() if ln.startswith("inferwatch_model_performance{")
                    and 'method="cbpe"' in ln and 'metric="accuracy"' in ln and f'model="{model}"' in ln)
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(newest, rel=1e-12)
        assert any('method="dle"' in ln and 'metric="mae"' in ln and f'model="{model}"' in ln
                   for ln in metrics.splitlines())
    finally:
        pipe.stop()
        delete_test_indices(stack_env["INFERWATCH_ELASTICSEARCH_HOSTS"], tag)
        kafka.delete_topics([cfg.log.records_topic, cfg.log.detections_topic, cfg.log.deadletter_topic])
        kafka.close()

"""``inferwatch demo``: the main job end to end on the embedded default (no servers).

1. Train a logistic regression on scikit-learn's bundled breast-cancer data (no download);
   register its training split as the drift reference.
2. Start the pipeline in this process: collector on a free loopback port, SQLite log, SQLite
   audit store, a per-feature Kolmogorov-Smirnov detector (Bonferroni) over count windows.
3. Send KServe payload-logger CloudEvents (request and response halves, batches of rows):
   a *held-out* phase drawn without replacement from the test split (no drift expected: a true
   null), then a *shifted* phase drawn from one subpopulation (malignant tumours only — a real
   covariate shift).
   Two malformed payloads show the dead-letter path.
4. Wait until audit and detectors have caught up, stop everything, and summarise.
"""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from inferwatch.audit import SearchQuery
from inferwatch.config import load_config
from inferwatch.errors import InferwatchError
from inferwatch.record import Detection

__all__ = ["print_summary", "run_demo"]

MODEL = "breast-cancer"
VERSION = "v1"
BATCH = 10


def _data(seed: int) -> tuple[Any, Any, Any, Any, list[str], Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds = load_breast_cancer(as_frame=True)
    X, y = ds.data, ds.target
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.6, random_state=seed, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_train, y_train)
    return X_train, X_test, y_train, y_test, list(ds.target_names), model


def _events(rows: Any, model: Any, names: list[str], start: datetime) -> list[tuple[dict[str, str], bytes]]:
    """KServe logger CloudEvents (request + response per batch) for the rows of a DataFrame."""
    out = []
    for i in range(0, len(rows), BATCH):
        chunk = rows.iloc[i : i + BATCH]
        req_id = str(uuid.uuid4())
        when = (start + timedelta(milliseconds=i)).isoformat()
        proba = model.predict_proba(chunk)
        preds = [{"label": names[int(np.argmax(p))], "probability": round(float(np.max(p)), 6)} for p in proba]
        common = {"ce-id": req_id, "ce-specversion": "1.0", "ce-source": "http://localhost:9081/",
                  "ce-inferenceservicename": MODEL, "ce-namespace": "demo", "ce-endpoint": "default",
                  "ce-modelversion": VERSION,
                  "ce-component": "predictor", "ce-time": when, "content-type": "application/json"}
        req = orjson.dumps({"instances": chunk.to_dict(orient="records")}, option=orjson.OPT_SERIALIZE_NUMPY)
        resp = orjson.dumps({"predictions": preds})
        out.append(({**common, "ce-type": "org.kubeflow.serving.inference.request"}, req))
        out.append(({**common, "ce-type": "org.kubeflow.serving.inference.response"}, resp))
    return out


def run_demo(*, seed: int = 0, data_dir: Path = Path("inferwatch-demo"), rows_per_phase: int = 300,
             window: int = 100, progress: bool = True) -> dict[str, Any]:
    """Run the demo and return its summary (see :func:`print_summary`)."""
    from inferwatch.pipeline import Pipeline
    from inferwatch.references import ReferenceStore

    t0 = time.monotonic()
    data_dir = Path(data_dir)
    for name in ("log.db", "audit.db", "references", "metrics.prom"):
        p = data_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        for q in (p, p.with_name(p.name + "-wal"), p.with_name(p.name + "-shm")):
            if q.is_file():
                q.unlink()
    data_dir.mkdir(parents=True, exist_ok=True)

    X_train, X_test, _, y_test, names, model = _data(seed)
    cfg = load_config(None, env={}, overrides={
        "data_dir": str(data_dir),
        "collector.port": 0,
        "detect.window": {"type": "count", "size": window},
        "detect.detectors": [{"type": "ks", "p_val": 0.05, "correction": "bonferroni"}],
    })
    ref = ReferenceStore(cfg.references_path).register(
        MODEL, X_train.reset_index(drop=True), version=VERSION,
        source=f"sklearn breast_cancer, train split (seed {seed})")

    rng = np.random.default_rng(seed)
    if rows_per_phase > len(X_test):
        raise InferwatchError(f"--rows-per-phase is at most {len(X_test)} (the held-out split, sent without "
                              "replacement so the no-drift phase is a true null)")
    held_out = X_test.iloc[rng.permutation(len(X_test))[:rows_per_phase]]
    malignant = X_test[y_test.values == 0]
    shifted = malignant.iloc[rng.integers(0, len(malignant), rows_per_phase)]
    now = datetime.now(UTC)
    phases = [("held-out", _events(held_out, model, names, now)),
              ("shifted", _events(shifted, model, names, now + timedelta(minutes=1)))]
    phase2_start = now + timedelta(minutes=1)

    detections: list[Detection] = []
    pipeline = Pipeline(cfg, on_detection=detections.append)
    statuses: dict[int, int] = {}
    try:
        pipeline.start()
        url = f"http://127.0.0.1:{pipeline.bound_port}/"
        with httpx.Client(timeout=30) as client:
            bar: Any = None
            if progress:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                )

                bar = Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                               TimeElapsedColumn())
                bar.start()
            try:
                for phase, events in phases:
                    task = bar.add_task(f"sending {phase}", total=len(events)) if bar else None
                    for headers, body in events:
                        r = client.post(url, content=body, headers=headers)
                        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                        if bar:
                            bar.advance(task)
                # two malformed payloads: not JSON, and JSON in no known protocol
                for body in (b"\xff\xfe not json", b'[1, {"features": "?"}]'):
                    r = client.post(url, content=body, headers={
                        "ce-id": str(uuid.uuid4()), "ce-type": "org.kubeflow.serving.inference.request",
                        "ce-inferenceservicename": MODEL, "ce-specversion": "1.0", "ce-source": "demo"})
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                task = bar.add_task("audit + detectors", total=None) if bar else None
                if not pipeline.wait_idle(timeout=90):
                    raise InferwatchError("the pipeline did not catch up within 90 s")
                if bar:
                    bar.update(task, total=1, completed=1)
            finally:
                if bar:
                    bar.stop()
        (data_dir / "metrics.prom").write_bytes(pipeline.metrics.exposition())
        store = pipeline.store
        assert store is not None
        audited = store.count(SearchQuery(kind="records", model=MODEL))
        dead = store.count(SearchQuery(kind="deadletters"))
        stored_detections = store.count(SearchQuery(kind="detections", model=MODEL))
        port = pipeline.bound_port
    finally:
        pipeline.stop()

    windows: list[dict[str, Any]] = []
    for d in sorted(detections, key=lambda d: d.window_start or d.timestamp):
        phase = "shifted" if d.window_start and d.window_start >= phase2_start else "held-out"
        windows.append({"phase": phase, "detector": d.detector, "rows": d.window_size, "drift": bool(d.is_drift),
                        "p_value": d.p_value, "drifted_features": d.drifted_features})
    by_phase = {p: {"windows": sum(w["phase"] == p for w in windows),
                    "drift": sum(bool(w["phase"] == p and w["drift"]) for w in windows)} for p in ("held-out", "shifted")}
    expected_docs = 2 * rows_per_phase
    summary = {
        "seed": seed,
        "rows_sent": 2 * rows_per_phase,
        "requests": sum(statuses.values()),
        "http_status": {str(k): v for k, v in sorted(statuses.items())},
        "audited_documents": audited,
        "deadletters": dead,
        "detections_stored": stored_detections,
        "windows": windows,
        "phases": by_phase,
        "reference": {"id": ref.id, "rows": ref.rows, "columns": len(ref.columns)},
        "data_dir": str(data_dir.resolve()),
        "audit_db": str(cfg.audit_path.resolve()),
        "log_db": str(cfg.log_path.resolve()),
        "metrics": str((data_dir / "metrics.prom").resolve()),
        "metrics_url_during_run": f"http://127.0.0.1:{port}/metrics",
        "seconds": round(time.monotonic() - t0, 1),
    }
    summary["ok"] = bool(audited == expected_docs and dead == 2 and by_phase["shifted"]["windows"] > 0
                         and by_phase["held-out"]["windows"] > 0)
    summary["verdict"] = (
        f"held-out phase: drift in {by_phase['held-out']['drift']} of {by_phase['held-out']['windows']} windows; "
        f"shifted phase: drift in {by_phase['shifted']['drift']} of {by_phase['shifted']['windows']} windows")
    return summary


def print_summary(s: dict[str, Any]) -> None:
    """Print a demo summary for people."""
    from rich.console import Console
    from rich.table import Table

    c = Console()
    t = Table(title="drift windows (KS per feature, Bonferroni, alpha 0.05)")
    for col in ("phase", "rows", "drift", "p-value", "drifted features"):
        t.add_column(col)
    for w in s["windows"]:
        feats = w["drifted_features"]
        t.add_row(w["phase"], str(w["rows"]), "[red]YES[/red]" if w["drift"] else "[green]no[/green]",
                  "" if w["p_value"] is None else f"{w['p_value']:.2g}",
                  ", ".join(feats[:4]) + (f" (+{len(feats) - 4} more)" if len(feats) > 4 else ""))
    c.print(t)
    c.print(f"rows sent: {s['rows_sent']} in {s['requests']} requests (HTTP {s['http_status']})")
    c.print(f"audited documents: {s['audited_documents']}   dead letters: {s['deadletters']}   "
            f"detections stored: {s['detections_stored']}")
    c.print(f"[bold]{s['verdict']}[/bold]")
    c.print(f"audit database: {s['audit_db']}  \n  search it: INFERWATCH_DATA_DIR={s['data_dir']} inferwatch search --model {MODEL}")
    c.print(f"metrics: {s['metrics']} (served at {s['metrics_url_during_run']} while running)")
    c.print(f"finished in {s['seconds']} s" + ("" if s["ok"] else "  [red]— something went wrong[/red]"))

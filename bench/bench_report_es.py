"""``inferwatch report --source elasticsearch`` over millions of audited rows: exact (rows streamed
through a point in time) against binned (distributions counted in the cluster), time, peak
memory, bytes moved and the difference in p-values.

Loads ``--rows`` rows (``--numeric`` numerical + ``--categorical`` categorical inputs, 40 + 10 by
default like the file bench; after ``--drift-from`` of the time span num0 is shifted slightly,
num1 clearly, num2 spreads wider and cat0's last category is more frequent) through the audit store's own write path
(``ElasticsearchAuditStore.write_records``: the documents the audit role writes, with
``input_num`` and the full-text parts; records of ``--per-record`` rows, no raw bodies),
``--threads`` stores at once, into the daily records indices of a fresh prefix made with
``refresh_interval: -1``, asynchronous translog and rare flushes (restored after the load).
Then runs, each in a subprocess measured alone (wall time, peak RSS from ``os.wait4``, bytes of
search answers from the node's HTTP route statistics):

``--runs`` (default, in this order: binned first, the exact runs are the long ones):
``--mode binned`` over the whole range; ``--mode binned --every 1h`` (one window per time
bucket, a ``date_histogram``); ``--mode exact`` over the whole range; ``--mode exact --every 1h``.

Prints the table, the ratios exact / binned, per feature the p-values of both modes and the
largest gap per test, and per run the drift check: the windows each planted feature was flagged
in, and the false alarms of the others. The indices and templates are deleted at the end (also
on failure) unless ``--keep``; ``--load-only`` loads and keeps; ``--prefix`` reuses rows already
loaded; ``--prefix P --resume`` loads the rows of the ``--rows`` layout not there yet (rows are
deterministic per 20,000-row chunk), ``--stop-file`` ends a load early between chunks.

    python bench/bench_report_es.py [--rows 3000000] [--numeric 40] [--categorical 10] [--hours 24]
        [--every 1h] [--threads 3] [--per-record 100] [--prefix P [--resume]] [--drift-from 0.5]
        [--stop-file F] [--runs binned,binned-every,exact,exact-every] [--out-dir D] [--load-only] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_report_scale import measure  # noqa: E402

CATS = np.asarray([f"c{i}" for i in range(12)], dtype=object)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def frame(rng: np.random.Generator, n: int, n_num: int, n_cat: int, shifted: bool) -> pd.DataFrame:
    """``n`` rows; ``shifted``: the planted drift (num0 +0.05 sd, slight; num1 +0.15 sd, clear;
    num2's spread x1.1; cat0's last category 1.5 times as likely). Every other feature is drawn
    from the reference's distribution."""
    cols: dict[str, object] = {}
    for j in range(n_num):
        shift = (0.05 if j == 0 else 0.3 if j == 1 else 0.0) if shifted else 0.0  # num0 slightly, num1 clearly
        scale = (1.0 + j % 3) * (1.1 if shifted and j == 2 else 1.0)
        cols[f"num{j}"] = np.round(rng.normal(shift + j % 5, scale, n), 6)
    p = np.linspace(2, 1, len(CATS))
    for j in range(n_cat):
        q = p.copy()
        if shifted and j == 0:
            q[-1] *= 1.5
        cols[f"cat{j}"] = CATS[rng.choice(len(CATS), n, p=q / q.sum())]
    return pd.DataFrame(cols)


DRIFTED = ("num0", "num1", "num2", "cat0")  # the features ``frame(shifted=True)`` moves


def load(hosts: str, prefix: str, model: str, rows: int, n_num: int, n_cat: int, hours: int, *,
         threads: int = 3, per_record: int = 100, chunk_actions: int = 2000, start_row: int = 0,
         drift_from: float = 0.5, stop_file: Path | None = None) -> tuple[float, int]:
    """Load rows ``start_row`` .. ``rows`` of the layout (row ``g`` at ``hours * g / rows`` after
    T0, drifted from row ``drift_from * rows`` on; each 20,000-row chunk drawn from its own seed,
    so a resumed load writes the same rows an uninterrupted one would, and a row written twice
    is one document: ``create`` falls back to the merge) through the audit store's own write path (``write_records``: the documents
    the audit role writes, ``input``, ``input_num`` and the full-text parts), ``threads`` stores
    writing at once (each its own client), records of ``per_record`` rows (a batch request; no
    raw bodies). The daily indices are made first from the template with ``refresh_interval:
    -1``, asynchronous translog and rare flushes, restored after (indices that exist are kept).
    Stops early, between chunks, when ``stop_file`` exists. Seconds taken and rows written."""
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    from inferwatch.config import ElasticsearchConfig
    from inferwatch.record import InferenceRecord
    from sinks.elasticsearch import ElasticsearchAuditStore

    cfg = ElasticsearchConfig(hosts=[hosts], index_prefix=prefix, chunk_actions=chunk_actions,
                              chunk_bytes=16 * 2**20, request_timeout=600)
    first = ElasticsearchAuditStore(cfg)  # the templates
    span = hours * 3600.0
    days = sorted({f"{T0 + timedelta(seconds=s):%Y.%m.%d}" for s in np.linspace(0, span, 1000)})
    indices = [f"{prefix}-records-{model}-{d}" for d in days]
    for index in indices:
        if first.es.indices.exists(index=index):
            first.es.indices.put_settings(index=index, settings={
                "refresh_interval": "-1", "translog.durability": "async",
                "translog.flush_threshold_size": "4gb", "translog.flush_threshold_age": "30m"})
            continue
        first.es.indices.create(index=index, settings={"refresh_interval": "-1", "number_of_replicas": 0,
                                                      "translog.durability": "async",
                                                      "translog.flush_threshold_size": "4gb",
                                                      "translog.flush_threshold_age": "30m"})
    local = threading.local()

    def write(records: list[object]) -> int:
        store = getattr(local, "store", None)
        if store is None:
            store = local.store = ElasticsearchAuditStore(cfg, setup=False)
        return int(store.write_records(records))

    t0 = time.perf_counter()
    written = 0
    step = 20_000
    drift_row = int(drift_from * rows) // step * step
    pending: set[Future[int]] = set()
    with ThreadPoolExecutor(threads) as pool:
        for start in range(start_row // step * step, rows, step):
            if stop_file is not None and stop_file.exists():
                print(f"  stopped at {start} rows ({stop_file} exists)", flush=True)
                break
            n = min(step, rows - start)
            f = frame(np.random.default_rng([5, start]), n, n_num, n_cat, shifted=start >= drift_row)
            names = list(f.columns)
            values = [f[c].tolist() for c in names]
            records = []
            for k in range(0, n, per_record):
                g = start + k
                records.append(InferenceRecord(
                    id=f"b{g}", model=model, timestamp=T0 + timedelta(seconds=span * g / rows), part="both",
                    inputs={c: v[k : k + per_record] for c, v in zip(names, values, strict=True)}))
            while len(pending) >= 2 * threads:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                written += sum(x.result() for x in done)
            pending.add(pool.submit(write, records))
            if start % 100_000 == 0:
                el = time.perf_counter() - t0
                print(f"  {start + n} rows sent, {written} written, {el:.0f} s, {written / max(el, 1e-9):.0f} rows/s, "
                      f"load average {os.getloadavg()[0]:.1f}", flush=True)
        for x in pending:
            written += x.result()
    for index in indices:
        first.es.indices.put_settings(index=index, settings={"refresh_interval": "1s",
                                                            "translog.durability": "request",
                                                            "translog.flush_threshold_size": None,
                                                            "translog.flush_threshold_age": None})
    first.es.indices.refresh(index=f"{prefix}-records-*")
    first.close()
    return time.perf_counter() - t0, written


def _search_bytes(es: object) -> int:
    """Bytes the node has sent in answers to searches so far (its HTTP route statistics: both
    ``/<index>/_search`` and the point-in-time ``/_search``)."""
    stats = es.nodes.stats(metric="http", filter_path="nodes.*.http.routes")  # type: ignore[attr-defined]
    total = 0
    for node in stats["nodes"].values():
        for route, s in node["http"]["routes"].items():
            if route.endswith("_search"):
                total += int(s["responses"]["total_size_in_bytes"])
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--ref-rows", type=int, default=100_000)
    ap.add_argument("--numeric", type=int, default=40)
    ap.add_argument("--categorical", type=int, default=10)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--every", default="1h", help="the time buckets of the drift-over-time runs")
    ap.add_argument("--bins", type=int, default=100)
    ap.add_argument("--threads", type=int, default=3, help="stores writing at once during the load")
    ap.add_argument("--per-record", type=int, default=100, help="rows per audited record (a batch request)")
    ap.add_argument("--prefix", default=None, help="reuse the rows already loaded under this prefix")
    ap.add_argument("--resume", action="store_true",
                    help="with --prefix: load the rows of the --rows layout not there yet (a cut-short load "
                         "goes on; rows loaded before drift was planted stay as they are)")
    ap.add_argument("--drift-from", type=float, default=0.5,
                    help="the fraction of the time span after which the rows drift (" + ", ".join(DRIFTED) + ")")
    ap.add_argument("--stop-file", type=Path, default=None,
                    help="the load stops between chunks when this file exists (then reports on what is there)")
    ap.add_argument("--load-only", action="store_true", help="load, print the prefix, keep the rows, stop")
    ap.add_argument("--runs", default="binned,binned-every,exact,exact-every",
                    help="the report runs, in order (binned first: exact over millions of rows is the long one)")
    ap.add_argument("--out-dir", type=Path, default=None, help="keep each run's report here")
    ap.add_argument("--keep", action="store_true", help="keep the indices at the end (default: deleted)")
    ap.add_argument("--hosts", default=os.environ.get("INFERWATCH_ELASTICSEARCH_HOSTS", "http://127.0.0.1:9200"))
    args = ap.parse_args()

    from elasticsearch import Elasticsearch

    prefix = args.prefix or "bench-" + uuid.uuid4().hex[:8]
    model = "scale"
    es = Elasticsearch(args.hosts, request_timeout=600)
    # the first drifted row's time (the layout's: --rows rows over --hours, as loaded)
    drift_at = T0 + timedelta(seconds=args.hours * 3600.0 * (int(args.drift_from * args.rows) // 20_000 * 20_000)
                              / args.rows)
    print(f"prefix {prefix}; load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores", flush=True)
    rows: list[tuple[str, float, float, float, int]] = []
    docs: dict[str, Any] = {}
    keep = args.keep or args.load_only
    try:
        with tempfile.TemporaryDirectory(prefix="bench-es-") as tmp:
            d = Path(tmp)
            ref = d / "reference.parquet"
            frame(np.random.default_rng(1), args.ref_rows, args.numeric, args.categorical, False).to_parquet(ref)
            if args.prefix and not args.resume:  # a load cut short keeps its load-time settings: restored here
                es.indices.put_settings(index=f"{prefix}-records-*", settings={
                    "refresh_interval": "1s", "translog.durability": "request",
                    "translog.flush_threshold_size": None, "translog.flush_threshold_age": None})
                es.indices.refresh(index=f"{prefix}-records-*")
                secs, written = float("nan"), 0
            else:
                start_row = 0
                if args.resume:
                    es.indices.refresh(index=f"{prefix}-records-*", allow_no_indices=True)
                    there = es.count(index=f"{prefix}-records-*", allow_no_indices=True)["count"]
                    # the chunks in flight when a load stopped finish out of order: go back over them
                    start_row = max(0, there - 2 * args.threads * 20_000)
                    print(f"{there} rows there; loading rows {start_row} .. {args.rows}", flush=True)
                secs, written = load(args.hosts, prefix, model, args.rows, args.numeric, args.categorical,
                                     args.hours, threads=args.threads, per_record=args.per_record,
                                     start_row=start_row, drift_from=args.drift_from, stop_file=args.stop_file)
            count = es.count(index=f"{prefix}-records-*")["count"]
            args.rows = count
            size = sum(int(s["total"]["store"]["size_in_bytes"]) for s in
                       es.indices.stats(index=f"{prefix}-records-*", metric="store")["indices"].values())
            print(f"{count} rows there; wrote {written} in {secs:.0f} s ({written / secs:.0f} rows/s, {args.threads} "
                  f"writers, {args.per_record} rows per record), {size / 2**20:.0f} MiB on disk", flush=True)
            if args.load_only:
                return
            env_cmd = [sys.executable, "-c", "from inferwatch.cli import main; main()", "report", "--source",
                       "elasticsearch", "--model", model, "--reference", str(ref), "--quiet", "--bins",
                       str(args.bins), "--top", str(args.numeric + args.categorical)]
            os.environ["INFERWATCH_ELASTICSEARCH_HOSTS"] = args.hosts
            os.environ["INFERWATCH_ELASTICSEARCH_INDEX_PREFIX"] = prefix
            out_dir = args.out_dir or d
            out_dir.mkdir(parents=True, exist_ok=True)
            for run in args.runs.split(","):
                mode, _, per = run.partition("-")
                extra = ["--every", args.every] if per else []
                name = f"{mode}{' ' + ' '.join(extra) if extra else ''}"
                out = out_dir / name.replace(" ", "_")
                # cold: the node's request cache would answer a repeated aggregation in milliseconds
                es.indices.clear_cache(index=f"{prefix}-records-*", request=True, query=True, fielddata=True)
                before = _search_bytes(es)
                wall, cpu, peak, text = measure([*env_cmd, "--mode", mode, "--out", str(out), *extra])
                moved = _search_bytes(es) - before
                rows.append((name, wall, cpu, peak, moved))
                docs[name] = json.loads((out / "report.json").read_text())
                print(f"{name}: {wall:.1f} s ({cpu:.1f} s CPU), peak RSS {peak:.0f} MiB, {moved / 1024:.0f} KiB of "
                      f"search answers; {text.splitlines()[0]}", flush=True)
    finally:
        if not keep:
            names = list(es.indices.get(index=f"{prefix}-*", allow_no_indices=True).body)
            if names:
                es.indices.delete(index=",".join(names))
            for t in ("records", "detections", "deadletters"):
                es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-{t}")
    summarise(rows, docs, args, drift_at)


def drift_check(doc: dict[str, Any], drift_at: datetime) -> str:
    """Which windows each planted feature was flagged in (against the windows that hold drifted
    rows), and the false alarms: flagged (feature, window) pairs of the other features, and the
    windows without drifted rows in which any feature fired (each window's family-wise rate is
    at most alpha under the correction)."""
    wins = doc["windows"]
    drifted = [i for i, w in enumerate(wins) if w["end"] is None or datetime.fromisoformat(w["end"]) > drift_at]
    clean = [i for i in range(len(wins)) if i not in drifted]
    parts = []
    for f in doc["features"]:
        if f["feature"] in DRIFTED:
            hit = [i for i, x in enumerate(f["drift"]) if x]
            parts.append(f"{f['feature']} flagged in {sum(i in drifted for i in hit)} of {len(drifted)} drifted "
                         f"window(s), {sum(i in clean for i in hit)} of {len(clean)} clean")
    others = sum(x for f in doc["features"] if f["feature"] not in DRIFTED for x in f["drift"])
    fired_clean = sum(bool(wins[i]["drifted_features"]) for i in clean)
    n_other = sum(f["feature"] not in DRIFTED for f in doc["features"])
    alpha = doc["windows"][0]["threshold"] if wins else float("nan")
    parts.append(f"false alarms: {others} of {n_other * len(wins)} (feature, window) pairs of the {n_other} "
                 f"undrifted features; {fired_clean} of {len(clean)} clean window(s) fired (alpha {alpha} each)")
    return "; ".join(parts)


def summarise(rows: list[tuple[str, float, float, float, int]], docs: dict[str, Any], args: argparse.Namespace,
              drift_at: datetime) -> None:
    print(f"\n{'run':<22} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13} {'rows/s':>10} {'answers KiB':>12}")
    for name, wall, cpu, peak, moved in rows:
        print(f"{name:<22} {wall:>8.1f} {cpu:>8.1f} {peak:>13.0f} {args.rows / wall:>10.0f} {moved / 1024:>12.0f}")
    by = {n: (w, m) for n, w, _, _, m in rows}
    ev = f"--every {args.every}"
    for a, b in (("exact", "binned"), (f"exact {ev}", f"binned {ev}")):
        if a not in docs or b not in docs:
            continue
        print(f"{a} / {b}: wall {by[a][0] / by[b][0]:.1f}, bytes of search answers {by[a][1] / max(by[b][1], 1):.0f}")
        fa = {(f["feature"]): f for f in docs[a]["features"]}
        fb = {(f["feature"]): f for f in docs[b]["features"]}
        worst: dict[str, tuple[float, str]] = {}
        for feat in sorted(fa):
            pa, pb = fa[feat]["p_values"], fb[feat]["p_values"]
            diff = max((abs(x - y) for x, y in zip(pa, pb, strict=True) if x is not None and y is not None),
                       default=0.0)
            test = fa[feat]["test"]
            if diff >= worst.get(test, (-1.0, ""))[0]:
                worst[test] = (diff, feat)
            print(f"{a} vs {b}: {feat} ({test}): p {[f'{x:.3g}' for x in pa if x is not None]} vs "
                  f"{[f'{x:.3g}' for x in pb if x is not None]}; drifted windows {fa[feat]['drifted_windows']} vs "
                  f"{fb[feat]['drifted_windows']}")
        print(f"{a} vs {b}: largest |p exact - p binned| per test: "
              + ", ".join(f"{t} {v:.3g} ({f})" for t, (v, f) in sorted(worst.items())))
        print(f"{a} vs {b}: drifted windows {docs[a]['summary']['drifted_windows']} vs "
              f"{docs[b]['summary']['drifted_windows']} of {docs[a]['summary']['windows']}")
    for name, doc in docs.items():
        print(f"{name}: {drift_check(doc, drift_at)}")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {args.rows} rows x "
          f"({args.numeric} numerical + {args.categorical} categorical), reference {args.ref_rows} rows, "
          f"bins {args.bins}, {args.hours} h of timestamps, drifted ({', '.join(DRIFTED)}) after {drift_at:%H:%M}")


if __name__ == "__main__":
    main()

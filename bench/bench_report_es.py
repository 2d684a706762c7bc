"""``inferwatch report --source elasticsearch`` over millions of audited rows: exact (rows streamed
through a point in time) against binned (distributions counted in the cluster), time, peak
memory and the difference in p-values.

Loads ``--rows`` rows (``--numeric`` numerical + ``--categorical`` categorical inputs; the rows
of the second half of the time span shifted in num0 and cat0) into the records indices of a
fresh prefix on the stack's node, shaped as the audit store writes them (``input`` and
``input_num``; no raw bodies or full text, to keep the load bounded), with the bulk API in
large chunks and ``refresh_interval: -1`` during the load. Then runs, each in a subprocess
measured alone (wall time, peak RSS from ``os.wait4``):

1. ``--mode exact`` over the whole range; 2. ``--mode binned`` over the whole range;
3. ``--mode binned --every 6h`` (one window per time bucket, a ``date_histogram``);
4. ``--mode exact --every 6h``.

Prints the table, the ratio exact / binned, and per feature the p-values of both modes. The
indices and templates are deleted at the end (also on failure).

    python bench/bench_report_es.py [--rows 2000000] [--numeric 8] [--categorical 2] [--hours 24]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_report_scale import measure  # noqa: E402

CATS = np.asarray([f"c{i}" for i in range(12)], dtype=object)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def frame(rng: np.random.Generator, n: int, n_num: int, n_cat: int, shifted: bool) -> pd.DataFrame:
    cols: dict[str, object] = {}
    for j in range(n_num):
        cols[f"num{j}"] = np.round(rng.normal((0.05 if shifted and j == 0 else 0.0) + j % 5, 1.0 + j % 3, n), 6)
    p = np.linspace(2, 1, len(CATS))
    for j in range(n_cat):
        q = p.copy()
        if shifted and j == 0:
            q[-1] *= 1.5
        cols[f"cat{j}"] = CATS[rng.choice(len(CATS), n, p=q / q.sum())]
    return pd.DataFrame(cols)


def load(es: object, prefix: str, model: str, rows: int, n_num: int, n_cat: int, hours: int) -> float:
    """Bulk-load the rows; seconds taken."""
    rng = np.random.default_rng(5)
    span = hours * 3600.0
    chunk = 10_000
    t0 = time.perf_counter()
    made: set[str] = set()
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        f = frame(rng, n, n_num, n_cat, shifted=start >= rows // 2)
        names = list(f.columns)
        values = [f[c].tolist() for c in names]
        lines: list[bytes] = []
        for i in range(n):
            g = start + i
            ts = T0 + timedelta(seconds=span * g / rows)
            index = f"{prefix}-records-{model}-{ts:%Y.%m.%d}"
            if index not in made:
                es.indices.create(index=index, settings={"refresh_interval": "-1"})  # type: ignore[attr-defined]
                made.add(index)
            inp = {c: v[i] for c, v in zip(names, values, strict=True)}
            doc = {"doc_id": f"b{g}-0", "record_id": f"b{g}", "row": 0, "n_rows": 1, "model": model,
                   "timestamp": ts.isoformat().replace("+00:00", "Z"), "part": "both", "input": inp,
                   "input_num": {k: x for k, x in inp.items() if isinstance(x, float)}}
            lines.append(b'{"index":{"_index":"' + index.encode() + b'","_id":"' + doc["doc_id"].encode() + b'"}}\n')
            lines.append(orjson.dumps(doc) + b"\n")
        resp = es.bulk(operations=b"".join(lines), filter_path="errors,items.*.error")  # type: ignore[attr-defined]
        if resp.get("errors"):
            raise SystemExit(f"bulk errors: {str(resp)[:1000]}")
        if start % 500_000 == 0:
            print(f"  loaded {start + n} rows, {time.perf_counter() - t0:.0f} s", flush=True)
    for index in made:
        es.indices.put_settings(index=index, settings={"refresh_interval": "1s"})  # type: ignore[attr-defined]
    es.indices.refresh(index=f"{prefix}-records-*")  # type: ignore[attr-defined]
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--ref-rows", type=int, default=100_000)
    ap.add_argument("--numeric", type=int, default=8)
    ap.add_argument("--categorical", type=int, default=2)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--bins", type=int, default=100)
    ap.add_argument("--prefix", default=None,
                    help="reuse the rows already loaded under this prefix (a run cut short); deleted at the end")
    ap.add_argument("--hosts", default=os.environ.get("INFERWATCH_ELASTICSEARCH_HOSTS", "http://127.0.0.1:9200"))
    args = ap.parse_args()

    from elasticsearch import Elasticsearch

    from inferwatch.config import ElasticsearchConfig
    from sinks.elasticsearch import ElasticsearchAuditStore

    prefix = args.prefix or "bench-" + uuid.uuid4().hex[:8]
    model = "scale"
    store = ElasticsearchAuditStore(ElasticsearchConfig(hosts=[args.hosts], index_prefix=prefix))  # the templates
    es = Elasticsearch(args.hosts, request_timeout=600)
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores",
          flush=True)
    rows: list[tuple[str, float, float]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-es-") as tmp:
            d = Path(tmp)
            ref = d / "reference.parquet"
            frame(np.random.default_rng(1), args.ref_rows, args.numeric, args.categorical, False).to_parquet(ref)
            if args.prefix:
                es.indices.put_settings(index=f"{prefix}-records-*", settings={"refresh_interval": "1s"})
                es.indices.refresh(index=f"{prefix}-records-*")
                secs = float("nan")
            else:
                secs = load(es, prefix, model, args.rows, args.numeric, args.categorical, args.hours)
            count = es.count(index=f"{prefix}-records-*")["count"]
            args.rows = count
            size = sum(int(s["store"]["size_in_bytes"]) for s in
                       es.indices.stats(index=f"{prefix}-records-*", metric="store")["indices"].values()
                       for s in [s["total"]])
            print(f"loaded {count} rows in {secs:.0f} s ({count / secs:.0f} rows/s), {size / 2**20:.0f} MiB on disk",
                  flush=True)
            env_cmd = [sys.executable, "-c", "from inferwatch.cli import main; main()", "report", "--source",
                       "elasticsearch", "--model", model, "--reference", str(ref), "--quiet", "--bins", str(args.bins)]
            os.environ["INFERWATCH_ELASTICSEARCH_HOSTS"] = args.hosts
            os.environ["INFERWATCH_ELASTICSEARCH_INDEX_PREFIX"] = prefix
            runs = [("exact", []), ("binned", []), ("binned", ["--every", "6h"]), ("exact", ["--every", "6h"])]
            docs = {}
            for mode, extra in runs:
                name = f"{mode}{' ' + ' '.join(extra) if extra else ''}"
                out = d / name.replace(" ", "_")
                wall, peak, text = measure([*env_cmd, "--mode", mode, "--out", str(out), *extra])
                rows.append((name, wall, peak))
                docs[name] = json.loads((out / "report.json").read_text())
                print(f"{name}: {wall:.1f} s, peak RSS {peak:.0f} MiB; {text.splitlines()[0]}", flush=True)
    finally:
        names = list(es.indices.get(index=f"{prefix}-*", allow_no_indices=True).body)
        if names:
            es.indices.delete(index=",".join(names))
        for t in ("records", "detections", "deadletters"):
            es.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-{t}")
        store.close()
    print(f"\n{'run':<22} {'wall s':>8} {'peak RSS MiB':>13} {'rows/s':>10}")
    for name, wall, peak in rows:
        print(f"{name:<22} {wall:>8.1f} {peak:>13.0f} {args.rows / wall:>10.0f}")
    by = {n: w for n, w, _ in rows}
    print(f"exact / binned wall: whole range {by['exact'] / by['binned']:.1f}, "
          f"per 6h {by['exact --every 6h'] / by['binned --every 6h']:.1f}")
    for a, b in (("exact", "binned"), ("exact --every 6h", "binned --every 6h")):
        fa = {(f["feature"]): f for f in docs[a]["features"]}
        fb = {(f["feature"]): f for f in docs[b]["features"]}
        worst = 0.0
        for feat in sorted(fa):
            pa, pb = fa[feat]["p_values"], fb[feat]["p_values"]
            diff = max((abs(x - y) for x, y in zip(pa, pb, strict=True) if x is not None and y is not None),
                       default=0.0)
            worst = max(worst, diff) if fa[feat]["test"] == "ks" else worst
            print(f"{a} vs {b}: {feat} ({fa[feat]['test']}): p {[f'{x:.3g}' for x in pa if x is not None]} vs "
                  f"{[f'{x:.3g}' for x in pb if x is not None]}; drifted windows {fa[feat]['drifted_windows']} vs "
                  f"{fb[feat]['drifted_windows']}")
        print(f"{a} vs {b}: largest |p exact - p binned| over KS features: {worst:.3g}")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {args.rows} rows x "
          f"({args.numeric} numerical + {args.categorical} categorical), reference {args.ref_rows} rows, "
          f"bins {args.bins}, {args.hours} h of timestamps")


if __name__ == "__main__":
    main()

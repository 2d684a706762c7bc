"""``inferwatch report`` over large files: wall time and peak memory, exact and binned modes, and
Evidently 0.7's DataDriftPreset on the same files in the same run.

Generates (in ``--dir``, a temporary folder by default) current batches of each of ``--sizes``
rows x 50 features (40 numerical, 10 categorical; the second half of num0, num1 and cat0
shifted) and a ``--ref-rows`` reference, as Parquet (and CSV with ``--formats parquet,csv``),
then runs each of these in a subprocess of its own, measured alone (wall time, and the child's
peak RSS from ``os.wait4``):

1. ``inferwatch report --input FILE --reference REF --mode exact`` (record batches, the
   tabular detector's window kept as counts: the same p-values as on the values) and
   ``--mode binned`` (``--bins`` reference-quantile bins: conservative KS);
2. Evidently 0.7's ``Report([DataDriftPreset()])`` on the same files, whole in pandas as its API
   takes them (``bench/evidently_drift.py`` with the interpreter of ``make evidently-venv``;
   ``--evidently-max-rows`` bounds the sizes it is run on: it holds both frames in memory);
3. with ``--baseline-rows N``: the in-memory path the command used before (``load_input`` ->
   ``run_report`` -> ``write_report``: the whole table as Python lists) at N rows.

Printed: a table of wall s / CPU s / peak RSS MiB / rows per second, the time per row of each size
relative to the smallest (linear growth = 1.0), the ratio Evidently / ours at each size, and
the largest difference between exact and binned p-values per feature kind.

    python bench/bench_report_scale.py [--sizes 1000000,10000000] [--ref-rows 100000]
        [--formats parquet,csv] [--modes exact,binned] [--window N] [--evidently PYTHON]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]  # the subprocesses run this checkout's sources

N_NUM, N_CAT = 40, 10
CATS = [f"c{i}" for i in range(12)]
SHIFTED = {"num0", "num1", "cat0"}  # drifted in the second half of the current batch
CHUNK = 100_000

_OLD_PATH = """
import sys
from pathlib import Path
from inferwatch.batch import load_input
from inferwatch.references import ReferenceStore
from inferwatch.report import run_report
from sinks.report import write_report
inp, ref, out = sys.argv[1:4]
refs = ReferenceStore(Path(out) / "references")
model, records, source = load_input(inp)
refs.register(model, ref, source=ref)
write_report(run_report(records, model, refs, source=source), out)
"""


def _chunk(rng: np.random.Generator, n: int, shifted: bool) -> pa.Table:
    cols: dict[str, np.ndarray] = {}
    for j in range(N_NUM):
        shift = 0.3 if shifted and f"num{j}" in SHIFTED else 0.0
        cols[f"num{j}"] = rng.normal(shift + j % 5, 1.0 + j % 3, n)
    p_base = np.linspace(2, 1, len(CATS))
    for j in range(N_CAT):
        p = p_base.copy()
        if shifted and f"cat{j}" in SHIFTED:
            p[-1] *= 3
        cols[f"cat{j}"] = np.asarray(CATS, dtype=object)[rng.choice(len(CATS), n, p=p / p.sum())]
    return pa.table(cols)


def write_files(folder: Path, name: str, rows: int, seed: int, drift: bool, formats: list[str]) -> dict[str, Path]:
    """``rows`` rows written chunk by chunk (the bench itself never holds the table)."""
    rng = np.random.default_rng(seed)
    paths = {fmt: folder / f"{name}.{fmt}" for fmt in formats}
    writers: dict[str, object] = {}
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        t = _chunk(rng, n, shifted=drift and start >= rows // 2)
        for fmt, path in paths.items():
            if fmt not in writers:
                writers[fmt] = pq.ParquetWriter(path, t.schema) if fmt == "parquet" else pacsv.CSVWriter(path, t.schema)
            writers[fmt].write_table(t)  # type: ignore[attr-defined]
    for w in writers.values():
        w.close()  # type: ignore[attr-defined]
    return paths


def measure(cmd: list[str], src: Path = ROOT) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds (user + system), peak RSS MiB of the child, its stdout) of one
    subprocess; on a shared machine CPU seconds are the steadier figure."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.decode()


def ours(inp: Path, ref: Path, out: Path, window: int | None, mode: str, bins: int,
         src: Path = ROOT) -> tuple[float, float, float, str]:
    cmd = [sys.executable, "-c", "from inferwatch.cli import main; main()", "report", "--input", str(inp),
           "--reference", str(ref), "--out", str(out), "--quiet", "--mode", mode, "--bins", str(bins)]
    return measure(cmd + (["--window", str(window)] if window else []), src)


def in_memory(inp: Path, ref: Path, out: Path) -> tuple[float, float, float, str]:
    return measure([sys.executable, "-c", _OLD_PATH, str(inp), str(ref), str(out)])


def evidently(python: str, inp: Path, ref: Path, out: Path) -> tuple[float, float, float, str]:
    return measure([python, str(ROOT / "bench" / "evidently_drift.py"), str(inp), str(ref), str(out)])


def p_values(out: Path) -> dict[str, tuple[float | None, str]]:
    """feature -> (lowest p-value, test) from a report.json."""
    doc = json.loads((out / "report.json").read_text())
    return {f["feature"]: (f["min_p_value"], f["test"]) for f in doc["features"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--ref-rows", type=int, default=100_000)
    ap.add_argument("--baseline-rows", type=int, default=0, help="also run the old in-memory path at this size")
    ap.add_argument("--formats", default="parquet")
    ap.add_argument("--modes", default="exact,binned")
    ap.add_argument("--bins", type=int, default=100)
    ap.add_argument("--window", type=int, default=None, help="rows per window (default: the whole batch)")
    ap.add_argument("--evidently", default=str(ROOT / ".venv-evidently" / "bin" / "python"),
                    help="python of the Evidently venv (make evidently-venv); '' to skip")
    ap.add_argument("--evidently-max-rows", type=int, default=1_000_000)
    ap.add_argument("--dir", default=None, help="keep the generated files here (reused when present)")
    ap.add_argument("--before", default=None,
                    help="also run the command from this source tree (e.g. `git archive` of an older commit) "
                         "at the smallest size: the speed-up of this checkout in the same run")
    ap.add_argument("--before-formats", default="parquet", help="formats --before runs on")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    formats, modes = args.formats.split(","), args.modes.split(",")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        d = Path(args.dir or tmp)
        d.mkdir(parents=True, exist_ok=True)

        def files(name: str, rows: int, seed: int, drift: bool, fmts: list[str]) -> dict[str, Path]:
            have = {f: d / f"{name}.{f}" for f in fmts}
            if all(p.exists() for p in have.values()):
                return have
            return write_files(d, name, rows, seed, drift, fmts)

        ref = files(f"reference-{args.ref_rows}", args.ref_rows, 1, False, ["parquet"])["parquet"]
        rows: list[tuple[str, str, int, float, float, float]] = []
        diffs: list[str] = []
        if args.baseline_rows:
            small = files(f"current-{args.baseline_rows}", args.baseline_rows, 2, True, formats)
            for fmt, path in small.items():
                w, c, m, _ = in_memory(path, ref, d / f"old-{fmt}")
                rows.append(("in-memory (before)", fmt, args.baseline_rows, w, c, m))
        for n in sizes:
            cur = files(f"current-{n}", n, 3, True, formats)
            for fmt, path in cur.items():
                if args.before and n == sizes[0] and fmt in args.before_formats.split(","):
                    for mode in modes:
                        wall, cpu, peak, text = ours(path, ref, d / f"before-{n}-{fmt}-{mode}", args.window, mode,
                                                     args.bins, Path(args.before))
                        rows.append((f"before {mode}", fmt, n, wall, cpu, peak))
                        print(f"{fmt} {n} rows {mode}, before: {wall:.1f} s ({cpu:.1f} s CPU), peak RSS {peak:.0f} "
                              f"MiB", flush=True)
                for mode in modes:
                    out = d / f"out-{n}-{fmt}-{mode}"
                    wall, cpu, peak, text = ours(path, ref, out, args.window, mode, args.bins)
                    rows.append((f"inferwatch {mode}", fmt, n, wall, cpu, peak))
                    print(f"{fmt} {n} rows {mode}: {wall:.1f} s ({cpu:.1f} s CPU), peak RSS {peak:.0f} MiB; "
                          f"{text.splitlines()[0]}", flush=True)
                if {"exact", "binned"} <= set(modes):
                    e, b = p_values(d / f"out-{n}-{fmt}-exact"), p_values(d / f"out-{n}-{fmt}-binned")
                    for test in sorted({t for _, t in e.values()}):
                        pairs = [(f, e[f][0], b[f][0]) for f in e if e[f][1] == test and f in b
                                 and e[f][0] is not None and b[f][0] is not None]
                        if pairs:
                            f, pe, pb = max(pairs, key=lambda x: abs(x[1] - x[2]))
                            diffs.append(f"{fmt} {n} rows, {test}: largest |p exact - p binned| = {abs(pe - pb):.3g} "
                                         f"({f}: {pe:.3g} vs {pb:.3g}); binned >= exact for "
                                         f"{sum(pb >= pe for _, pe, pb in pairs)} of {len(pairs)} features")
            if args.evidently and Path(args.evidently).exists() and n <= args.evidently_max_rows:
                for fmt, path in cur.items():
                    wall, cpu, peak, text = evidently(args.evidently, path, ref, d / f"evidently-{n}-{fmt}.html")
                    rows.append(("evidently 0.7", fmt, n, wall, cpu, peak))
                    res = json.loads(text.strip().splitlines()[-1])
                    print(f"{fmt} {n} rows evidently: {wall:.1f} s ({cpu:.1f} s CPU), peak RSS {peak:.0f} MiB; drifted "
                          f"{res['drifted']} ({', '.join(res['methods'])})", flush=True)
    print(f"\n{'path':<20} {'format':<8} {'rows':>10} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13} {'rows/s':>10}")
    for name, fmt, n, wall, cpu, peak in rows:
        print(f"{name:<20} {fmt:<8} {n:>10} {wall:>8.1f} {cpu:>8.1f} {peak:>13.0f} {n / wall:>10.0f}")
    by = {(name, fmt, n): (wall, cpu) for name, fmt, n, wall, cpu, _ in rows}
    for name, fmt, n, wall, cpu, _ in rows:
        first = by.get((name, fmt, sizes[0]))
        if n != sizes[0] and first:
            print(f"{name} {fmt}: time per row at {n} / at {sizes[0]} = {(wall / n) / (first[0] / sizes[0]):.2f} "
                  f"wall, {(cpu / n) / (first[1] / sizes[0]):.2f} CPU")
        old = by.get((name.replace("inferwatch", "before"), fmt, n))
        if old and name.startswith("inferwatch"):
            print(f"{name} {fmt} {n} rows: before / now = {old[0] / wall:.2f} wall, {old[1] / cpu:.2f} CPU")
        ev = by.get(("evidently 0.7", fmt, n))
        if ev and name.startswith("inferwatch"):
            print(f"{name} {fmt} {n} rows: Evidently / ours = {ev[0] / wall:.1f} wall, {ev[1] / cpu:.1f} CPU")
    for line in diffs:
        print(line)
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"features: {N_NUM} numerical + {N_CAT} categorical, reference {args.ref_rows} rows, bins {args.bins}"
          + (f", windows of {args.window} rows" if args.window else ", the whole batch as one window"))


if __name__ == "__main__":
    main()

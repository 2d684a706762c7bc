"""``inferwatch report`` over large files: wall time and peak memory, against the in-memory path.

Generates (in a temporary folder) a current batch of ``--rows`` rows x 50 features (40 numerical,
10 categorical; the second half of a few features shifted) and a ``--ref-rows`` reference, as
Parquet and as CSV, then runs in subprocesses, each measured alone (wall time, and the child's
peak RSS from ``os.wait4``):

1. ``inferwatch report --input FILE --reference REF`` (the batched read: record batches straight
   to the window's detectors, inferwatch.report.run_report_table);
2. baseline, at ``--baseline-rows`` rows (it holds the whole table as Python lists, ~4 GiB at 1M
   rows, more than a shared machine can spare): the in-memory path the command used before,
   ``load_input`` -> ``run_report`` -> ``write_report``, and the batched command on the same file.

The ratios (batched / in-memory, lower is better) at the baseline size are what to compare between
runs; the absolute figures depend on the machine's load, printed beside them.

    python bench/bench_report_scale.py [--rows 1000000] [--ref-rows 100000] [--baseline-rows 100000]
        [--formats parquet,csv] [--window N] [--no-baseline]
"""

from __future__ import annotations

import argparse
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


def measure(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB of the child, its stdout) of one subprocess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out.decode()


def batched(inp: Path, ref: Path, out: Path, window: int | None) -> tuple[float, float, str]:
    cmd = [sys.executable, "-c", "from inferwatch.cli import main; main()", "report", "--input", str(inp),
           "--reference", str(ref), "--out", str(out), "--quiet"]
    return measure(cmd + (["--window", str(window)] if window else []))


def in_memory(inp: Path, ref: Path, out: Path) -> tuple[float, float, str]:
    return measure([sys.executable, "-c", _OLD_PATH, str(inp), str(ref), str(out)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--ref-rows", type=int, default=100_000)
    ap.add_argument("--baseline-rows", type=int, default=100_000)
    ap.add_argument("--formats", default="parquet,csv")
    ap.add_argument("--window", type=int, default=None, help="rows per window (default: the whole batch)")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    formats = args.formats.split(",")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        d = Path(tmp)
        ref = write_files(d, "reference", args.ref_rows, 1, False, ["parquet"])["parquet"]
        rows: list[tuple[str, str, int, float, float]] = []
        if not args.no_baseline:
            small = write_files(d, "small", args.baseline_rows, 2, True, formats)
            for fmt, path in small.items():
                w_old, m_old, _ = in_memory(path, ref, d / f"old-{fmt}")
                w_new, m_new, _ = batched(path, ref, d / f"new-small-{fmt}", args.window)
                rows += [("in-memory (before)", fmt, args.baseline_rows, w_old, m_old),
                         ("batched", fmt, args.baseline_rows, w_new, m_new)]
                print(f"{fmt} {args.baseline_rows} rows: batched/in-memory wall {w_new / w_old:.2f}, "
                      f"peak RSS {m_new / m_old:.2f}", flush=True)
        big = write_files(d, "current", args.rows, 3, True, formats)
        for fmt, path in big.items():
            wall, peak, out = batched(path, ref, d / f"new-{fmt}", args.window)
            rows.append(("batched", fmt, args.rows, wall, peak))
            print(f"{fmt} {args.rows} rows: {wall:.1f} s, peak RSS {peak:.0f} MiB; {out.splitlines()[0]}", flush=True)
    print(f"\n{'path':<20} {'format':<8} {'rows':>10} {'wall s':>8} {'peak RSS MiB':>13} {'rows/s':>10}")
    for name, fmt, n, wall, peak in rows:
        print(f"{name:<20} {fmt:<8} {n:>10} {wall:>8.1f} {peak:>13.0f} {n / wall:>10.0f}")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"features: {N_NUM} numerical + {N_CAT} categorical, reference {args.ref_rows} rows"
          + (f", windows of {args.window} rows" if args.window else ", the whole batch as one window"))


if __name__ == "__main__":
    main()

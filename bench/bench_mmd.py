"""MMD permutation test: inferwatch vs alibi-detect's MMDDrift (pytorch backend, CPU).

Reference 2,000 rows, window 500 rows, 20 features, 100 permutations, same data.
Prints the time per window (median of repeats; alibi's kernel on the reference is
configured at construction in both), the ratio, both p-values and MMD^2, and peak memory
(tracemalloc: numpy allocations only, torch's own allocator is not traced).

    python bench/bench_mmd.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors import MMDDrift


def _timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(2000, 20))
    x = rng.normal(size=(500, 20))
    x[:, 0] += 0.2
    names = [f"f{i}" for i in range(20)]
    xw = pd.DataFrame(x, columns=names)
    t = time.perf_counter()
    det = MMDDrift(p_val=0.05, n_permutations=100).fit(pd.DataFrame(ref, columns=names))
    det.update(xw).result()
    fit_s = time.perf_counter() - t

    def ours():
        return det.reset().update(xw).result()

    t_ours = _timed(ours, args.repeats)
    tracemalloc.start()
    ours()
    peak_ours = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    r = ours()
    print("MMD permutation test: ref 2000, window 500, 20 features, 100 permutations")
    print(f"  inferwatch   {t_ours * 1000:8.1f} ms/window (fit + first window {fit_s:.2f} s)"
          f"  p={r.p_value:.3f} mmd2={r.distance:.3e}  peak numpy memory {peak_ours:.0f} MiB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch
            from alibi_detect.cd import MMDDrift as AMMD
    except ImportError as exc:
        print(f"  alibi-detect MMDDrift(backend='pytorch') not run: {exc}")
        return
    a = AMMD(ref, backend="pytorch", p_val=0.05, n_permutations=100, device="cpu")

    def theirs():
        return a.predict(x)

    t_theirs = _timed(theirs, args.repeats)
    out = theirs()["data"]
    print(f"  alibi-detect {t_theirs * 1000:8.1f} ms/window (torch {torch.__version__}, {torch.get_num_threads()} threads)"
          f"  p={out['p_val']:.3f} mmd2={out['distance']:.3e}")
    print(f"  ratio {t_theirs / t_ours:.1f}x")


if __name__ == "__main__":
    main()

"""KS + CVM + chi-squared over 50 features: inferwatch vs alibi-detect, same data, same alpha.

40 numerical + 10 categorical features, reference 10,000 rows, window 1,000 rows.
inferwatch: KSDrift and CVMDrift on the 40 numerical columns, ChiSquareDrift on the 10
categorical ones. alibi-detect: KSDrift and CVMDrift on the numerical matrix, TabularDrift
(KS for numerical + chi-squared for categorical) on all 50. Prints time per window (median
of repeats), the ratio, and peak memory of one window's test (tracemalloc).

    python bench/bench_detectors.py [--repeats 5]
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

from detectors import ChiSquareDrift, CVMDrift, KSDrift


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _peak(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n_ref, n_win, n_num, n_cat = 10_000, 1_000, 40, 10
    num_ref = rng.normal(size=(n_ref, n_num))
    num_win = rng.normal(size=(n_win, n_num))
    num_win[:, :4] += 0.1
    cat_ref = rng.integers(0, 5, size=(n_ref, n_cat))
    cat_win = rng.integers(0, 5, size=(n_win, n_cat))
    num_names = [f"x{i}" for i in range(n_num)]
    cat_names = [f"c{i}" for i in range(n_cat)]
    ref = pd.concat([pd.DataFrame(num_ref, columns=num_names), pd.DataFrame(cat_ref.astype(str), columns=cat_names)], axis=1)
    win = pd.concat([pd.DataFrame(num_win, columns=num_names), pd.DataFrame(cat_win.astype(str), columns=cat_names)], axis=1)
    alpha = 0.05

    ks = KSDrift(p_val=alpha, features=num_names).fit(ref)
    cvm = CVMDrift(p_val=alpha, features=num_names).fit(ref)
    chi = ChiSquareDrift(p_val=alpha, features=cat_names).fit(ref)

    def ours():
        return [d.reset().update(win).result() for d in (ks, cvm, chi)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from alibi_detect.cd import CVMDrift as ACVM
        from alibi_detect.cd import KSDrift as AKS
        from alibi_detect.cd import TabularDrift as ATab

        all_ref = np.hstack([num_ref, cat_ref.astype(np.float64)])
        all_win = np.hstack([num_win, cat_win.astype(np.float64)])
        a_ks = AKS(num_ref, p_val=alpha)
        a_cvm = ACVM(num_ref, p_val=alpha)
        a_tab = ATab(all_ref, p_val=alpha, categories_per_feature={n_num + i: None for i in range(n_cat)})

        def theirs():
            return [a_ks.predict(num_win), a_cvm.predict(num_win), a_tab.predict(all_win)]

        # same decisions on the same data
        mine = ours()
        other = theirs()
        np.testing.assert_array_equal(
            np.array(list(mine[0].feature_p_values.values()), dtype=np.float32), other[0]["data"]["p_val"]
        )
        np.testing.assert_array_equal(
            np.array(list(mine[1].feature_p_values.values()), dtype=np.float32), other[1]["data"]["p_val"]
        )
        np.testing.assert_array_equal(
            np.array(list(mine[2].feature_p_values.values()), dtype=np.float32), other[2]["data"]["p_val"][n_num:]
        )

        t_ours = _timed(ours, args.repeats)
        t_theirs = _timed(theirs, args.repeats)
        per = {
            "ks": (_timed(lambda: ks.reset().update(win).result(), args.repeats), _timed(lambda: a_ks.predict(num_win), args.repeats)),
            "cvm": (_timed(lambda: cvm.reset().update(win).result(), args.repeats), _timed(lambda: a_cvm.predict(num_win), args.repeats)),
            "chi2 / tabular": (_timed(lambda: chi.reset().update(win).result(), args.repeats), _timed(lambda: a_tab.predict(all_win), args.repeats)),
        }
        m_ours = _peak(ours)
        m_theirs = _peak(theirs)
    print(f"KS+CVM+chi2, 50 features (40 num + 10 cat), ref {n_ref}, window {n_win}, {args.repeats} repeats")
    for name, (a, b) in per.items():
        print(f"  {name:16s} inferwatch {a * 1000:8.1f} ms   alibi-detect {b * 1000:8.1f} ms   ratio {b / a:6.1f}x")
    print(f"  {'total':16s} inferwatch {t_ours * 1000:8.1f} ms   alibi-detect {t_theirs * 1000:8.1f} ms   ratio {t_theirs / t_ours:6.1f}x")
    print(f"  peak memory per window: inferwatch {m_ours:.1f} MiB, alibi-detect {m_theirs:.1f} MiB")
    print("  p-values identical (float32) on all 50 features")


if __name__ == "__main__":
    main()

"""KS + CVM + chi-squared over 50 features: inferwatch vs alibi-detect, same data, same alpha.

40 numerical + 10 categorical features, reference 10,000 rows, window 1,000 rows. Both
sides run the same detectors on the same window: ``KSDrift`` and ``CVMDrift`` on the 40
numerical columns, ``TabularDrift`` on all 50 (KS for the numerical, chi-squared for the
categorical columns) and ``ChiSquareDrift`` on the 10 categorical ones. Two totals:
KS + CVM + Tabular (the issue's set of alibi-detect detectors; KS runs twice on each side)
and KS + CVM + ChiSquare (each test once).

Timing: each repeat times one window on both sides back to back (alternating which goes
first), so load from other jobs on the machine hits both alike; printed are the median
time per window of each side, their ratio, and the range of the per-repeat ratios. Before
timing, every per-feature p-value is checked to be identical to alibi-detect's (compared
as float32, which alibi stores). Peak memory of one window's tests via tracemalloc.

A second case (issue 9) times the tie-aware path: the same 40 numerical features with
half of them integer-valued with ties (binomial and Poisson counts, rounded scores), so
CVM runs its conditional (discrete-asymptotic) test on those, against the all-continuous
table, interleaved in the same run; printed is the tied / continuous time ratio per
detector (target: at most 3x).

    python bench/bench_detectors.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors import ChiSquareDrift, CVMDrift, KSDrift, TabularDrift


def _interleaved(ours: Callable[[], Any], theirs: Callable[[], Any], repeats: int) -> tuple[float, float, list[float]]:
    """Median seconds per call of each side and the per-repeat ratios theirs / ours."""
    ours()  # warm-up
    theirs()
    t_ours, t_theirs = [], []
    for r in range(repeats):
        for fn, out in ((ours, t_ours), (theirs, t_theirs))[:: 1 if r % 2 == 0 else -1]:
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    ratios = [b / a for a, b in zip(t_ours, t_theirs, strict=True)]
    return statistics.median(t_ours), statistics.median(t_theirs), ratios


def _peak(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def _same_p(mine: Any, other: dict, lo: int = 0) -> None:
    np.testing.assert_array_equal(
        np.array(list(mine.feature_p_values.values()), dtype=np.float32), other["data"]["p_val"][lo:]
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
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
    tab = TabularDrift(p_val=alpha).fit(ref)
    chi = ChiSquareDrift(p_val=alpha, features=cat_names).fit(ref)

    def ours() -> list:
        return [d.reset().update(win).result() for d in (ks, cvm, tab)]

    def ours_b() -> list:
        return [d.reset().update(win).result() for d in (ks, cvm, chi)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from alibi_detect.cd import ChiSquareDrift as AChi
        from alibi_detect.cd import CVMDrift as ACVM
        from alibi_detect.cd import KSDrift as AKS
        from alibi_detect.cd import TabularDrift as ATab

        all_ref = np.hstack([num_ref, cat_ref.astype(np.float64)])
        all_win = np.hstack([num_win, cat_win.astype(np.float64)])
        a_ks = AKS(num_ref, p_val=alpha)
        a_cvm = ACVM(num_ref, p_val=alpha)
        a_tab = ATab(all_ref, p_val=alpha, categories_per_feature={n_num + i: None for i in range(n_cat)})
        a_chi = AChi(cat_ref.astype(np.float64), p_val=alpha)

        cat_win_f = cat_win.astype(np.float64)

        def theirs() -> list:
            return [a_ks.predict(num_win), a_cvm.predict(num_win), a_tab.predict(all_win)]

        def theirs_b() -> list:
            return [a_ks.predict(num_win), a_cvm.predict(num_win), a_chi.predict(cat_win_f)]

        # same tests on the same data: identical p-values on every feature
        mine, other = ours(), theirs()
        assert mine[2].extra["tests"] == {**dict.fromkeys(num_names, "ks"), **dict.fromkeys(cat_names, "chi2")}
        for m, o in zip(mine, other, strict=True):
            _same_p(m, o)
        _same_p(chi.reset().update(win).result(), a_chi.predict(cat_win_f))

        rows = {
            "KSDrift": _interleaved(lambda: ks.reset().update(win).result(), lambda: a_ks.predict(num_win), args.repeats),
            "CVMDrift": _interleaved(lambda: cvm.reset().update(win).result(), lambda: a_cvm.predict(num_win), args.repeats),
            "TabularDrift": _interleaved(lambda: tab.reset().update(win).result(), lambda: a_tab.predict(all_win), args.repeats),
            "ChiSquareDrift": _interleaved(
                lambda: chi.reset().update(win).result(), lambda: a_chi.predict(cat_win_f), args.repeats
            ),
            "total KS+CVM+Tab": _interleaved(ours, theirs, args.repeats),
            "total KS+CVM+Chi": _interleaved(ours_b, theirs_b, args.repeats),
        }
        m_ours = _peak(ours)
        m_theirs = _peak(theirs)
    print(f"KS+CVM+chi2, 50 features (40 num + 10 cat), ref {n_ref}, window {n_win}, {args.repeats} repeats (median per window)")
    for name, (a, b, ratios) in rows.items():
        print(
            f"  {name:17s} inferwatch {a * 1000:7.1f} ms   alibi-detect {b * 1000:7.1f} ms   "
            f"ratio {b / a:6.1f}x   (per repeat {min(ratios):.1f}x-{max(ratios):.1f}x)"
        )
    print(f"  peak memory per window (KS+CVM+Tab): inferwatch {m_ours:.1f} MiB, alibi-detect {m_theirs:.1f} MiB")
    print("  p-values identical (float32) on all features of all four detectors")
    tied_case(args.repeats)


def _tied_table(rng: np.random.Generator, n: int, names: list[str]) -> pd.DataFrame:
    x = rng.normal(size=(n, len(names)))
    for j in range(len(names) // 2):
        x[:, j] = (rng.binomial(20, 0.3, n), rng.poisson(4.0, n), np.round(rng.normal(15, 5, n)))[j % 3]
    return pd.DataFrame(x, columns=names)


def tied_case(repeats: int) -> None:
    """Tie-aware path vs continuous path: same detectors, same shapes, interleaved."""
    rng = np.random.default_rng(1)
    n_ref, n_win, n_num = 10_000, 1_000, 40
    names = [f"x{i}" for i in range(n_num)]
    cont_ref = pd.DataFrame(rng.normal(size=(n_ref, n_num)), columns=names)
    cont_win = pd.DataFrame(rng.normal(size=(n_win, n_num)), columns=names)
    tied_ref, tied_win = _tied_table(rng, n_ref, names), _tied_table(rng, n_win, names)
    print(f"tie-aware path: 40 numerical features, 20 of them integer-valued with ties; ref {n_ref}, window {n_win}")
    for cls in (KSDrift, CVMDrift, TabularDrift):
        cont = cls().fit(cont_ref)
        tied = cls().fit(tied_ref)
        methods = sorted(set(tied.update(tied_win).result().extra.get("methods", {}).values()))
        t_cont, t_tied, ratios = _interleaved(
            lambda c=cont: c.reset().update(cont_win).result(), lambda t=tied: t.reset().update(tied_win).result(), repeats
        )
        verdict = "ok" if t_tied <= 3 * t_cont else "ABOVE 3x"
        print(
            f"  {cls.__name__:13s} continuous {t_cont * 1000:6.1f} ms   tied {t_tied * 1000:6.1f} ms   "
            f"ratio {t_tied / t_cont:4.2f}x ({verdict}; per repeat {min(ratios):.2f}x-{max(ratios):.2f}x)   methods {methods}"
        )


if __name__ == "__main__":
    main()

"""The validity suite, larger: false-positive rates, power and run lengths (issue 9).

    python bench/validity.py [--windows 400] [--quick]

For each table (scikit-learn's digits, diabetes, iris, wine, breast_cancer and a synthetic
table of discrete columns mixed with continuous ones) and window size, ``--windows`` null
splits (fresh random reference/window split each time); for every p-value detector and
every correction, the share of null windows that fire next to alpha's 99% binomial upper
bound (``none``: the per-feature share, since that correction holds its level per
feature). Then power on shifted synthetic windows against KS-asymptotic (scipy's
``ks_2samp(method='asymp')``, what KSDrift computed before), and the no-change run lengths
of OnlineCVMDrift and PageHinkley(ert=...) on discrete streams. Also, for comparison, what
scipy's own CVM and Anderson p-values (the previous behaviour) fire on the same splits.
Prints a table; exits 1 if any rate is above its bound.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import anderson_ksamp, cramervonmises_2samp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors import OnlineCVMDrift, PageHinkley
from detectors.common.corrections import correct
from tests.validity import (
    distance_null_rates,
    distance_power,
    null_rates,
    power,
    real_table,
    splits,
    synthetic,
    upper_bound,
)

ALPHA = 0.05
DETECTORS = ["ks", "cvm", "anderson", "tabular", "chi2", "fet"]


def _scipy_rates(table, n_ref: int, m: int, n_windows: int, seed: int) -> dict[str, float]:
    """Bonferroni window rates of scipy's CVM and Anderson p-values (the old behaviour)."""
    fired = {"scipy-cvm": 0, "scipy-anderson": 0}
    cols = [c for c in table.columns if table[c].nunique() > 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ref, win in splits(table, n_ref, m, n_windows, seed):
            usable = [c for c in cols if np.unique(np.r_[ref[c].to_numpy(), win[c].to_numpy()]).size > 1]
            p_cvm = [cramervonmises_2samp(ref[c], win[c]).pvalue for c in usable]
            p_ad = [anderson_ksamp([ref[c].to_numpy(), win[c].to_numpy()], variant="midrank").pvalue for c in usable]
            fired["scipy-cvm"] += correct(p_cvm, ALPHA, "bonferroni").is_drift
            fired["scipy-anderson"] += correct(p_ad, ALPHA, "bonferroni").is_drift
    return {k: v / n_windows for k, v in fired.items()}


def _stream(rng: np.random.Generator, n: int, kind: str) -> dict[str, np.ndarray]:
    if kind == "counts":
        return {"a": rng.poisson(2.0, n).astype(float), "b": rng.binomial(5, 0.2, n).astype(float)}
    if kind == "flags":
        return {"flag": (rng.random(n) < 0.1).astype(float), "code": rng.integers(0, 3, n).astype(float)}
    return {"x": rng.normal(size=n), "y": rng.normal(size=n)}


def run_lengths(n_streams: int) -> list[tuple[str, str, float, float]]:
    out = []
    for kind in ("counts", "flags", "continuous"):
        rng = np.random.default_rng(31)
        det = OnlineCVMDrift(ert=150, window_size=25, n_bootstraps=1000).fit(_stream(rng, 3000, kind))
        rl = []
        for _ in range(n_streams):
            r = det.reset().update(_stream(rng, 900, kind)).result()
            rl.append(r.extra["alarm_at"] - 24 if r.is_drift else 900 - 24)
        out.append(("online_cvm", kind, 150.0, float(np.mean(rl))))
        ph = PageHinkley(ert=300, n_bootstraps=1000).fit(_stream(rng, 3000, kind))
        rl = []
        for _ in range(n_streams):
            r = ph.reset().update(_stream(rng, 2400, kind)).result()
            rl.append(r.extra["alarm_at"] + 1 if r.is_drift else 2400)
        out.append(("page_hinkley", kind, 300.0, float(np.mean(rl))))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=400)
    ap.add_argument("--quick", action="store_true", help="fewer tables and windows")
    ap.add_argument("--draws", type=int, default=199, help="null draws of the distance detectors' calibration")
    ap.add_argument("--distance-only", action="store_true", help="only the distance detectors' section")
    ap.add_argument("--only", nargs="*", help="only these tables (null windows), e.g. digits iris")
    args = ap.parse_args()
    n = 100 if args.quick else args.windows
    syn = synthetic(np.random.default_rng(1), 20_000)
    plan = [
        ("synthetic", syn, 500, 20), ("synthetic", syn, 2000, 200), ("synthetic", syn, 10_000, 1000),
        ("digits", real_table("digits"), 1000, 20), ("digits", real_table("digits"), 1000, 200),
        ("diabetes", real_table("diabetes"), 300, 40), ("iris", real_table("iris"), 100, 20),
        ("wine", real_table("wine"), 120, 20), ("breast_cancer", real_table("breast_cancer"), 400, 50),
    ]
    if args.quick:
        plan = plan[:1] + plan[3:4] + plan[5:7]
    if args.only:
        plan = [p for p in plan if p[0] in args.only]
    bad = 0
    print(f"null windows: share firing at alpha = {ALPHA} (bound: 99% binomial upper quantile); "
          f"'none' = per-feature share")
    print(f"{'table':14s} {'n_ref':>6s} {'m':>5s} {'detector':9s} {'bonferroni':>10s} {'fdr':>6s} {'none/feat':>9s} "
          f"{'bound':>6s}  methods")
    for name, table, n_ref, m in [] if args.distance_only else plan:
        t0 = time.time()
        for o in null_rates(name, table, DETECTORS, n_ref, m, n, ALPHA, seed=11):
            bound = upper_bound(o.windows, ALPHA, 0.99)
            feat = o.feature_fired / max(o.feature_tests, 1)
            fbound = upper_bound(o.feature_tests, ALPHA, 0.99)
            over = [c for c in ("bonferroni", "fdr") if o.rate(c) > bound] + (["none"] if feat > fbound else [])
            bad += bool(over)
            meth = ", ".join(f"{k} {v}" for k, v in sorted(o.methods.items(), key=lambda kv: -kv[1]))
            print(f"{name:14s} {n_ref:6d} {m:5d} {o.detector:9s} {o.rate('bonferroni'):10.3f} {o.rate('fdr'):6.3f} "
                  f"{feat:9.4f} {bound:6.3f}  {meth}{'   ABOVE BOUND: ' + ', '.join(over) if over else ''}")
        old = _scipy_rates(table, n_ref, m, min(n, 100), seed=11)
        print(f"{'':14s} {'':6s} {'':5s} previous behaviour (scipy p-values, Bonferroni, {min(n, 100)} windows): "
              + ", ".join(f"{k} {v:.2f}" for k, v in old.items()) + f"   [{time.time() - t0:.0f} s]")
    print()
    print(f"distance detectors on null windows: share firing, calibrated default test at alpha = {ALPHA} "
          f"(Bonferroni; {args.draws} null draws) | rule-of-thumb threshold; bound = 99% binomial upper quantile")
    dist_plan = [("synthetic", syn, 200, 10), ("synthetic", syn, 500, 20), ("synthetic", syn, 2000, 200),
                 ("synthetic", syn, 10_000, 1000), ("iris", real_table("iris"), 100, 20),
                 ("diabetes", real_table("diabetes"), 300, 40), ("wine", real_table("wine"), 120, 20)]
    if args.only:
        dist_plan = [p for p in dist_plan if p[0] in args.only]
    for name, table, n_ref, m in dist_plan:
        t0 = time.process_time()
        rates = distance_null_rates(table, n_ref, m, n, seed=11, alpha=ALPHA, draws=args.draws)
        bound = upper_bound(n, ALPHA, 0.99)
        over = [k for k, (cal, _) in rates.items() if cal > bound]
        bad += bool(over)
        print(f"  {name:10s} ref {n_ref:6d} window {m:5d}: "
              + ", ".join(f"{k} {cal:.3f} | {rule:.2f}" for k, (cal, rule) in rates.items())
              + f"   bound {bound:.3f}  [{time.process_time() - t0:.0f} s cpu]"
              + (f"   ABOVE BOUND: {', '.join(over)}" if over else ""))
    print("  power, 1 sd shift of one continuous column (synthetic table, fresh reference per window):")
    for n_ref, m in ((200, 10), (500, 20), (1000, 100)):
        pw = distance_power(n_ref, m, max(n // 4, 25), shift=1.0, seed=5, alpha=ALPHA, draws=args.draws)
        print(f"    ref {n_ref:5d} window {m:4d}: " + ", ".join(f"{k} {v:.2f}" for k, v in pw.items()))
    print()
    if args.distance_only:
        return 1 if bad else 0
    print("power on shifted synthetic windows (Bonferroni), same windows for every detector:")
    for n_ref, m, shift in ((1000, 100, 1.0), (2000, 200, 0.7), (500, 20, 2.0)):
        fired = power(["ks", "cvm", "anderson", "tabular", "chi2"], n_ref, m, n // 2, shift, ALPHA, seed=5)
        print(f"  ref {n_ref}, window {m}, shift {shift}: "
              + ", ".join(f"{d} {v.mean():.2f}" for d, v in fired.items()))
    print()
    print("no-change run lengths on discrete streams (mean of streams / configured ERT):")
    for det, kind, ert, mean in run_lengths(200 if args.quick else 600):
        print(f"  {det:13s} {kind:10s} ERT {ert:5.0f}  mean run length {mean:7.1f}  ratio {mean / ert:4.2f}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

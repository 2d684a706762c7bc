"""False-failure budgets of the unit suite's statistical assertions, measured by simulation.

    nice python bench/false_failure_budgets.py distance-power [--refs 300] [--windows 2000]

Each statistical assertion in tests/unit states next to it the probability that a correct
implementation fails it (at most 1e-3 per run). Where that probability is not derived in the
comment itself it is measured here, with the test's own design (sizes, shifts, draws) and the
real code under test, on fresh references and windows: far more runs than a seed sweep, and a
resolution well below the budget (conditional probabilities per reference averaged, instead of
counting rare failures).

distance-power (tests/unit/test_distance_calibration.py::test_a_one_sd_shift_fires_on_that_feature):
the test fits a reference, draws ``draws`` null distances for ``normal`` (the detector's own
simulation) and asserts that each of ``--tests`` shifted windows beats every one of them
(p = 1/(draws+1)). Per reference: the detector's null draws, then ``--windows`` shifted windows;
the share of windows whose distance does not beat the largest null draw, times the number of
windows in the test (a union bound), averaged over ``--refs`` references, is the failure
probability per run. Printed with the largest per-reference share, for the design the test uses
(``--rows``, ``--shift``) and any other asked for.

online-cvm (tests/unit/test_detectors_misc.py::test_online_cvm_run_length_and_detection): the
test's design (three references of ``--ref-rows`` rows, three features, 300 null streams each,
ERT 150) repeated with ``--reps`` other seeds; prints the mean run length's mean and sd across
repetitions, in ERTs, and the normal-approximation probability of leaving [0.8, 1.25] x ERT.

ks-power (power assertions on KS windows: test_monitor, test_report): ``--reps`` references of
``--ref-rows`` N(0,1) rows, 5,000 windows of ``--rows`` rows each, the last ``--shifted`` of them
shifted by ``--shift`` sd; the two-sample KS p-value as scipy's ``mode='asymp'`` computes it
(``kstwo`` at the effective size); prints how many windows miss ``--cut`` and the largest p-value.

cbpe-runtime (tests/unit/test_performance_runtime.py): the test's world for ``--reps`` seeds, CBPE
fitted on its 4,000-row reference, both versions' windows: z = (estimate - realized accuracy) /
the reported standard error; prints its mean, sd, largest |z| and the normal tail beyond 4.5.

demo (tests/unit/test_demo.py): ``inferwatch demo --seed s`` in statistics only (its data split,
model, held-out and shifted windows and detector, without the pipeline around them) for
``--reps`` seeds: how many held-out windows fire per run, and whether every shifted window does.

dle (tests/unit/test_performance_dle.py): the slow test's world (linear model, 10,000-row
reference, five 5,000-row chunks shifted 0, 0, 0.5, 1, -0.7 sd) for ``--reps`` seeds, our DLE and
NannyML's (one run of its venv over all seeds; ``--no-nannyml`` skips it and the checks that need
it): per check, the mean and sd across seeds of the quantity asserted on and the normal tail
beyond the assertion's bound, summed over the figures a run asserts on (a union bound). Then
test_dle_windows_merge_and_fire's world (a 4,000-row reference) for ``--fire-reps`` seeds: the
estimated rise of the calm and the loud window against ``max_rise`` 0.2.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors import HellingerDrift, JSDrift, PSIDrift, WassersteinDrift

FACTORIES = {"PSIDrift": PSIDrift, "JSDrift": JSDrift, "HellingerDrift": HellingerDrift,
             "WassersteinDrift": WassersteinDrift}


def distance_power(refs: int, windows: int, ref_rows: int, rows: int, shift: float, draws: int, tests: int,
                   names: list[str], seed: int) -> None:
    print(f"reference {ref_rows} rows, windows of {rows} rows shifted {shift} sd, {draws} null draws, "
          f"{tests} windows per run; {refs} references x {windows} windows")
    for name in names:
        factory = FACTORIES[name]
        rng = np.random.default_rng([seed, len(name)])
        t = time.monotonic()
        shares = np.empty(refs)
        margins = []
        for i in range(refs):
            det = factory(p_val=0.05, draws=draws, features=["normal"]).fit({"normal": rng.normal(0.0, 1.0, ref_rows)})
            det.update({"normal": rng.normal(shift, 1.0, rows)}).result()  # runs the null simulation
            fitted = det._ref["normal"]  # type: ignore[index]
            (_, null), = fitted.null.values()
            top = float(null.max())
            d = np.array([det._distance_to(fitted.state, rng.normal(shift, 1.0, rows)) for _ in range(windows)])
            # the detector's rule: a null draw within 1e-12 (relative) of d counts against it
            shares[i] = np.count_nonzero(null.max() >= d - 1e-12 * np.maximum(np.abs(d), 1.0)) / windows
            margins.append((np.quantile(d, 0.001) - top) / null.std())
        fail = min(1.0, tests * shares.mean())
        se = tests * shares.std(ddof=1) / np.sqrt(refs)
        print(f"  {name:17s} P(run fails) ~ {fail:.2e} (se {se:.1e}); worst reference {shares.max():.2e} per window; "
              f"0.1% quantile of the shifted distance minus the largest null draw: "
              f"min {min(margins):.1f} null sd, median {np.median(margins):.1f}  ({time.monotonic() - t:.0f} s)",
              flush=True)


def online_cvm(reps: int, ref_rows: int, streams: int, seed: int) -> None:
    from scipy.stats import norm

    from detectors import OnlineCVMDrift

    print(f"online CVM: 3 references of {ref_rows} rows x 3 features, {streams} null streams each, ERT 150; "
          f"{reps} repetitions")
    means = []
    t = time.monotonic()
    for rep in range(reps):
        rl = []
        for j in range(3):
            rng = np.random.default_rng([seed, rep, j])
            ref = {f"f{i}": rng.normal(size=ref_rows) for i in range(3)}
            det = OnlineCVMDrift(ert=150, window_size=25).fit(ref)
            for _ in range(streams):
                r = det.reset().update({k: rng.normal(size=1200) for k in ref}).result()
                rl.append(r.extra["alarm_at"] - 24 if r.is_drift else 1200)
        means.append(np.mean(rl) / 150)
        print(f"  repetition {rep}: mean run length {means[-1]:.3f} x ERT ({time.monotonic() - t:.0f} s)", flush=True)
    m, sd = float(np.mean(means)), float(np.std(means, ddof=1))
    p = norm.cdf((0.8 - m) / sd) + norm.sf((1.25 - m) / sd)
    print(f"mean {m:.3f} x ERT, sd {sd:.3f} across repetitions (min {min(means):.3f}, max {max(means):.3f}); "
          f"P(outside [0.8, 1.25]) ~ {p:.1e} (normal approximation)")


def demo(reps: int, first: int) -> None:
    from collections import Counter

    from detectors import KSDrift
    from inferwatch import demo as d

    rows, window = 300, 100  # the demo's defaults
    fired: Counter[int] = Counter()
    shifted_missed = 0
    held_min, shifted_max = 1.0, 0.0  # the smallest held-out and the largest shifted window p-value
    t = time.monotonic()
    for seed in range(first, first + reps):
        X_train, X_test, _, y_test, _, _ = d._data(seed)
        rng = np.random.default_rng(seed)
        held_out = X_test.iloc[rng.permutation(len(X_test))[:rows]]
        malignant = X_test[y_test.values == 0]
        shifted = malignant.iloc[rng.integers(0, len(malignant), rows)]
        det = KSDrift(p_val=0.05, correction="bonferroni").fit(X_train.reset_index(drop=True))
        held = [det.reset().update(held_out.iloc[i:i + window].reset_index(drop=True)).result()
                for i in range(0, rows, window)]
        fired[sum(bool(r.is_drift) for r in held)] += 1
        held_min = min(held_min, *(r.p_value for r in held))
        moved = [det.reset().update(shifted.iloc[i:i + window].reset_index(drop=True)).result()
                 for i in range(0, rows, window)]
        shifted_missed += sum(not r.is_drift for r in moved)
        shifted_max = max(shifted_max, *(r.p_value for r in moved))
    print(f"demo, seeds {first}..{first + reps - 1}: held-out windows fired per run {dict(sorted(fired.items()))}; "
          f"smallest held-out window p-value {held_min:.1e}; shifted windows missed {shifted_missed} of {3 * reps}, "
          f"largest shifted window p-value {shifted_max:.1e} ({time.monotonic() - t:.0f} s)")


def ks_power(reps: int, ref_rows: int, rows: int, shifted: int | None, shift: float, cut: float, seed: int) -> None:
    from scipy.stats import kstwo

    shifted = rows if shifted is None else shifted
    m, n = ref_rows, rows
    en = round(m * n / (m + n))
    rng = np.random.default_rng([seed, m, n])
    miss = total = 0
    worst = 0.0
    i = np.arange(1, n + 1) / n
    for _ in range(reps):
        ref = np.sort(rng.normal(size=m))
        x = rng.normal(size=(5000, n))
        x[:, n - shifted:] += shift
        x.sort(axis=1)
        below = np.searchsorted(ref, x, side="left") / m  # F_ref just below each window value
        at = np.searchsorted(ref, x, side="right") / m
        # sup |F_ref - G| is attained at a pooled point: just below or at a window value
        d = np.maximum((below - (i - 1 / n)).max(axis=1), (i - at).max(axis=1))
        p = kstwo.sf(d, en)
        miss += int((p >= cut).sum())
        total += len(p)
        worst = max(worst, float(p.max()))
    print(f"KS: reference {m} rows, windows of {n} rows ({shifted} shifted {shift} sd): {miss} of {total} windows "
          f"miss p < {cut}; largest p-value {worst:.1e}")


def cbpe_runtime(reps: int, first: int) -> None:
    from scipy.stats import norm
    from sklearn.metrics import accuracy_score

    from detectors.performance import CBPE
    from tests.unit.test_performance_runtime import WINDOW, frame, world

    zs = []
    for seed in range(first, first + reps):
        ref, draw = world(seed)
        cb = CBPE(scores="proba", prediction="label", min_rows=100).fit(frame(ref))
        for d in (draw(WINDOW), draw(WINDOW, shift=0.8)):
            r = cb.reset().update({k: d[k] for k in ("label", "proba")}).result()
            realized = accuracy_score(d["truth"], d["label"])
            zs.append((r.extra["metrics"]["accuracy"] - realized) / r.extra["standard_error"]["accuracy"])
    z = np.array(zs)
    m, sd = float(z.mean()), float(z.std(ddof=1))
    print(f"CBPE, {len(z)} windows: z mean {m:.3f}, sd {sd:.3f}, largest |z| {np.abs(z).max():.2f}; "
          f"P(|z| > 4.5) ~ {norm.sf((4.5 - m) / sd) + norm.cdf((-4.5 - m) / sd):.1e} a window (normal)")


_NANNYML_DRIVER = """
import contextlib, io, runpy, sys
script, chunk, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
main = runpy.run_path(script)["main"]
for path in paths:
    sys.argv = [script, path, chunk]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main()
    print(out.getvalue().strip().splitlines()[-1], flush=True)
"""


def _tail(values: list[float], low: float | None, high: float | None) -> tuple[float, float, float]:
    """Mean, sd and the normal probability of falling below ``low`` or above ``high``."""
    from scipy.stats import norm

    v = np.asarray(values, dtype=float)
    m, sd = float(v.mean()), float(v.std(ddof=1))
    p = (norm.cdf((low - m) / sd) if low is not None else 0.0) + (norm.sf((high - m) / sd) if high is not None else 0.0)
    return m, sd, float(p)


def report(what: str, values: list[float], low: float | None, high: float | None) -> float:
    """Print ``values``' mean, sd and range and return the normal probability of leaving [low, high]."""
    m, sd, p = _tail(values, low, high)
    print(f"  {what}: mean {m:+.3f}, sd {sd:.3f}, range [{min(values):+.3f}, {max(values):+.3f}]; "
          f"P(outside the bound) ~ {p:.1e}")
    return p


def dle(reps: int, first: int, nannyml: bool, fire_reps: int) -> None:
    if reps:
        _dle_slow(reps, first, nannyml)
    if fire_reps:
        _dle_fire(fire_reps, first)


def _dle_slow(reps: int, first: int, nannyml: bool) -> None:
    import json
    import subprocess
    import tempfile

    from detectors.performance.dle import DLE
    from tests.unit.test_performance_dle import CHUNK, REALIZED_BOUND, SHIFTS, W, noise_sd, world

    feats = ["x0", "x1", "x2"]
    order = [4, 0, 2, 3]  # the monotone check's chunks: shifts -0.7, 0, 0.5, 1.0
    inside = [i for i, s in enumerate(SHIFTS) if s in (0.0, -0.7)]
    runs = []
    t = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for seed in range(first, first + reps):
            rng = np.random.default_rng(seed)
            d = world(rng)  # the slow test's data, drawn as it draws it
            xr, yr, xa, ya = d["ref_x"], d["ref_truth"], d["ana_x"], d["ana_truth"]
            if nannyml:
                files.append(str(Path(tmp) / f"s{seed}.npz"))
                np.savez(files[-1], **d)
            est = DLE(features=feats, min_rows=1).fit({**{f: xr[:, j] for j, f in enumerate(feats)},
                                                       "prediction": d["ref_pred"], "truth": yr})
            run: dict[str, dict[str, list[float]]] = {"ours": {"mae": [], "rmse": []},
                                                      "realized": {"mae": [], "rmse": []},
                                                      "spread": {"mae": [], "rmse": []}}
            for i in range(len(SHIFTS)):
                sl = slice(i * CHUNK, (i + 1) * CHUNK)
                x, pred = xa[sl], d["ana_pred"][sl]
                r = est.reset().update({**{f: x[:, j] for j, f in enumerate(feats)}, "prediction": pred}).result()
                draws = (x @ W - pred) + rng.normal(size=(400, len(x))) * noise_sd(x)
                err = ya[sl] - pred
                for m, fig, spread in (("mae", np.abs(err).mean(), np.abs(draws).mean(axis=1).std(ddof=1)),
                                       ("rmse", np.sqrt((err**2).mean()),
                                        np.sqrt((draws**2).mean(axis=1)).std(ddof=1))):
                    run["ours"][m].append(r.extra["metrics"][m])
                    run["realized"][m].append(float(fig))
                    run["spread"][m].append(float(spread))
            runs.append(run)
        print(f"DLE, seeds {first}..{first + reps - 1}: ours computed ({time.monotonic() - t:.0f} s)", flush=True)
        if nannyml:
            from tests.reference.run_nannyml import ROOT, nannyml_python

            done = subprocess.run([nannyml_python(), "-c", _NANNYML_DRIVER,
                                   str(ROOT / "tests" / "reference" / "nannyml_dle.py"), str(CHUNK), *files],
                                  capture_output=True, text=True, check=True)
            for run, line in zip(runs, done.stdout.strip().splitlines(), strict=True):
                run["theirs"] = json.loads(line)["chunks"]
            print(f"  NannyML run over {len(files)} seeds ({time.monotonic() - t:.0f} s)", flush=True)

    total = 0.0
    print("monotone estimates and realized figures (shifts -0.7 < 0 < 0.5 < 1.0), consecutive differences:")
    for kind in ("ours", "realized"):
        p = 0.0
        for m in ("mae", "rmse"):
            for a, b in itertools.pairwise(order):
                p += report(f"{kind:8s} {m:4s} {SHIFTS[b]:+.1f} - {SHIFTS[a]:+.1f}",
                            [r[kind][m][b] - r[kind][m][a] for r in runs], 0.0, None)
        print(f"  -> {kind}: P(a run fails) <= {p:.1e} (union of 6)")
        total += p
    if nannyml:
        print("against NannyML, (ours - NannyML) / NannyML's sampling error per figure, asserted |.| <= 4:")
        p = 0.0
        for m in ("mae", "rmse"):
            for i in range(len(SHIFTS)):
                p += report(f"shift {SHIFTS[i]:+.1f} {m:4s}",
                            [(r["ours"][m][i] - r["theirs"][i][m]["value"]) / r["theirs"][i][m]["sampling_error"]
                             for r in runs], -4.0, 4.0)
        print(f"  -> P(a run fails) <= {p:.1e} (union of 10)")
        total += p
        means = [float(np.mean([abs(r["ours"][m][i] - r["theirs"][i][m]["value"]) / r["theirs"][i][m]["sampling_error"]
                                for m in ("mae", "rmse") for i in range(len(SHIFTS))])) for r in runs]
        total += report("mean |ours - NannyML| over the 10 figures, asserted <= 0.6", means, None, 0.6)
        print("against the realized figures inside the reference's range, (ours - realized) / (4 spreads + the "
              f"reference's sampling error), asserted |.| <= REALIZED_BOUND = {REALIZED_BOUND}:")
        p = 0.0
        for m in ("mae", "rmse"):
            for i in inside:
                p += report(f"shift {SHIFTS[i]:+.1f} {m:4s}",
                            [(r["ours"][m][i] - r["realized"][m][i])
                             / (4 * r["spread"][m][i] + r["theirs"][i][m]["sampling_error"] * np.sqrt(CHUNK / 10_000))
                             for r in runs], -REALIZED_BOUND, REALIZED_BOUND)
        print(f"  -> P(a run fails) <= {p:.1e} (union of {2 * len(inside)})")
        total += p
    print(f"test_dle_agrees_with_nannyml_and_tracks_realized: P(a run fails) <= {total:.1e} (all checks above)")


def _dle_fire(fire_reps: int, first: int) -> None:
    from detectors.performance.dle import DLE
    from tests.unit.test_performance_dle import calm_and_loud, noise_sd

    t = time.monotonic()
    calm_rise, loud_rise = [], []
    for seed in range(first, first + fire_reps):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=4000)
        y = x + rng.normal(size=4000) * noise_sd(x[:, None])
        est = DLE(features=["x0"], min_rows=10, max_rise=0.2).fit({"x0": x, "prediction": x, "truth": y})
        for rises, w in zip((calm_rise, loud_rise), calm_and_loud(rng), strict=True):
            rises.append(float(est.reset().update({"x0": w, "prediction": w}).result().distance))
    print(f"test_dle_windows_merge_and_fire, {fire_reps} references: estimated rise over the reference's MAE")
    p = report("calm window, asserted not above 0.2", calm_rise, None, 0.2)
    p += report("loud window, asserted above 0.2", loud_rise, 0.2, None)
    print(f"  calm windows above 0.2: {sum(r > 0.2 for r in calm_rise)}, loud ones not above it: "
          f"{sum(r <= 0.2 for r in loud_rise)} of {fire_reps}")
    print(f"  -> P(a run fails) <= {p:.1e} ({time.monotonic() - t:.0f} s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    dp = sub.add_parser("distance-power")
    dp.add_argument("--refs", type=int, default=300)
    dp.add_argument("--windows", type=int, default=2000)
    dp.add_argument("--ref-rows", type=int, default=1000)
    dp.add_argument("--rows", type=int, default=100)
    dp.add_argument("--shift", type=float, default=1.0)
    dp.add_argument("--draws", type=int, default=400)
    dp.add_argument("--tests", type=int, default=3)
    dp.add_argument("--factory", nargs="*", default=list(FACTORIES))
    dp.add_argument("--seed", type=int, default=1)
    oc = sub.add_parser("online-cvm")
    oc.add_argument("--reps", type=int, default=30)
    oc.add_argument("--ref-rows", type=int, default=3000)
    oc.add_argument("--streams", type=int, default=300)
    oc.add_argument("--seed", type=int, default=1)
    kp = sub.add_parser("ks-power")
    kp.add_argument("--reps", type=int, default=200)
    kp.add_argument("--ref-rows", type=int, default=3000)
    kp.add_argument("--rows", type=int, default=100)
    kp.add_argument("--shifted", type=int, default=None)
    kp.add_argument("--shift", type=float, default=1.0)
    kp.add_argument("--cut", type=float, default=0.005)
    kp.add_argument("--seed", type=int, default=1)
    cr = sub.add_parser("cbpe-runtime")
    cr.add_argument("--reps", type=int, default=300)
    cr.add_argument("--first", type=int, default=1000)
    de = sub.add_parser("demo")
    de.add_argument("--reps", type=int, default=2000)
    de.add_argument("--first", type=int, default=1000)
    dl = sub.add_parser("dle")
    dl.add_argument("--reps", type=int, default=100)
    dl.add_argument("--first", type=int, default=1000)
    dl.add_argument("--no-nannyml", dest="nannyml", action="store_false")
    dl.add_argument("--fire-reps", type=int, default=300)
    args = ap.parse_args()
    if args.what == "distance-power":
        distance_power(args.refs, args.windows, args.ref_rows, args.rows, args.shift, args.draws, args.tests,
                       args.factory, args.seed)
    elif args.what == "online-cvm":
        online_cvm(args.reps, args.ref_rows, args.streams, args.seed)
    elif args.what == "ks-power":
        ks_power(args.reps, args.ref_rows, args.rows, args.shifted, args.shift, args.cut, args.seed)
    elif args.what == "cbpe-runtime":
        cbpe_runtime(args.reps, args.first)
    elif args.what == "demo":
        demo(args.reps, args.first)
    elif args.what == "dle":
        dle(args.reps, args.first, args.nannyml, args.fire_reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())

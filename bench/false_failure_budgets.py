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
"""

from __future__ import annotations

import argparse
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
    args = ap.parse_args()
    if args.what == "distance-power":
        distance_power(args.refs, args.windows, args.ref_rows, args.rows, args.shift, args.draws, args.tests,
                       args.factory, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())

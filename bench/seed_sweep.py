"""Run every statistical test of the suite across many seeds and report clean/failed per test.

The suite's statistical assertions (false-alarm rates, power, run lengths, null windows,
uniformity, agreement of decisions with a reference at the edge of a threshold) are designed
for a false-failure probability of at most 1e-3 each, stated next to each; a fixed seed only
makes a run reproducible. This script checks that the design, not a lucky seed, keeps them
green: it runs the tests below once per seed ``k`` with ``INFERWATCH_SEED_SWEEP=k``
(tests/seeds.py: every ``numpy.random.default_rng(s)`` in the tests and in the code under test
becomes ``default_rng([s, tag, k])``), one pytest process per seed, niced, one at a time.

    nice python bench/seed_sweep.py --seeds 20          # make seed-sweep
    python bench/seed_sweep.py --seeds 3 -k reservoir    # a subset

Exit status 1 if any test failed for any seed. Not swept: seeds that are not numpy
Generators (``random.Random`` in the fault rig and one metrics test, scikit-learn
``random_state`` integers, torch's global seed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Every test whose outcome depends on chance (test ids; a file = all its tests). Tests that
# compare two implementations on the same data (equal to scipy, alibi, sklearn, statsmodels)
# are seed-proof by construction and left out.
STATISTICAL = [
    "tests/unit/test_oracles.py::test_fdr_matches_benjamini_hochberg_by_definition",
    "tests/unit/test_oracles.py::test_fdr_decision_of_a_detector_matches_statsmodels",
    "tests/unit/test_oracles.py::test_reservoir_sample_is_uniform",
    "tests/unit/test_oracles.py::test_distance_detectors_stay_quiet_on_null_windows_and_fire_on_a_shift",
    "tests/unit/test_distance_calibration.py",
    "tests/unit/test_detectors_stats.py::test_false_positive_rate_under_no_drift",
    "tests/unit/test_detectors_stats.py::test_power_not_below_alibi",
    "tests/unit/test_detectors_misc.py::test_outlier_rate_near_fpr_and_detection",
    "tests/unit/test_detectors_misc.py::test_quality_issues_and_clean_window",
    "tests/unit/test_detectors_misc.py::test_online_cvm_run_length_and_detection",
    "tests/unit/test_detectors_misc.py::test_online_thresholds_give_the_target_hazard_on_fresh_streams",
    "tests/unit/test_detectors_misc.py::test_page_hinkley_no_alarm_on_null_and_alarm_on_shift",
    "tests/unit/test_detectors_ties.py::test_discrete_asymptotic_tail_against_simulated_null",
    "tests/unit/test_detectors_ties.py::test_null_p_values_of_tied_small_windows_are_not_anticonservative",
    "tests/unit/test_detectors_ties.py::test_conditional_p_values_match_a_row_shuffling_oracle",
    "tests/unit/test_performance_cbpe.py::test_cbpe_fires_on_an_estimated_drop",
    "tests/unit/test_performance_dle.py::test_dle_windows_merge_and_fire",
    "tests/unit/test_performance_realized.py::test_degradation_fires_against_the_reference_and_waits_for_labels",
    "tests/unit/test_performance_variants.py::test_false_positive_rate_under_no_difference",
    "tests/unit/test_performance_variants.py::test_power_and_coverage_with_a_degraded_variant",
    "tests/unit/test_performance_variants.py::test_input_shift_between_variants_is_reported_per_feature",
    "tests/unit/test_validity.py",
    "tests/unit/test_llm_codec.py::test_detectors_run_on_the_features_of_llm_exchanges",
    "tests/unit/test_report.py::test_performance_estimated_by_cbpe_when_no_label_is_in",
]


def _run(seed: int, ids: list[str], junit: Path) -> tuple[dict[str, str], float]:
    env = {**os.environ, "INFERWATCH_SEED_SWEEP": str(seed), "PYTHONPATH": str(REPO)}
    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                    f"--junitxml={junit}", *ids], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    outcome: dict[str, str] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
            bad = case.find("failure") is not None or case.find("error") is not None
            skipped = case.find("skipped") is not None
            outcome[name] = "failed" if bad else "skipped" if skipped else "passed"
    return outcome, time.monotonic() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("-k", default="", help="only test ids containing this")
    args = ap.parse_args()
    ids = [i for i in STATISTICAL if args.k in i]
    seeds = range(args.first, args.first + args.seeds)
    failed: dict[str, list[int]] = defaultdict(list)
    ran: dict[str, int] = defaultdict(int)
    with tempfile.TemporaryDirectory() as tmp:
        for s in seeds:
            outcome, took = _run(s, ids, Path(tmp) / f"seed{s}.xml")
            if not outcome:
                print(f"seed {s}: no results (collection failed?)", flush=True)
                failed["<collection>"].append(s)
                continue
            for name, res in outcome.items():
                if res != "skipped":
                    ran[name] += 1
                if res == "failed":
                    failed[name].append(s)
            print(f"seed {s:3d}: {len(outcome)} tests, {sum(r == 'failed' for r in outcome.values())} failed "
                  f"({took:.0f} s)", flush=True)
    print(f"\n{'test':100s} {'runs':>4s} {'failed':>6s}  failing seeds")
    for name in sorted(ran.keys() | failed.keys()):
        print(f"{name:100s} {ran[name]:4d} {len(failed[name]):6d}  {failed[name] or '-'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

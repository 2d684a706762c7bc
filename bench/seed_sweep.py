"""Run every unit test whose outcome depends on chance across many seeds; report clean/failed per test.

The suite's statistical assertions (false-alarm rates, power, run lengths, null windows,
uniformity, agreement with a reference at the edge of a threshold or within a Monte-Carlo
error) are designed for a false-failure probability of at most 1e-3 each, stated next to
each; a fixed seed only makes a run reproducible. This script checks that the design, not a
lucky seed, keeps them green: it runs the tests once per seed ``k`` with
``INFERWATCH_SEED_SWEEP=k`` (tests/seeds.py: every explicitly seeded stream in the tests and in
the code under test — numpy ``default_rng``/``RandomState``/``np.random.seed``, scikit-learn's
and scipy's ``random_state=<int>``, ``random.Random``/``random.seed`` — becomes one derived
from ``(seed, tag, k)``; the global numpy, ``random`` and torch streams are seeded per test from
``(k, test id)``; Hypothesis gets ``--hypothesis-seed=k``; Python subprocesses get the same
through bench/sweep_site), one pytest process per seed, one at a time.

Which tests: ``--discover`` runs the whole unit suite once with ``INFERWATCH_SEED_RECORD`` and
writes bench/seed_sweep_tests.txt: every test that created a seeded stream of any of the kinds
above (or an unseeded numpy one), Hypothesis tests included. The sweep runs that list.

    nice python bench/seed_sweep.py --discover              # refresh the list (one unit-suite run)
    nice python bench/seed_sweep.py --discover tests/unit/test_x.py --append   # add a file's
    nice python bench/seed_sweep.py --seeds 20              # make seed-sweep
    nice python bench/seed_sweep.py --seeds 3 -k reservoir  # a subset

Reproducing a failure: a Hypothesis test's examples depend on more than ``--hypothesis-seed``:
Hypothesis mixes in constants from the project's modules imported so far, so the same seed
draws other examples alone than after the tests before it (issue 16: test_idempotency's
generated test failed for seed 18 in the sweep, every time, and passed alone). Run the list up
to the failing test, with ``INFERWATCH_SEED_SWEEP``, ``--hypothesis-seed`` and PYTHONPATH as here.

Exit status 1 if any test failed for any seed. Not swept: doctests (their printed values are the
outputs for seed 0, not statistical claims), the integration and fault suites (they need the
service stack; the fault rig's ``random.Random`` schedules included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIST = REPO / "bench" / "seed_sweep_tests.txt"
SITE = REPO / "bench" / "sweep_site"


def _env(seed: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "INFERWATCH_SEED_RECORD"}
    return {**env, "INFERWATCH_SEED_SWEEP": str(seed), "PYTHONPATH": f"{SITE}{os.pathsep}{REPO}", **extra}


def _pytest(args: list[str], env: dict[str, str], junit: Path, seed: int) -> dict[str, tuple[str, str]]:
    """Outcome per test (``module::name``): (passed|failed|skipped, first line of the failure)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
           f"--hypothesis-seed={seed}", f"--junitxml={junit}", *args]
    subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    outcome: dict[str, tuple[str, str]] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = f"{case.get('classname', '')}::{case.get('name')}"
            bad = case.find("failure")
            if bad is None:
                bad = case.find("error")
            if bad is not None:
                outcome[name] = ("failed", (bad.get("message") or "").splitlines()[0][:160] if bad.get("message") else "")
            elif case.find("skipped") is not None:
                outcome[name] = ("skipped", "")
            else:
                outcome[name] = ("passed", "")
    return outcome


def discover(paths: list[str], append: bool) -> int:
    """One run of the unit suite (or ``paths``) recording the tests that create seeded (or
    unseeded numpy) streams; ``append`` keeps the tests already listed."""
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "record.txt"
        t = time.monotonic()
        outcome = _pytest(["-m", "not integration", *paths], _env(0, INFERWATCH_SEED_RECORD=str(record)),
                          Path(tmp) / "discover.xml", 0)
        ids = sorted(set(record.read_text().split("\n")) - {""}) if record.exists() else []
    ids = [i for i in ids if i.startswith("tests/unit/")]
    if append and LIST.exists():
        ids = sorted(set(ids) | {i for i in LIST.read_text().split("\n") if i and not i.startswith("#")})
    LIST.write_text("# written by `python bench/seed_sweep.py --discover`: the unit tests that create a seeded\n"
                    "# random stream (or an unseeded numpy one); bench/seed_sweep.py runs these per seed\n"
                    + "".join(f"{i}\n" for i in ids))
    failed = sorted(n for n, (r, _) in outcome.items() if r == "failed")
    print(f"discovery run (seed 0): {len(outcome)} tests in {time.monotonic() - t:.0f} s, {len(ids)} use chance; "
          f"failed: {failed or '-'}")
    print(f"wrote {LIST.relative_to(REPO)}")
    return 1 if failed or not ids else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--discover", nargs="*", metavar="PATH",
                    help="refresh bench/seed_sweep_tests.txt from a run of PATH (default tests/unit) and stop")
    ap.add_argument("--append", action="store_true", help="with --discover: keep the tests already listed")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("-k", default="", help="only test ids containing this")
    ap.add_argument("--json", type=Path, help="also write the per-test results here")
    args = ap.parse_args()
    if args.discover is not None:
        return discover(args.discover or ["tests/unit"], args.append)
    ids = [i for i in LIST.read_text().split("\n") if i and not i.startswith("#") and args.k in i]
    if not ids:
        print(f"no tests selected (run --discover first?): {LIST}")
        return 1
    seeds = range(args.first, args.first + args.seeds)
    failed: dict[str, list[int]] = defaultdict(list)
    messages: dict[str, list[str]] = defaultdict(list)
    ran: dict[str, int] = defaultdict(int)
    print(f"{len(ids)} tests x seeds {seeds.start}..{seeds.stop - 1}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for s in seeds:
            t = time.monotonic()
            outcome = _pytest(ids, _env(s), Path(tmp) / f"seed{s}.xml", s)
            if not outcome:
                print(f"seed {s}: no results (collection failed?)", flush=True)
                failed["<collection>"].append(s)
                continue
            for name, (res, msg) in outcome.items():
                if res != "skipped":
                    ran[name] += 1
                if res == "failed":
                    failed[name].append(s)
                    messages[name].append(f"seed {s}: {msg}")
            bad = [n for n, (r, _) in outcome.items() if r == "failed"]
            print(f"seed {s:3d}: {len(outcome)} tests, {len(bad)} failed {bad or ''} ({time.monotonic() - t:.0f} s)",
                  flush=True)
    print(f"\n{len(ran)} tests run, {sum(ran.values())} test-runs, {sum(map(len, failed.values()))} failures")
    for name in sorted(failed):
        print(f"{name}  failed for seeds {failed[name]}")
        for m in messages[name]:
            print(f"    {m}")
    if args.json:
        args.json.write_text(json.dumps({"seeds": list(seeds), "runs": ran, "failed": failed, "messages": messages},
                                        indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

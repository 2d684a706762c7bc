"""Plant each bug issue 16 lists, one at a time, in a temporary copy of the tree, and check that the
unit tests that own the code catch it.

Issue 16 found eight of seventeen planted bugs not caught by the unit suite (and one caught only
by a timing-dependent crash test). Each is written below as an exact text replacement in the
source (the replaced text must occur exactly once, so a refactoring that moves the code makes
this script fail loudly instead of planting nothing). For every plant the owning test files run
on a fresh copy of the tree with the plant applied; "caught" means pytest failed. The unmodified
copy runs the same files first: they must pass, or a failure would prove nothing.

    nice python bench/planted_bugs.py            # every plant against its owning test files
    nice python bench/planted_bugs.py --unit     # every plant against the whole unit suite (-x)
    nice python bench/planted_bugs.py -k fdr     # plants whose name contains "fdr"

Exit status 1 if a plant is not caught (or the baseline fails).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Plant:
    name: str
    issue_text: str  # the bug as issue 16 words it
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


_FINISH_OK = """        n = fut.result()  # errors other than backpressure stop the worker, uncommitted
        if n is None:
            consumer.seek_to_committed()
            return False
        consumer.commit(entries)
"""
_FINISH_EARLY = """        consumer.commit(entries)
        n = fut.result()  # errors other than backpressure stop the worker, uncommitted
        if n is None:
            consumer.seek_to_committed()
            return False
"""
_SUBMIT_OK = """        self._inflight = (self._pool.submit(self._write_retrying, kind, payload), consumer, kind, entries)
"""
_SUBMIT_EARLY = """        self._inflight = (self._pool.submit(self._write_retrying, kind, payload), consumer, kind, entries)
        consumer.commit(entries)
"""

# the owning test files: where the tests written for these bugs live (the SQLite log and audit
# store run the shared contracts of tests/contracts.py; the commit plants are caught there by the
# deterministic tests, not by the timing-dependent crash test of tests/unit/test_audit_crash.py)
AUDIT_TESTS = ("tests/unit/test_embedded_backends.py",)
WINDOW_TESTS = ("tests/unit/test_oracles.py",)
DISTANCE_TESTS = ("tests/unit/test_oracles.py",)

PLANTS = [
    Plant("feedback-rows-ignore-truth", "a feedback record with 3 truth rows gives 1 audit document",
          "inferwatch/record.py",
          "        return max(n_rows(self.inputs), n_rows(self.outputs), n_rows(self.truth), 1)",
          "        return max(n_rows(self.inputs), n_rows(self.outputs), 1)",
          ("tests/unit/test_oracles.py", *AUDIT_TESTS)),
    Plant("feedback-documents-ignore-truth", "a feedback record with 3 truth rows gives 1 audit document",
          "inferwatch/record.py",
          "                for i in range(n_truth) if any(v[i] is not None for v in truth.values())]",
          "                for i in range(max(n_in, n_out, 1)) if any(v[i] is not None for v in truth.values())]",
          AUDIT_TESTS),
    Plant("response-writes-timestamp", "the response half writing `timestamp` instead of `response_timestamp`",
          "inferwatch/record.py",
          '"response": "response_timestamp",', '"response": "timestamp",', AUDIT_TESTS),
    Plant("fdr-p-value-above-alpha", "the FDR correction reporting a p-value above alpha while flagging drift",
          "detectors/common/corrections.py",
          "        adjusted = min(1.0, float((order * n / i).min()))",
          "        adjusted = min(1.0, float((order * n / i).max()))",
          ("tests/unit/test_oracles.py",)),
    Plant("sqlite-commit-erases-state", "a SQLite commit without state erasing the saved detector state",
          "inferwatch/sqlite_log.py",
          "state=coalesce(excluded.state, offsets.state)", "state=excluded.state",
          ("tests/unit/test_embedded_backends.py",)),
    Plant("sliding-window-starts-at-end-minus-step", "a sliding time window starting at end - step",
          "detectors/runtime/windows.py",
          "        return end - timedelta(seconds=self.seconds), end",
          "        return end - timedelta(seconds=self.step), end", WINDOW_TESTS),
    Plant("reservoir-keeps-recent-rows", "reservoir sampling that keeps only recent rows",
          "detectors/runtime/windows.py",
          "            j = _rand(self.key, self.seen) % self.seen",
          "            j = _rand(self.key, self.seen) % (max_rows or self.seen)", WINDOW_TESTS),
    Plant("late-rows-per-batch", "late rows counted once per batch instead of per row",
          "detectors/runtime/windows.py",
          "            self.late_rows += n", "            self.late_rows += 1", WINDOW_TESTS),
    Plant("distance-threshold-fires-always",
          "PSI, Jensen-Shannon, Hellinger and Wasserstein reporting drift on every window (explicit threshold)",
          "detectors/drift/_distance.py",
          "        flags = dist > self.threshold", "        flags = dist >= 0", DISTANCE_TESTS),
    Plant("distance-test-fires-always",
          "PSI, Jensen-Shannon, Hellinger and Wasserstein reporting drift on every window (default test)",
          "detectors/drift/_distance.py",
          "            p[i] = (1 + np.count_nonzero(null >= d[i] - 1e-12 * max(abs(d[i]), 1.0))) / (len(null) + 1)",
          "            p[i] = 1 / (len(null) + 1)",
          ("tests/unit/test_distance_calibration.py::test_the_default_test_holds_its_level_on_null_windows",)),
    Plant("audit-commit-before-write-returns", "committing the log position before the audit write is durable",
          "inferwatch/workers.py", _FINISH_OK, _FINISH_EARLY,
          ("tests/unit/test_oracles.py",)),
    Plant("audit-commit-on-submit", "committing the log position before the audit write is durable",
          "inferwatch/workers.py", _SUBMIT_OK, _SUBMIT_EARLY,
          ("tests/unit/test_oracles.py",)),
]


def _copy_tree(dest: Path) -> None:
    """The working tree's tracked and untracked-but-not-ignored files (what a checkout would hold)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for f in files:
        src = REPO / f
        if f and src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)


def _pytest(tree: Path, tests: tuple[str, ...], log: Path) -> tuple[int, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("INFERWATCH_SEED_SWEEP", None)
    t = time.monotonic()
    with log.open("wb") as out:
        rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                            cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    return rc, time.monotonic() - t


def _last_failure(log: Path) -> str:
    lines = [x for x in log.read_text(errors="replace").splitlines() if x.startswith(("FAILED", "ERROR"))]
    return lines[0][:150] if lines else "(no FAILED line)"


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("-k", default="", help="only plants whose name contains this (comma-separated: any of)")
    ap.add_argument("--unit", action="store_true", help="run the whole unit suite (-x) instead of the owners")
    ap.add_argument("--tests", nargs="+", help="run these test files or ids instead of the owners")
    args = ap.parse_args()
    plants = [p for p in PLANTS if any(k in p.name for k in args.k.split(","))]
    unit = ("-m", "not integration", "tests/unit")
    with tempfile.TemporaryDirectory(prefix="planted-") as tmp:
        base = Path(tmp) / "base"
        _copy_tree(base)
        owners = tuple(args.tests) if args.tests else tuple(sorted({t for p in plants for t in p.tests}))
        rc, took = _pytest(base, unit if args.unit else owners, Path(tmp) / "base.log")
        print(f"baseline (no plant): {'passed' if rc == 0 else 'FAILED'} ({took:.0f} s)", flush=True)
        if rc != 0:
            print((Path(tmp) / "base.log").read_text(errors="replace")[-3000:])
            return 1
        missed = []
        for p in plants:
            tree = Path(tmp) / p.name
            shutil.copytree(base, tree)
            target = tree / p.path
            text = target.read_text()
            if text.count(p.old) != 1:
                print(f"{p.name}: the code to plant in is gone or ambiguous ({text.count(p.old)} matches in {p.path})")
                missed.append(p.name)
                continue
            target.write_text(text.replace(p.old, p.new))
            log = Path(tmp) / f"{p.name}.log"
            rc, took = _pytest(tree, unit if args.unit else tuple(args.tests) if args.tests else p.tests, log)
            caught = rc not in (0, 5)  # 5: no tests collected
            print(f"{p.name:42s} {'caught' if caught else 'NOT CAUGHT'} ({took:.0f} s)"
                  f"{': ' + _last_failure(log) if caught else ''}", flush=True)
            if not caught:
                missed.append(p.name)
            shutil.rmtree(tree)
    print(f"\n{len(plants) - len(missed)} of {len(plants)} plants caught" + (f"; not caught: {missed}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

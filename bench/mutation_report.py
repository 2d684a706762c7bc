"""Mutation score per module from ``mutmut results --all true`` on stdin (``make mutation``).

Score = killed (incl. timeouts) / (mutants run); "not checked" mutants are counted apart so a
partial run says how much of each module it covered.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict

_LINE = re.compile(r"^\s*(?P<name>\S+?)__mutmut_\d+:\s*(?P<status>.+?)\s*$")


def module_of(name: str) -> str:
    parts = name.split(".")
    for i, p in enumerate(parts):
        if p.startswith(("x_", "xǁ")):
            return ".".join(parts[:i])
    return ".".join(parts[:-1])


def main() -> int:
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for line in sys.stdin:
        m = _LINE.match(line)
        if not m:
            continue
        mod, status = module_of(m["name"]), m["status"]
        by_module[mod][status] += 1
        if status in ("survived", "no tests"):
            survivors[mod].append(line.split(":")[0].strip())
    print(f"{'module':40s} {'killed':>6s} {'survived':>8s} {'no tests':>8s} {'other':>5s} {'not run':>7s} {'score':>6s}")
    for mod, c in sorted(by_module.items()):
        killed = c["killed"] + c["timeout"]
        not_run = c["not checked"]
        run = sum(c.values()) - not_run - c["skipped"]
        other = run - killed - c["survived"] - c["no tests"]  # (no tests: no selected test reaches it)
        score = f"{100 * killed / run:.0f}%" if run else "-"
        print(f"{mod:40s} {killed:6d} {c['survived']:8d} {c['no tests']:8d} {other:5d} {not_run:7d} {score:>6s}")
    for mod, names in sorted(survivors.items()):
        print(f"\nsurvivors in {mod} (mutmut show NAME):")
        for n in names:
            print("  ", n)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Mutation score per module from ``mutmut results --all true`` on stdin (``make mutation``).

    mutmut results --all true | python bench/mutation_report.py [--markdown bench/MUTATION.md]

Score = killed (incl. timeouts) / mutants run; "not checked" mutants are counted apart so a
partial run says how much of each module it covered. Survivors are listed with the reason
each is accepted, from bench/mutation_survivors.txt (``<mutant name>: <reason>``; a line
``<prefix>*: <reason>`` covers every survivor whose name starts with the prefix); a
survivor with no reason there is listed as "not explained" — a missing test until shown
otherwise. "score w/o equivalent" leaves out of the denominator the survivors whose
reason starts with "equivalent" (mutants that cannot change behaviour are not mutants).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

_LINE = re.compile(r"^\s*(?P<name>\S+?__mutmut_\d+):\s*(?P<status>.+?)\s*$")
REASONS = Path(__file__).with_name("mutation_survivors.txt")

# module groups of issue 16's mutation target (prefixes of mutant names)
GROUPS = {
    "record builders (inferwatch/record.py)": ("inferwatch.record.",),
    "audit documents (inferwatch/audit.py)": ("inferwatch.audit.",),
    "codecs (inferwatch/codecs/)": ("inferwatch.codecs.",),
    "pairing (collectors/seldon_v2.py pair, collectors/http.py CloudEvent pairing key)": (
        "collectors.seldon_v2.x_pair", "collectors.http.x_envelope_from_cloudevent", "collectors.http.x__check_required",
        "collectors.http.x__event_time"),
    "log and offsets (inferwatch/sqlite_log.py)": ("inferwatch.sqlite_log.",),
    "windows (detectors/runtime/windows.py)": ("detectors.runtime.windows.",),
    "corrections (detectors/common/corrections.py)": ("detectors.common.corrections.",),
    "distance detectors (psi, js, hellinger, wasserstein, _distance)": (
        "detectors.drift.psi.", "detectors.drift.jensen_shannon.", "detectors.drift.hellinger.",
        "detectors.drift.wasserstein.", "detectors.drift._distance."),
    "batching sink (inferwatch/batching.py)": ("inferwatch.batching.",),
}


def module_of(name: str) -> str:
    parts = name.split(".")
    for i, p in enumerate(parts):
        if p.startswith(("x_", "xǁ")):
            return ".".join(parts[:i])
    return ".".join(parts[:-1])


def load_reasons(path: Path = REASONS) -> tuple[dict[str, str], list[tuple[str, str]]]:
    exact: dict[str, str] = {}
    prefixes: list[tuple[str, str]] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            name, _, reason = line.partition(": ")
            name = name.strip()
            if name.endswith("*"):
                prefixes.append((name[:-1], reason.strip()))
            else:
                exact[name] = reason.strip()
    return exact, prefixes


def reason_for(name: str, exact: dict[str, str], prefixes: list[tuple[str, str]]) -> str | None:
    if name in exact:
        return exact[name]
    return next((r for p, r in prefixes if name.startswith(p)), None)


def _score(c: Counter[str], equivalent: int) -> tuple[int, int, str, str]:
    killed = c["killed"] + c["timeout"] + c["caught by type check"]
    run = sum(c.values()) - c["not checked"] - c["skipped"]
    raw = f"{100 * killed / run:.0f}%" if run else "-"
    net = run - equivalent
    eq = f"{100 * killed / net:.0f}%" if net > 0 else "-"
    return killed, run, raw, eq


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", type=Path, help="also write the report as Markdown here")
    ap.add_argument("--todo", nargs="+", metavar="PREFIX",
                    help="print only the names of the mutants under these prefixes still to run: not checked, "
                         "survived or without tests (for `mutmut run <names>`, which reruns every name it is given)")
    args = ap.parse_args()
    exact, prefixes = load_reasons()
    statuses: dict[str, str] = {}
    for line in sys.stdin:
        m = _LINE.match(line)
        if m:
            statuses[m["name"]] = m["status"]
    if args.todo:
        todo = [n for n, st in statuses.items() if n.startswith(tuple(args.todo))
                and st in ("not checked", "survived", "no tests")]
        print("\n".join(todo))
        return 0
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    equivalent: Counter[str] = Counter()
    survivors: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for name, status in statuses.items():
        mod = module_of(name)
        by_module[mod][status] += 1
        if status in ("survived", "no tests"):
            why = reason_for(name, exact, prefixes)
            survivors[mod].append((name, why))
            if why and why.startswith("equivalent"):
                equivalent[mod] += 1

    out: list[str] = []
    head = f"| {'module':44s} | killed | survived | no tests | not run | score | score w/o equivalent |"
    out += ["## Per module", "", head, "|" + "---|" * 7]
    for mod, c in sorted(by_module.items()):
        killed, run, raw, eq = _score(c, equivalent[mod])
        out.append(f"| {mod:44s} | {killed} | {c['survived']} | {c['no tests']} | {c['not checked']} | {raw} | {eq} |")
    out += ["", "## Per group (issue 16)", "", "| group | killed | run | not run | score | score w/o equivalent |",
            "|---|---|---|---|---|---|"]
    for group, pre in GROUPS.items():
        c = Counter()
        eqn = 0
        for name, status in statuses.items():
            if name.startswith(pre):
                c[status] += 1
                if status in ("survived", "no tests"):
                    why = reason_for(name, exact, prefixes)
                    eqn += bool(why and why.startswith("equivalent"))
        killed, run, raw, eq = _score(c, eqn)
        out.append(f"| {group} | {killed} | {run} | {c['not checked']} | {raw} | {eq} |")
    out += ["", "## Survivors", ""]
    for mod, items in sorted(survivors.items()):
        out.append(f"### {mod}")
        out.append("")
        for name, why in items:
            out.append(f"- `{name}`: {why or 'not explained'}")
        out.append("")
    text = "\n".join(out)
    try:
        print(text)
    except BrokenPipeError:
        pass
    if args.markdown:
        args.markdown.write_text("# Mutation testing (make mutation)\n\nGenerated by bench/mutation_report.py from "
                                 "`mutmut results --all true`; mutmut 3.8.1, tests and modules in pyproject's "
                                 "[tool.mutmut]. \"not run\" counts the mutants the runs recorded here did not reach (`make mutation "
                                 "MODULES=...` runs them); the git history of this file keeps earlier runs' tables. Mutants that "
                                 "ran with `MUTATION_DESELECT` set (the codecs' and the log's last runs: the codec fuzzers of "
                                 "tests/unit/test_codecs_properties.py and the collectors' end-to-end tests left out for time) "
                                 "were checked against fewer tests: their score is a lower bound.\n\n"
                                 + text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

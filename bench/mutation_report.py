"""Mutation score per module from ``mutmut results --all true`` on stdin (``make mutation``).

    mutmut results --all true | python bench/mutation_report.py [--markdown bench/MUTATION.md]

Score = killed (incl. timeouts) / mutants run; "not checked" mutants are counted apart so a
partial run says how much of each module it covered. Survivors are listed with the reason
each is accepted, from bench/mutation_survivors.txt (``<mutant name>: <reason>``; a line
``<prefix>*: <reason>`` covers every survivor whose name starts with the prefix); a
survivor with no reason there is listed as "not explained" — a missing test until shown
otherwise. "score w/o equivalent" leaves out of the denominator the survivors whose
reason starts with "equivalent" (mutants that cannot change behaviour are not mutants).

A module none of whose mutants ran in the results read (mutmut's ``mutants/`` is per machine:
a fresh one knows only what ran on it) keeps its row and survivors from the earlier report
(``--earlier``; by default the ``--markdown`` file being replaced), marked "earlier run" in
the "results" column; the group totals add those rows to this run's.
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
    "ES audit documents (sinks/elasticsearch.py builders)": tuple(
        f"sinks.elasticsearch.{f}__" for f in (
            "x_audit_documents", "x__indexed", "x__numbers", "x__number_plan", "x__odd_cells", "x__with_fulltext",
            "xǁPreparedRecordǁread", "xǁPreparedRecordǁ__init__", "xǁPreparedRecordǁrecord",
            "xǁElasticsearchAuditStoreǁ_prepared_actions", "xǁElasticsearchAuditStoreǁ_record_actions")),
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


_ROW = re.compile(r"^\|\s*(?P<mod>[\w.]+)\s*\|\s*(?P<k>\d+)\s*\|\s*(?P<s>\d+)\s*\|\s*(?P<nt>\d+)\s*\|"
                  r"\s*(?P<nr>\d+)\s*\|[^|]*\|[^|]*\|(?P<rest>.*)$")
_SURVIVOR = re.compile(r"^- `(?P<name>[^`]+)`: (?P<why>.*)$")
_GROUP_ROW = re.compile(r"^\|\s*(?P<group>[^|]+?)\s*\|\s*(?P<k>\d+)\s*\|\s*(?P<run>\d+)\s*\|\s*(?P<nr>\d+)\s*\|")
EARLIER = "earlier run"


def load_earlier(path: Path) -> tuple[dict[str, tuple[Counter[str], str]], dict[str, list[tuple[str, str]]],
                                      dict[str, Counter[str]]]:
    """An earlier report's rows: per module (counts, where from), survivors (name, reason) per
    module, and per group (counts). Counts use mutmut's statuses ("not checked" = not run)."""
    rows: dict[str, tuple[Counter[str], str]] = {}
    survivors: dict[str, list[tuple[str, str]]] = defaultdict(list)
    groups: dict[str, Counter[str]] = {}
    if not path.exists():
        return rows, survivors, groups
    section, mod = "", ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("### "):
            mod = line[4:].strip()
        elif section == "Per module" and (m := _ROW.match(line)):
            rest = m["rest"].strip().strip("|").strip()
            rows[m["mod"]] = (Counter({"killed": int(m["k"]), "survived": int(m["s"]), "no tests": int(m["nt"]),
                                       "not checked": int(m["nr"])}), rest or EARLIER)
        elif section.startswith("Per group") and (m := _GROUP_ROW.match(line)) and m["group"] != "group":
            k, run = int(m["k"]), int(m["run"])
            groups[m["group"]] = Counter({"killed": k, "survived": run - k, "not checked": int(m["nr"])})
        elif section == "Survivors" and mod and (m := _SURVIVOR.match(line)):
            survivors[mod].append((m["name"], m["why"]))
    return rows, survivors, groups


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
    ap.add_argument("--earlier", type=Path,
                    help="the earlier report whose rows are kept for modules with no mutant run in these results "
                         "(default: the --markdown file, read before it is replaced)")
    ap.add_argument("--note", default="", help="a paragraph on the run the results are from (when, where, how long)")
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

    # modules with nothing run here keep the earlier report's row (and survivors), marked so
    earlier_path = args.earlier or args.markdown
    old_rows, old_survivors, old_groups = load_earlier(earlier_path) if earlier_path else ({}, {}, {})
    source: dict[str, str] = {}
    for mod in list(by_module):  # modules mutmut no longer makes mutants of are dropped
        c = by_module.get(mod, Counter())
        ran = sum(c.values()) - c["not checked"] - c["skipped"]
        if ran or mod not in old_rows or not _score(old_rows[mod][0], 0)[1]:
            source[mod] = "this run"
            continue
        by_module[mod], source[mod] = old_rows[mod][0], EARLIER
        survivors[mod] = []
        equivalent[mod] = 0
        for name, recorded in old_survivors.get(mod, []):
            why = reason_for(name, exact, prefixes) or (None if recorded == "not explained" else recorded)
            survivors[mod].append((name, why))
            equivalent[mod] += bool(why and why.startswith("equivalent"))

    out: list[str] = []
    head = f"| {'module':44s} | killed | survived | no tests | not run | score | score w/o equivalent | results |"
    out += ["## Per module", "", head, "|" + "---|" * 8]
    for mod, c in sorted(by_module.items()):
        killed, run, raw, eq = _score(c, equivalent[mod])
        out.append(f"| {mod:44s} | {killed} | {c['survived']} | {c['no tests']} | {c['not checked']} | {raw} | {eq} "
                   f"| {source[mod]} |")
    out += ["", "## Per group (issue 16)", "",
            "| group | killed | run | not run | score | score w/o equivalent | results |", "|---|---|---|---|---|---|---|"]
    for group, pre in GROUPS.items():
        mods = sorted(m for m in by_module if (m + ".").startswith(pre) or any(p.startswith(m + ".x") for p in pre))
        whole_modules = all(p.endswith(".") for p in pre)
        carried = [m for m in mods if source[m] != "this run"]
        c = Counter()
        eqn = 0
        if carried and not whole_modules:
            # a group of some functions of its modules: counted per mutant, so only whole from one report
            if len(carried) < len(mods) or group not in old_groups:
                out.append(f"| {group} | - | - | - | - | - | part this run, part earlier: not summed |")
                continue
            c = old_groups[group]
            eqn = sum(bool(why and why.startswith("equivalent")) for m in mods for name, why in survivors[m]
                      if name.startswith(pre))
        else:
            for name, status in statuses.items():
                if name.startswith(pre) and source[module_of(name)] == "this run":
                    c[status] += 1
                    if status in ("survived", "no tests"):
                        why = reason_for(name, exact, prefixes)
                        eqn += bool(why and why.startswith("equivalent"))
            for mod in carried:
                c.update(by_module[mod])
                eqn += equivalent[mod]
        killed, run, raw, eq = _score(c, eqn)
        where = ("this run" if not carried else EARLIER if len(carried) == len(mods)
                 else f"this run + {EARLIER} ({len(carried)} of {len(mods)} modules)")
        out.append(f"| {group} | {killed} | {run} | {c['not checked']} | {raw} | {eq} | {where} |")
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
                                 "MODULES=...` runs them); the git history of this file keeps earlier runs' tables. mutmut keeps "
                                 "its results in `mutants/`, on the machine that ran them: a module none of whose mutants ran "
                                 "there keeps the row (and survivors) of this file's previous version, marked \"earlier run\" "
                                 "in the \"results\" column (survivors' reasons looked up again in bench/mutation_survivors.txt); "
                                 "a row marked \"this run\" is from the `mutants/` the report was made from, and a group's "
                                 "totals say which they add. Mutants that "
                                 "ran with `MUTATION_DESELECT` set (the codecs' and the log's earlier runs: the codec fuzzers of "
                                 "tests/unit/test_codecs_properties.py and the collectors' end-to-end tests left out for time) "
                                 "were checked against fewer tests: their score is a lower bound.\n\n"
                                 + (f"{args.note.strip()}\n\n" if args.note.strip() else "")
                                 + text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

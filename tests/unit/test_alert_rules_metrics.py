"""Every metric the alerting rules use is one the pipeline exports (names drift apart otherwise)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from inferwatch.metrics import Metrics

RULES = sorted((Path(__file__).parents[2] / "alerts").glob("*.rules.yml"))


def test_rules_only_use_exported_metrics():
    exported = set()
    for family in Metrics().registry.collect():
        exported.add(family.name)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [])
        exported |= {family.name + suffix for suffix in suffixes}
    assert RULES
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                for name in re.findall(r"\binferwatch_[a-z_]+", rule["expr"]):
                    assert name in exported, f"{path.name}: {rule.get('alert')} uses {name}, not exported"


def _rules():
    return [rule for path in RULES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule]


def test_every_rule_has_severity_summary_description_and_runbook():
    for rule in _rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        for key in ("summary", "description", "runbook"):
            assert rule["annotations"].get(key, "").strip(), f"{rule['alert']} has no {key}"


def test_every_rule_has_promtool_tests_that_fire_and_stay_quiet():
    """alerts/tests: each rule is evaluated at least once expecting alerts and once expecting none."""
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in sorted((Path(__file__).parents[2] / "alerts" / "tests").glob("*.yml")):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in _rules()}
    assert names - fired == set(), "rules never tested firing"
    assert names - quiet == set(), "rules never tested staying quiet"

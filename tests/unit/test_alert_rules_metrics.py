"""Every metric the alerting rules use is one the pipeline exports (names drift apart otherwise)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sinks.prometheus import Metrics

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

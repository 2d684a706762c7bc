"""pytest plugin for ``make mutation`` (``-p bench.mutation_order`` in PYTEST_ADDOPTS): each
mutant's tests run fastest first, tests/unit/mutation/ (the targeted ones) before all.

mutmut 3 hands pytest a mutant's tests in set order and stops at the first failure (``-x``),
so a mutant that a 0.01 s test kills could first wait for a 30 s one. The durations are the
ones mutmut recorded (``mutmut-stats.json`` in its working directory, ``mutants/``). Order
only changes how soon a mutant is killed, never whether: every test still runs for a survivor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_durations: dict[str, float] | None = None


def _load() -> dict[str, float]:
    global _durations
    if _durations is None:
        try:
            _durations = json.loads(Path("mutmut-stats.json").read_text())["duration_by_test"]
        except (OSError, ValueError, KeyError):
            _durations = {}
    return _durations


def pytest_collection_modifyitems(session: Any, config: Any, items: list[Any]) -> None:
    durations = _load()
    items.sort(key=lambda item: (not item.nodeid.startswith("tests/unit/mutation/"),
                                 durations.get(item.nodeid, 0.0)))

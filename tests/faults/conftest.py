"""Prints the fault table at the end of the session (and writes it to $INFERWATCH_FAULT_TABLE)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.faults.harness import RESULTS, format_table


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    table = format_table(RESULTS)
    terminalreporter.write_sep("=", "fault table")
    terminalreporter.write_line(table)
    out = os.environ.get("INFERWATCH_FAULT_TABLE")
    if out:
        Path(out).write_text(table + "\n")

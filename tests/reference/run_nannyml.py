"""Running NannyML (the reference implementation of CBPE and DLE) in its own venv.

``make nannyml-venv`` builds ``.venv-nannyml``; ``make test`` builds it and sets
``INFERWATCH_NANNYML_PYTHON``, which turns a missing venv into a failure instead of a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def nannyml_python() -> str:
    path = os.environ.get("INFERWATCH_NANNYML_PYTHON") or str(ROOT / ".venv-nannyml" / "bin" / "python")
    if not Path(path).exists():
        if os.environ.get("INFERWATCH_NANNYML_PYTHON"):
            pytest.fail(f"INFERWATCH_NANNYML_PYTHON={path} does not exist: run `make nannyml-venv`")
        pytest.skip("NannyML's venv is missing: `make nannyml-venv` builds it (`make test` does)")
    return path


def run(script: str, data: Path, chunk: int) -> list[dict[str, Any]]:
    """Run ``tests/reference/<script>`` on ``data`` (.npz); NannyML's per-chunk results."""
    done = subprocess.run([nannyml_python(), str(ROOT / "tests" / "reference" / script), str(data), str(chunk)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1])["chunks"])

"""The README's install route from a built wheel: every module and data file of the four
packages is in the wheel, the ``inferwatch`` command is declared, and the demo runs from the
unpacked wheel alone (outside the repository, so nothing is imported from the source tree).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("inferwatch", "collectors", "detectors", "sinks")
DATA_SUFFIXES = (".json", ".yaml", ".yml", ".ndjson", "py.typed")  # [tool.setuptools.package-data]


def _source_files() -> set[str]:
    """What the wheel must hold: the repository's own listing of the packages."""
    out = set()
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.name.endswith((".py", *DATA_SUFFIXES)):
                out.add(path.relative_to(ROOT).as_posix())
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel .`` on a copy of the sources (the build writes build/ and egg-info beside them)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"),
         str(src)], capture_output=True, timeout=600)
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    (whl,) = (tmp / "dist").glob("inferwatch-*.whl")
    return whl


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_the_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    expected = _source_files()
    assert {"inferwatch/demo.py", "detectors/drift/ks.py", "detectors/runtime/monitor.py"} <= expected
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel: {missing}"
    assert not [n for n in names if n.startswith(("tests/", "bench/", "stack/"))]
    assert "inferwatch = inferwatch.cli:main" in entry_points


@pytest.mark.slow
def test_the_demo_runs_from_the_unpacked_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)  # a pure-Python wheel installs by unpacking
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("INFERWATCH_CONFIG", None)
    out = subprocess.run(
        [sys.executable, "-c", "import inferwatch, detectors.drift.ks, sinks, collectors; "
         "print(inferwatch.__file__, detectors.drift.ks.__file__)"],
        capture_output=True, cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert all(Path(p).is_relative_to(site) for p in out.stdout.decode().split()), out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "inferwatch.cli", "demo", "--data-dir", str(tmp_path / "demo"), "--json",
         "--seed", "3", "--rows-per-phase", "100", "--window", "50"],
        capture_output=True, cwd=tmp_path, env=env, timeout=600)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    summary = orjson.loads(out.stdout)
    assert summary["ok"] is True and summary["audited_documents"] == summary["rows_sent"] == 200

"""The layers stay as drawn in docs/architecture.md (a small import-linter of our own).

::

    wiring     inferwatch.wiring, the runners (inferwatch.pipeline: the stream, inferwatch.report:
               the batch) and the CLI (inferwatch.cli, inferwatch.report_command): know everything
    apps       inferwatch.demo: uses the runner and the wiring, imports no plug-in itself
    plug-ins   collectors/  detectors/  sinks/   each stands on the core, never on another
    core       the rest of inferwatch/: knows no plug-in, no wiring, no app

Rules, checked on every import statement of every module (at any depth: imports inside
functions and under ``TYPE_CHECKING`` count, and so do ``importlib.import_module("...")`` /
``__import__("...")`` with a literal name):

1. a plug-in imports no other plug-in package and nothing of the wiring or apps;
2. a core module imports no plug-in and nothing of the wiring or apps;
3. an app imports no plug-in (it goes through the wiring);
4. the detectors' runtime (``detectors/runtime/``: monitor, config, windows) imports no
   algorithm: nothing of ``detectors/`` outside itself (the wiring registers the algorithms).

With 1 and 2 the closure of a plug-in's imports is itself plus the core, so indirect imports
need no separate check. The checker runs on this repository and, to show it can fail, on
temporary trees with one planted violation of each rule.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = "inferwatch"
PLUGINS = ("collectors", "detectors", "sinks")
WIRING = ("inferwatch.wiring", "inferwatch.pipeline", "inferwatch.report", "inferwatch.report_command",
          "inferwatch.cli", "inferwatch.__main__")
APPS = ("inferwatch.demo",)
RUNTIME = "detectors.runtime"


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported} ({self.rule})"


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``tree``, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # `from pkg import module`
                yield node.lineno, f"{target}.{alias.name}"
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__"):
                yield node.lineno, node.args[0].value


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _layer(name: str) -> str | None:
    if _within(name, WIRING):
        return "wiring"
    if _within(name, APPS):
        return "app"
    if _within(name, (CORE,)):
        return "core"
    if _within(name, PLUGINS):
        return name.split(".")[0]
    return None  # third-party, stdlib, tests


def check(root: Path) -> list[Violation]:
    """Every violation of the rules (module docstring) in the packages under ``root``."""
    out: list[Violation] = []
    for pkg in (CORE, *PLUGINS):
        for path in sorted((root / pkg).rglob("*.py")):
            module = _module_name(root, path)
            here = _layer(module)
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for line, target in _imports(tree, module, path.name == "__init__.py"):
                there = _layer(target)
                if (_within(module, (RUNTIME,)) and _within(target, ("detectors",))
                        and not _within(target, (RUNTIME,))):
                    out.append(Violation(module, line, target, "the detectors' runtime knows no algorithm"))
                if there is None or there == here:
                    continue
                if here in PLUGINS and there != "core":
                    out.append(Violation(module, line, target, f"plug-in {here} may import only the core"))
                elif here == "core" and there != "core":
                    out.append(Violation(module, line, target, "the core imports no plug-in, wiring or app"))
                elif here == "app" and there in PLUGINS:
                    out.append(Violation(module, line, target, "an app reaches plug-ins through the wiring"))
    # `from a import b` is checked as `a` and as `a.b`: one violation per line and layer
    first: dict[tuple[str, int, str | None], Violation] = {}
    for v in sorted(out, key=lambda v: (v.module, v.line, len(v.imported))):
        first.setdefault((v.module, v.line, _layer(v.imported)), v)
    return sorted(first.values(), key=lambda v: (v.module, v.line, v.imported))


def test_the_repository_keeps_its_layers() -> None:
    violations = check(ROOT)
    assert not violations, "layer violations:\n" + "\n".join(map(str, violations))


def test_the_wiring_modules_exist() -> None:
    """A renamed wiring module would silently turn into core and fail rule 2 — or, worse, an
    allow-list entry would name nothing; keep the list true."""
    for name in (*WIRING, *APPS):
        if name == "inferwatch.__main__":
            continue
        path = ROOT / (name.replace(".", "/") + ".py")
        assert path.is_file(), f"{name} is listed as a wiring/app module but {path} does not exist"


# -- the checker fails on planted violations ---------------------------------------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    base = {
        "inferwatch/__init__.py": "",
        "inferwatch/record.py": "import json\n",
        "inferwatch/wiring.py": "from sinks.audit import Store\nfrom detectors.ks import KS\n",
        "inferwatch/cli.py": "from inferwatch.wiring import build\nimport collectors.http\n",
        "inferwatch/demo.py": "from inferwatch.wiring import build\nfrom inferwatch.record import R\n",
        "collectors/__init__.py": "",
        "collectors/http.py": "from inferwatch.record import R\n",
        "detectors/__init__.py": "from .ks import KS\n",
        "detectors/ks.py": "import numpy\nfrom inferwatch import record\n",
        "detectors/runtime/__init__.py": "from detectors.runtime.monitor import Monitor\n",
        "detectors/runtime/monitor.py": "from detectors.runtime import windows\nfrom inferwatch import record\n",
        "detectors/runtime/windows.py": "",
        "sinks/__init__.py": "",
        "sinks/audit.py": "from inferwatch.record import R\n",
    }
    for name, text in {**base, **files}.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return tmp_path


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    assert check(_tree(tmp_path, {})) == []


@pytest.mark.parametrize(("name", "text", "module", "imported"), [
    # rule 1: a plug-in on another plug-in, directly, inside a function, relative, or dynamically
    ("collectors/http.py", "from sinks.audit import Store\n", "collectors.http", "sinks.audit"),
    ("collectors/http.py", "def f():\n    import sinks\n", "collectors.http", "sinks"),
    ("sinks/audit.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from detectors import ks\n",
     "sinks.audit", "detectors"),
    ("detectors/ks.py", "import importlib\nm = importlib.import_module('collectors.http')\n", "detectors.ks",
     "collectors.http"),
    # rule 1: a plug-in on the wiring
    ("sinks/audit.py", "from inferwatch.wiring import build\n", "sinks.audit", "inferwatch.wiring"),
    # rule 2: the core on a plug-in or on the wiring
    ("inferwatch/record.py", "from detectors.ks import KS\n", "inferwatch.record", "detectors.ks"),
    ("inferwatch/record.py", "from inferwatch import wiring\n", "inferwatch.record", "inferwatch.wiring"),
    ("inferwatch/__init__.py", "from inferwatch.cli import main\n", "inferwatch", "inferwatch.cli"),
    # rule 3: an app on a plug-in
    ("inferwatch/demo.py", "from sinks.audit import Store\n", "inferwatch.demo", "sinks.audit"),
    # rule 4: the detectors' runtime on an algorithm
    ("detectors/runtime/monitor.py", "from detectors.ks import KS\n", "detectors.runtime.monitor", "detectors.ks"),
])
def test_a_planted_violation_fails(tmp_path: Path, name: str, text: str, module: str, imported: str) -> None:
    violations = check(_tree(tmp_path, {name: text}))
    assert [(v.module, v.imported) for v in violations] == [(module, imported)], violations


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"inferwatch/record.py": "from .wiring import build\n",
                            "inferwatch/sub/__init__.py": "from .. import cli\n",
                            "inferwatch/sub/x.py": "from ..demo import run\nfrom . import y\n",
                            "inferwatch/sub/y.py": "from ..record import R\n"})
    assert [(v.module, v.imported) for v in check(root)] == [
        ("inferwatch.record", "inferwatch.wiring"),
        ("inferwatch.sub", "inferwatch.cli"),
        ("inferwatch.sub.x", "inferwatch.demo"),
    ]

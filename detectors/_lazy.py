"""Package attributes imported on first use (PEP 562), shared by the detector packages: the registry
and the report need one detector and must not pay for scikit-learn or the other detectors' imports."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any


def lazy_exports(package: str, lazy: Mapping[str, str], names: Iterable[str],
                 namespace: MutableMapping[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: a name in ``lazy`` (name -> module) is imported from
    its module on first use and kept in ``namespace`` (a plain module attribute from then on); any
    other name is tried as a subpackage or module of ``package``."""
    exported = frozenset(names)

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:  # a subpackage or module (``detectors.drift``), imported on first use too
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exported})

    return __getattr__, __dir__

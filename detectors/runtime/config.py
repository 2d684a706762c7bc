"""The monitor's configuration, validated: the ``window``, ``detectors`` and ``models`` keys.

::

    window: {type: count, size: 500}        # or {type: count, size: 500, step: 100}
                                            # or {type: time, seconds: 60, step: 20, max_rows: 50000}
    detectors:
      - {type: ks, p_val: 0.05, correction: bonferroni, features: null, on: inputs}
      # any detector keyword argument; `on: inputs | outputs`; optional `name`
    models: null    # optional allow-list; default: every model with a registered reference

Each ``detectors`` entry names a ``type`` of the :class:`~inferwatch.detector.DetectorRegistry`
it is checked against; every other key must be a keyword argument of that type (unknown keys
are rejected naming the key), and the detector is built once to check the values.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from detectors.runtime.windows import window_from_config
from inferwatch.detector import TARGETS, Detector, DetectorRegistry
from inferwatch.errors import DetectorError

__all__ = ["DetectorSpec", "MonitorConfig", "parse_monitor_config"]

DEFAULT_WINDOW: dict[str, Any] = {"type": "count", "size": 500}
DEFAULT_DETECTORS: list[dict[str, Any]] = [{"type": "ks"}]


@dataclass(frozen=True)
class DetectorSpec:
    """One ``detectors:`` entry of the config, validated."""

    type: str
    name: str
    on: str
    params: dict[str, Any] = field(default_factory=dict)
    factory: Callable[..., Detector] | None = field(default=None, repr=False, compare=False)
    across_versions: bool = False
    """One window per model across its versions (see :class:`~inferwatch.detector.DetectorType`)."""

    def build(self) -> Detector:
        if self.factory is None:
            raise DetectorError(f"detector spec {self.name!r} has no factory (build it with parse_monitor_config)")
        det = self.factory(**self.params)
        det.name = self.name
        return det


@dataclass(frozen=True)
class MonitorConfig:
    """A validated monitor configuration."""

    window: dict[str, Any]
    specs: list[DetectorSpec]
    models: list[str] | None = None


def _spec(i: int, entry: Any, types: DetectorRegistry) -> DetectorSpec:
    where = f"detectors[{i}]"
    if not isinstance(entry, Mapping):
        raise DetectorError(f"{where} must be a mapping, got {type(entry).__name__}")
    entry = dict(entry)
    kind = entry.pop("type", None)
    if not isinstance(kind, str) or kind not in types:
        raise DetectorError(f"{where}.type must be one of {types.names()}, got {kind!r}")
    dtype = types.get(kind)
    on = entry.pop("on", dtype.on)
    if on not in TARGETS:
        raise DetectorError(f"{where}.on must be one of {list(TARGETS)}, got {on!r}")
    name = entry.pop("name", None) or (kind if on == dtype.on else f"{kind}_{on}")
    cls = dtype.load()
    params = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(entry) - set(params))
        if unknown:
            raise DetectorError(
                f"{where} ({kind}): unknown key(s) {unknown}; allowed: {sorted(set(params) | {'type', 'on', 'name'})}"
            )
    try:
        cls(**entry)
    except (TypeError, ValueError) as exc:
        raise DetectorError(f"{where} ({kind}): {exc}") from exc
    return DetectorSpec(type=kind, name=str(name), on=str(on), params=entry, factory=cls,
                        across_versions=dtype.across_versions)


def parse_monitor_config(cfg: Mapping[str, Any] | None, types: DetectorRegistry) -> MonitorConfig:
    """Check a monitor config dict (see the module docstring) against the registered ``types``."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - {"window", "detectors", "models"})
    if unknown:
        raise DetectorError(f"unknown monitor key(s) {unknown}; allowed: ['detectors', 'models', 'window']")
    window_cfg = cfg.get("window") or DEFAULT_WINDOW
    if not isinstance(window_cfg, Mapping):
        raise DetectorError(f"window must be a mapping, got {type(window_cfg).__name__}")
    try:
        window_from_config(window_cfg)
    except (TypeError, ValueError) as exc:
        raise DetectorError(f"window: {exc}") from exc
    entries = cfg.get("detectors")
    if entries is None:
        entries = DEFAULT_DETECTORS
    if not isinstance(entries, list) or not entries:
        raise DetectorError("detectors must be a non-empty list")
    specs = [_spec(i, e, types) for i, e in enumerate(entries)]
    names = Counter(s.name for s in specs)
    dupes = sorted(n for n, c in names.items() if c > 1)
    if dupes:
        raise DetectorError(f"detectors: duplicate name(s) {dupes}; give each a distinct `name`")
    models = cfg.get("models")
    if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
        raise DetectorError("models must be a list of model names or null")
    return MonitorConfig(dict(window_cfg), specs, models)

"""The one detector interface, and the registry of detector types by name.

Every detector — drift, outlier, data quality; batch or streaming — is a class in its
own module under ``detectors/`` that satisfies :class:`Detector`::

    det = KSDrift(p_val=0.05).fit(reference)     # reference: DataFrame or Table
    det.update(batch_1).update(batch_2)          # accumulate the current window
    det.update(batch_3, ids=["r7-0", "r7-1"])    # rows with their ids (``<record id>-<row>``)
    detection = det.result()                     # a Detection for the window so far
    det.reset()                                  # next window, same reference

``result()`` fills only what the detector knows (``detector``, ``kind``, the decision,
p-value, distance, threshold, per-feature values, ``window_size``); the caller (the
:class:`~detectors.runtime.monitor.Monitor` or the pipeline) fills ``model``, ``version``, the
window times and ``reference_id``.

``merge(other)`` returns a new detector whose window is both windows together, so
partial windows from several workers or partitions combine: ``a.merge(b).result()``
equals the result of one detector updated with ``a``'s and ``b``'s batches. A detector
and its state pickle. ``tests/unit/test_detectors_contract.py`` runs these laws over every
registered detector type.

A :class:`DetectorRegistry` maps the ``type`` of a ``detectors:`` config entry to a factory
(a class satisfying :class:`Detector`, or an importable ``"module:Class"`` path, loaded on
first use so optional extras stay optional) and the target it reads by default (``inputs``,
or ``outputs`` for output drift). The wiring owns the application's registry
(:data:`inferwatch.wiring.DETECTORS`) and passes it to the runtime; the core names no
detector::

    >>> types = DetectorRegistry()
    >>> types.register("ks", "detectors.drift.ks:KSDrift")
    >>> types.register("prediction", "detectors.drift.prediction:PredictionDrift", on="outputs")
    >>> types.names(), types.get("ks").load().__name__, types.get("prediction").on
    (['ks', 'prediction'], 'KSDrift', 'outputs')
    >>> types.get("nope")
    Traceback (most recent call last):
    ...
    inferwatch.errors.DetectorError: unknown detector type 'nope'; registered: ks, prediction
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, TypeAlias, runtime_checkable

from inferwatch.errors import DetectorError
from inferwatch.record import Detection, Kind

if TYPE_CHECKING:
    import pandas as pd  # only for the annotation: importing the registry stays cheap

__all__ = ["TARGETS", "Data", "Detector", "DetectorRegistry", "DetectorType", "Target"]

Data: TypeAlias = "pd.DataFrame | Mapping[str, Sequence[Any]]"
"""What detectors take: a DataFrame or a :data:`~inferwatch.table.Table` (column -> values)."""

Target = Literal["inputs", "outputs", "both"]
TARGETS: tuple[Target, ...] = ("inputs", "outputs", "both")
"""What a detector's windows hold of each record: its ``inputs``, its ``outputs``, or ``both`` side
by side (records that carry both halves only; a regressor's direct loss estimate needs the inputs
and the prediction of the same row)."""


@runtime_checkable
class Detector(Protocol):
    """What the pipeline calls; see the module docstring."""

    name: str
    """Detector name, written to ``Detection.detector`` (e.g. ``"ks"``)."""

    kind: Kind
    """``"drift"``, ``"outlier"``, ``"performance"`` or ``"quality"``. A ``"performance"`` detector
    may learn from labels: the runtime fits it on the reference with the column its ``truth``
    attribute names (other detectors never see that column), and adds a record's ``truth``
    columns to its window rows when the record carries them."""

    def fit(self, reference: Data) -> Self:
        """Learn the reference (clears any window); returns self."""
        ...

    def update(self, batch: Data, ids: Sequence[str] | None = None) -> Self:
        """Add a batch of rows to the current window; returns self.

        ``ids`` are the rows' ids (``<record id>-<row>``, :func:`~inferwatch.record.row_id`), one
        per row, when the caller knows them: the row identity is a field of the window, never a
        column of ``batch``. Outlier detectors report them in ``Detection.row_ids``, performance
        detectors join late labels by them, the others ignore them."""
        ...

    def result(self) -> Detection:
        """Test the current window against the reference."""
        ...

    def reset(self) -> Self:
        """Clear the current window, keep the reference; returns self."""
        ...

    def merge(self, other: Self) -> Self:
        """A new detector whose window holds both windows (same reference required)."""
        ...


@dataclass
class DetectorType:
    """One registered detector type: its factory and the target it reads by default."""

    factory: Callable[..., Detector] | str
    """A class (or any callable taking the entry's keyword arguments), or ``"module:Class"``."""
    on: Target = "inputs"
    across_versions: bool = False
    """One window per model for all its versions, each row's version in a ``variant`` column
    (detectors that compare live variants with each other), instead of one window per version."""
    _loaded: Callable[..., Detector] | None = field(default=None, repr=False, compare=False)

    def load(self) -> Callable[..., Detector]:
        """The factory itself (importing ``"module:Class"`` the first time)."""
        if self._loaded is None:
            if isinstance(self.factory, str):
                module, _, attr = self.factory.partition(":")
                self._loaded = getattr(importlib.import_module(module), attr)
            else:
                self._loaded = self.factory
        return self._loaded


class DetectorRegistry:
    """Name -> :class:`DetectorType`; the application has one (the wiring's)."""

    def __init__(self) -> None:
        self._types: dict[str, DetectorType] = {}

    def register(self, name: str, factory: Callable[..., Detector] | str, *, on: Target = "inputs",
                 across_versions: bool = False) -> None:
        """Register (or replace) the type ``name``."""
        if on not in TARGETS:
            raise DetectorError(f"detector type {name!r}: on must be one of {list(TARGETS)}, got {on!r}")
        self._types[name] = DetectorType(factory, on, across_versions)

    def unregister(self, name: str) -> None:
        self._types.pop(name, None)

    def get(self, name: str) -> DetectorType:
        try:
            return self._types[name]
        except KeyError:
            raise DetectorError(f"unknown detector type {name!r}; registered: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._types)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._types)

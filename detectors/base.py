"""The one detector interface.

Every detector — drift, outlier, data quality; batch or streaming — is a class in its
own module that satisfies :class:`Detector`::

    det = KSDrift(p_val=0.05).fit(reference)     # reference: DataFrame or Table
    det.update(batch_1).update(batch_2)          # accumulate the current window
    detection = det.result()                     # a Detection for the window so far
    det.reset()                                  # next window, same reference

``result()`` fills only what the detector knows (``detector``, ``kind``, the decision,
p-value, distance, threshold, per-feature values, ``window_size``); the caller (the
:class:`~detectors.runtime.monitor.Monitor` or the pipeline) fills ``model``, ``version``, the
window times and ``reference_id``.

``merge(other)`` returns a new detector whose window is both windows together, so
partial windows from several workers or partitions combine: ``a.merge(b).result()``
equals the result of one detector updated with ``a``'s and ``b``'s batches. A detector
and its state pickle.
"""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable

from detectors.common._data import Data
from inferwatch.record import Detection, Kind

__all__ = ["Data", "Detector"]


@runtime_checkable
class Detector(Protocol):
    """What the pipeline calls; see the module docstring."""

    name: str
    """Detector name, written to ``Detection.detector`` (e.g. ``"ks"``)."""

    kind: Kind
    """``"drift"``, ``"outlier"``, ``"performance"`` or ``"quality"``."""

    def fit(self, reference: Data) -> Self:
        """Learn the reference (clears any window); returns self."""
        ...

    def update(self, batch: Data) -> Self:
        """Add a batch of rows to the current window; returns self."""
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

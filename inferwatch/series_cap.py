"""A cap on the values one metric label may take, so a wide model cannot explode Prometheus.

Per-feature series (p-values, data-quality counts) and per-class series (predicted classes)
have one label whose values come from the data. :class:`SeriesCap` lets the first ``limit``
distinct values of that label through, per scope (a model version and detector, say), and
folds every later one into ``_other``; the first refusal in a scope is logged, and every
folded observation is counted, so the cap is never hit silently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable

__all__ = ["OTHER", "SeriesCap"]

log = logging.getLogger("inferwatch.metrics")

OTHER = "_other"


class SeriesCap:
    """At most ``limit`` distinct label values per scope; the rest become :data:`OTHER`.

    >>> cap = SeriesCap("inferwatch_drift_feature_p_value", "feature", limit=2)
    >>> [cap.admit(("iris", "v1"), f) for f in ("a", "b", "a", "c", "d")]
    ['a', 'b', 'a', '_other', '_other']
    >>> cap.admit(("wine", "v1"), "c"), cap.folded
    ('c', 2)
    """

    def __init__(self, metric: str, label: str, limit: int, on_fold: Callable[[str], None] | None = None):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        self.metric, self.label, self.limit = metric, label, limit
        self.on_fold = on_fold
        self.folded = 0
        self._seen: dict[Hashable, set[str]] = {}
        self._warned: set[Hashable] = set()
        self._lock = threading.Lock()

    def admit(self, scope: Hashable, value: str) -> str:
        """``value`` itself while the scope has room (or already has it), else :data:`OTHER`."""
        with self._lock:
            seen = self._seen.setdefault(scope, set())
            if value in seen:
                return value
            if len(seen) < self.limit:
                seen.add(value)
                return value
            self.folded += 1
            first = scope not in self._warned
            self._warned.add(scope)
        if first:
            log.warning("%s: more than %d values of label %r for %s; %r and later ones are counted under %r "
                        "(raise metrics.series_cap to see them)", self.metric, self.limit, self.label, scope,
                        value, OTHER)
        if self.on_fold is not None:
            self.on_fold(self.metric)
        return OTHER

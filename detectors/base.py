"""The one detector interface, :class:`Detector` (declared in the core,
:mod:`inferwatch.detector`, where the registry of detector types also lives).

Every detector — drift, outlier, data quality; batch or streaming — is a class in its
own module that satisfies it: ``fit(reference)``, ``update(batch)``, ``result() ->
Detection``, ``reset()``, ``merge(other)``; see :mod:`inferwatch.detector`.
"""

from __future__ import annotations

from inferwatch.detector import Data, Detector

__all__ = ["Data", "Detector"]

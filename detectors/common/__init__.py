"""What the detector algorithms share: input coercion (``_data``), categorical counting
(``_categorical``), the per-feature and windowed base classes (``_univariate``,
``_windowed``), the mergeable column buffer (``state.ColumnBuffer``) and multiple-testing
corrections (``corrections``). Algorithms import these; the runtime does not.
"""

"""Mergeable window state: the rows a detector has seen in its current window.

A :class:`ColumnBuffer` is a monoid (whylogs-style): :meth:`ColumnBuffer.zero` is the
identity and :meth:`ColumnBuffer.merge` is associative, so partial windows from several
partitions or workers combine into the whole window.

>>> a = ColumnBuffer.zero().append({"x": [1.0, 2.0]})
>>> b = ColumnBuffer.zero().append({"x": [3.0]})
>>> a.merge(b).column("x").tolist(), a.merge(b).n_rows
([1.0, 2.0, 3.0], 3)
>>> ColumnBuffer.zero().merge(a).column("x").tolist() == a.column("x").tolist()
True

Row ids travel beside the columns, never as one of them: a row appended without an id is
known by its position in the window.

>>> c = ColumnBuffer.zero().append({"x": [1.0, 2.0]}, ids=["r1-0", "r1-1"]).append({"x": [3.0]})
>>> c.row_ids()
['r1-0', 'r1-1', '2']
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from detectors.common._data import Data, columns_and_rows, n_rows

__all__ = ["ColumnBuffer"]


@dataclass
class ColumnBuffer:
    """Column chunks of the current window; a column absent from a chunk is padded.

    Padding uses ``nan`` for numeric columns and ``None`` otherwise, so row alignment
    across columns is kept (outlier scores are per row). ``ids`` holds each row's id
    (``None`` for a row appended without one); it stays empty until an id is given.
    """

    chunks: list[dict[str, np.ndarray]] = field(default_factory=list)
    n_rows: int = 0
    ids: list[str | None] = field(default_factory=list)

    @classmethod
    def zero(cls) -> ColumnBuffer:
        """The empty window (identity of :meth:`merge`)."""
        return cls()

    def append(self, data: Data, names: Collection[str] | None = None,
               ids: Sequence[str] | None = None) -> ColumnBuffer:
        """Add a batch in place; returns self.

        With ``names`` only those columns are kept (the rows are all counted; a batch with
        none of them adds rows but no chunk, so padding then covers only kept chunks).
        ``ids`` are the batch's row ids, one per row.
        """
        cols, n = columns_and_rows(data, names)
        if ids is not None and len(ids) != n:
            raise ValueError(f"{len(ids)} row ids for a batch of {n} rows")
        if n:
            if cols:
                self.chunks.append(cols)
            if ids is not None or self.ids:
                self.ids.extend([None] * (self.n_rows - len(self.ids)))
                self.ids.extend(ids if ids is not None else [None] * n)
            self.n_rows += n
        return self

    def merge(self, other: ColumnBuffer) -> ColumnBuffer:
        """A new buffer holding this window's rows followed by ``other``'s."""
        ids: list[str | None] = []
        if self.ids or other.ids:
            ids = [*self.ids, *[None] * (self.n_rows - len(self.ids)), *other.ids,
                   *[None] * (other.n_rows - len(other.ids))]
        return ColumnBuffer(self.chunks + other.chunks, self.n_rows + other.n_rows, ids)

    def row_ids(self) -> list[str]:
        """Each row's id, in order; a row without one is named by its position in the window."""
        ids = self.ids
        return [str(ids[i]) if i < len(ids) and ids[i] is not None else str(i) for i in range(self.n_rows)]

    def names(self) -> list[str]:
        seen: dict[str, None] = {}
        for c in self.chunks:
            for k in c:
                seen.setdefault(k, None)
        return list(seen)

    def has(self, name: str) -> bool:
        return any(name in c for c in self.chunks)

    def column(self, name: str) -> np.ndarray:
        """All rows of one column, in order (missing chunks padded)."""
        parts = []
        for c in self.chunks:
            arr = c.get(name)
            if arr is None:
                n = n_rows(c)
                arr = np.full(n, np.nan) if _numeric_elsewhere(self.chunks, name) else np.full(n, None, dtype=object)
            parts.append(arr)
        if not parts:
            return np.empty(0)
        if len(parts) == 1:
            return parts[0]
        if len({p.dtype.kind in "biuf" for p in parts}) > 1:
            parts = [p.astype(object) for p in parts]
        out = np.concatenate(parts)
        # Compact so later reads are cheap and pickles stay small.
        return out

    def compact(self) -> ColumnBuffer:
        """Concatenate the chunks into one (in place); returns self."""
        if len(self.chunks) > 1:
            names = self.names()
            self.chunks = [{k: self.column(k) for k in names}]
        return self


def _numeric_elsewhere(chunks: list[dict[str, np.ndarray]], name: str) -> bool:
    return any(name in c and c[name].dtype.kind in "biuf" for c in chunks)

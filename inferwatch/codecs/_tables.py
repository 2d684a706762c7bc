"""Tables from decoded tensors and records: column accumulation, records, row and columnar forms."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from inferwatch.codecs._tensor import flatten, tensor_columns
from inferwatch.codecs._values import b64_values, scalar_leaves
from inferwatch.codecs.base import describe, fail
from inferwatch.codecs.limits import (
    BudgetExceeded,
    charge_columns,
    check_depth,
    check_time,
    max_cells,
    max_depth,
    note_encoding,
)
from inferwatch.errors import DecodeError
from inferwatch.table import Table


class Columns:
    """Accumulates decoded columns, dedupes names, checks one batch size for all.

    A name already taken gets the next free pandas suffix (``x``, ``x.1``, ``x.2`` ...) in
    amortised constant time: N columns of one name cost O(N), not O(N^2).

    >>> c = Columns("json")
    >>> [c.add("x", v) for v in ([1], [2], [3])], c.add("x.1", [4]), c.add("x", [5])
    (['x', 'x.1', 'x.2'], 'x.1.1', 'x.3')
    >>> c.table()
    {'x': [1], 'x.1': [2], 'x.2': [3], 'x.1.1': [4], 'x.3': [5]}
    """

    __slots__ = ("_broadcast", "_cols", "_next", "protocol")

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self._cols: dict[str, list[Any]] = {}
        self._broadcast: set[str] = set()
        self._next: dict[str, int] = {}  # name -> the next suffix to try

    def add(self, name: str, values: list[Any], broadcast: bool = False, *, cells: bool = False,
            encoding: str | None = None) -> str:
        """Add a column under ``name`` (or its next free suffix); returns the name used.

        ``cells`` marks free-form values (records) whose nesting is bounded here; ``encoding``
        says how a binary column's values are stored (``utf-8`` or ``base64``)."""
        charge_columns(1, self.protocol)
        if cells and set(map(type, values)) & {list, dict}:
            check_depth(values, self.protocol, f"column {name!r}")
        key = name
        if key in self._cols:
            i = self._next.get(name, 1)
            key = f"{name}.{i}"
            while key in self._cols:
                i += 1
                key = f"{name}.{i}"
            self._next[name] = i + 1
        self._cols[key] = values
        if broadcast:
            self._broadcast.add(key)
        if encoding is not None:
            note_encoding(key, encoding)
        return key

    def add_tensor(self, cols: Iterable[tuple[str, list[Any], bool]], encoding: str | None = None, *,
                   cells: bool = False) -> None:
        for name, values, broadcast in cols:
            self.add(name, values, broadcast, cells=cells, encoding=encoding)

    def table(self) -> Table:
        sizes = {len(v) for k, v in self._cols.items() if k not in self._broadcast}
        if len(sizes) > 1:
            detail = {k: len(v) for k, v in self._cols.items() if k not in self._broadcast}
            raise fail(self.protocol, f"tensors have different batch sizes: {dict(list(detail.items())[:8])}")
        n = sizes.pop() if sizes else 1
        limit = max_cells()
        if limit is not None and n * len(self._cols) > limit:
            raise BudgetExceeded("max_cells", f"payload decodes to more than {limit} cells", protocol=self.protocol)
        out: Table = {}
        for k, v in self._cols.items():
            out[k] = v * n if k in self._broadcast else v
        return out


def flatten_record(obj: Mapping[str, Any], protocol: str, *, b64: bool = False) -> dict[str, Any]:
    """One record object -> flat dict; nested objects become dotted names.

    With ``b64`` (TF Serving), ``{"b64": "..."}`` values stay as they are, to be decoded a whole
    column at a time (:func:`decode_b64_leaves`). An empty nested object is ``None``.
    """
    if dict not in set(map(type, obj.values())):
        return obj  # type: ignore[return-value]  # read-only use by callers
    return _flat(obj, "", protocol, b64, 0)


def _flat(obj: Mapping[str, Any], prefix: str, protocol: str, b64: bool, depth: int) -> dict[str, Any]:
    if depth >= max_depth():
        raise BudgetExceeded("max_depth", f"record nested deeper than {max_depth()} levels",
                             protocol=protocol, status=400)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if type(value) is dict:
            if b64 and set(value) == {"b64"}:
                out[name] = value
            elif value:
                out.update(_flat(value, f"{name}.", protocol, b64, depth + 1))
            else:
                out[name] = None
        else:
            out[name] = value
    return out


def decode_b64_leaves(flat: list[Any], protocol: str, what: str) -> tuple[list[Any], str | None]:
    """TF Serving's binary convention: ``{"b64": "..."}`` elements -> ``(values, encoding)``
    (see :func:`~inferwatch.codecs._values.b64_values`); ``encoding`` is ``None`` when there are
    none. Binary elements may sit next to ``null`` only, so a column is all binary or not."""
    types = set(map(type, flat))
    if dict not in types:
        return flat, None
    if not types <= {dict, type(None)}:
        raise fail(protocol, f"{what} mixes {{\"b64\": ...}} objects with other values", "one kind per tensor")
    texts: list[Any] = []
    for v in flat:
        if v is not None and set(v) != {"b64"}:
            raise fail(protocol, f"{what} holds {describe(v)} where a scalar was expected")
        texts.append(None if v is None else v["b64"])
    return b64_values(texts, protocol, f"{what} b64 value")


Named = tuple[list[tuple[str, list[Any], bool]], str | None]


def named_values(name: str, values: list[Any], protocol: str, *, b64: bool = False) -> Named:
    """Per-row values of one named input (TF row format): split regular lists, else one column.

    Returns the columns and how their values are stored when they were binary (``b64``)."""
    types = set(map(type, values))
    if values and types == {list}:
        try:
            shape, flat = flatten(values, protocol, name)
            flat, enc = decode_b64_leaves(flat, protocol, name) if b64 else (flat, None)
            scalar_leaves(flat, protocol, name)
        except DecodeError:
            check_depth(values, protocol, f"column {name!r}")
            return [(name, values, False)], None
        return tensor_columns(name, shape, flat, protocol), enc
    if b64 and dict in types:
        try:
            decoded, enc = decode_b64_leaves(values, protocol, name)
        except DecodeError:
            pass
        else:
            return [(name, decoded, False)], enc
    if types & {list, dict}:
        check_depth(values, protocol, f"column {name!r}")
    return [(name, values, False)], None


def records_table(items: list[Any], protocol: str, *, b64: bool = False, split: bool = False) -> Table:
    """A list of record objects -> table (keys in first-seen order, missing -> ``None``).

    ``split`` applies the tensor rule to list values (TF Serving named inputs); otherwise
    list values are cells.
    """
    rows = []
    for i, r in enumerate(items):
        if not i & 4095:
            check_time(protocol)
        rows.append(flatten_record(r, protocol, b64=b64))
    cols = Columns(protocol)
    first = tuple(rows[0]) if rows else ()
    if all(tuple(r) == first for r in rows):  # the usual case: same keys, same order
        columns: Iterable[tuple[str, list[Any]]] = zip(
            first, map(list, zip(*(r.values() for r in rows), strict=True)), strict=True
        )
    else:
        keys: dict[str, None] = {}
        for i, r in enumerate(rows):
            if not i & 4095:
                check_time(protocol)
            keys.update(dict.fromkeys(r))
            if len(keys) > 100_000:
                charge_columns(len(keys), protocol)
        columns = ((key, [r.get(key) for r in rows]) for key in keys)
    for key, values in columns:
        if split or b64:
            named, enc = named_values(key, values, protocol, b64=b64 or split)
            if split or enc is not None:
                cols.add_tensor(named, enc)
                continue
        cols.add(key, values, cells=True)
    return cols.table()


def rows_table(
    items: Any, protocol: str, what: str, *, b64: bool = False, split: bool = False, name: str | None = None
) -> Table:
    """A batch given row by row: objects (records), lists (an unnamed tensor) or scalars."""
    if not isinstance(items, list):
        raise fail(protocol, f"{what} is {describe(items)}", "a list")
    if not items:
        return {}
    types = set(map(type, items))
    if dict in types:
        binary = b64 and all(set(d) == {"b64"} for d in items if type(d) is dict)
        if types == {dict} and not binary:
            return records_table(items, protocol, b64=b64, split=split)
        if not binary:
            raise fail(protocol, f"{what} mixes objects with other values", "all objects or no objects")
    shape, flat = flatten(items, protocol, what)
    enc = None
    if b64:
        flat, enc = decode_b64_leaves(flat, protocol, what)
    scalar_leaves(flat, protocol, what)
    cols = Columns(protocol)
    cols.add_tensor(tensor_columns(name, shape, flat, protocol), enc)
    return cols.table()


def columnar_table(value: Any, protocol: str, what: str, *, b64: bool = True) -> Table:
    """Columnar inputs/outputs: a dict of named tensors, or one unnamed tensor (a list)."""
    cols = Columns(protocol)
    if isinstance(value, dict):
        items: list[tuple[str | None, Any]] = list(value.items())
    elif isinstance(value, list):
        items = [(None, value)]
    else:
        raise fail(protocol, f"{what} is {describe(value)}", "a list or an object of named lists")
    for name, tensor in items:
        label = f"{what}.{name}" if name is not None else what
        shape, flat = flatten(tensor, protocol, label)
        enc = None
        if b64:
            flat, enc = decode_b64_leaves(flat, protocol, label)
        scalar_leaves(flat, protocol, label)
        cols.add_tensor(tensor_columns(name, shape, flat, protocol), enc)
    return cols.table()

"""Tables from decoded tensors and records: column accumulation, records, row and columnar forms."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from inferwatch.codecs._tensor import flatten, tensor_columns
from inferwatch.codecs._values import b64_to_value, scalar_leaves
from inferwatch.codecs.base import describe, fail
from inferwatch.codecs.limits import MAX_CELLS, MAX_DEPTH, check_depth
from inferwatch.errors import DecodeError
from inferwatch.table import Table


class Columns:
    """Accumulates decoded columns, dedupes names, checks one batch size for all."""

    __slots__ = ("_broadcast", "_cols", "protocol")

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self._cols: dict[str, list[Any]] = {}
        self._broadcast: set[str] = set()

    def add(self, name: str, values: list[Any], broadcast: bool = False, *, cells: bool = False) -> None:
        """Add a column; ``cells`` marks free-form values (records) whose nesting is bounded here."""
        if cells and set(map(type, values)) & {list, dict}:
            check_depth(values, self.protocol, f"column {name!r}")
        key = name
        i = 0
        while key in self._cols:
            i += 1
            key = f"{name}.{i}"
        self._cols[key] = values
        if broadcast:
            self._broadcast.add(key)

    def add_tensor(self, cols: Iterable[tuple[str, list[Any], bool]]) -> None:
        for name, values, broadcast in cols:
            self.add(name, values, broadcast)

    def table(self) -> Table:
        sizes = {len(v) for k, v in self._cols.items() if k not in self._broadcast}
        if len(sizes) > 1:
            detail = {k: len(v) for k, v in self._cols.items() if k not in self._broadcast}
            raise fail(self.protocol, f"tensors have different batch sizes: {dict(list(detail.items())[:8])}")
        n = sizes.pop() if sizes else 1
        if n * len(self._cols) > MAX_CELLS:
            raise fail(self.protocol, f"payload decodes to more than {MAX_CELLS} cells")
        out: Table = {}
        for k, v in self._cols.items():
            out[k] = v * n if k in self._broadcast else v
        return out


def flatten_record(obj: Mapping[str, Any], protocol: str, *, b64: bool = False) -> dict[str, Any]:
    """One record object -> flat dict; nested objects become dotted names.

    With ``b64`` (TF Serving), ``{"b64": "..."}`` values are decoded binary strings.
    An empty nested object is ``None``.
    """
    if dict not in set(map(type, obj.values())):
        return obj  # type: ignore[return-value]  # read-only use by callers
    return _flat(obj, "", protocol, b64, 0)


def _flat(obj: Mapping[str, Any], prefix: str, protocol: str, b64: bool, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise fail(protocol, f"record nested deeper than {MAX_DEPTH} levels")
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if type(value) is dict:
            if b64 and set(value) == {"b64"}:
                out[name] = b64_to_value(value["b64"], protocol, f"{name} b64 value")
            elif value:
                out.update(_flat(value, f"{name}.", protocol, b64, depth + 1))
            else:
                out[name] = None
        else:
            out[name] = value
    return out


def decode_b64_leaves(flat: list[Any], protocol: str, what: str) -> list[Any]:
    """TF Serving's binary convention: ``{"b64": "..."}`` elements -> strings."""
    if dict not in set(map(type, flat)):
        return flat
    out: list[Any] = []
    for v in flat:
        if type(v) is dict:
            if set(v) != {"b64"}:
                raise fail(protocol, f"{what} holds {describe(v)} where a scalar was expected")
            out.append(b64_to_value(v["b64"], protocol, f"{what} b64 value"))
        else:
            out.append(v)
    return out


def named_values(name: str, values: list[Any], protocol: str) -> list[tuple[str, list[Any], bool]]:
    """Per-row values of one named input (TF row format): split regular lists, else one column."""
    if values and set(map(type, values)) == {list}:
        try:
            shape, flat = flatten(values, protocol, name)
            flat = decode_b64_leaves(flat, protocol, name)
            scalar_leaves(flat, protocol, name)
        except DecodeError:
            check_depth(values, protocol, f"column {name!r}")
            return [(name, values, False)]
        return tensor_columns(name, shape, flat, protocol)
    if set(map(type, values)) & {list, dict}:
        check_depth(values, protocol, f"column {name!r}")
    return [(name, values, False)]


def records_table(items: list[Any], protocol: str, *, b64: bool = False, split: bool = False) -> Table:
    """A list of record objects -> table (keys in first-seen order, missing -> ``None``).

    ``split`` applies the tensor rule to list values (TF Serving named inputs); otherwise
    list values are cells.
    """
    rows = [flatten_record(r, protocol, b64=b64) for r in items]
    cols = Columns(protocol)
    first = tuple(rows[0]) if rows else ()
    if all(tuple(r) == first for r in rows):  # the usual case: same keys, same order
        columns: Iterable[tuple[str, list[Any]]] = zip(
            first, map(list, zip(*(r.values() for r in rows), strict=True)), strict=True
        )
    else:
        keys: dict[str, None] = {}
        for r in rows:
            keys.update(dict.fromkeys(r))
        columns = ((key, [r.get(key) for r in rows]) for key in keys)
    for key, values in columns:
        if split:
            cols.add_tensor(named_values(key, values, protocol))
        else:
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
    if b64:
        flat = decode_b64_leaves(flat, protocol, what)
    scalar_leaves(flat, protocol, what)
    cols = Columns(protocol)
    cols.add_tensor(tensor_columns(name, shape, flat, protocol))
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
        if b64:
            flat = decode_b64_leaves(flat, protocol, label)
        scalar_leaves(flat, protocol, label)
        cols.add_tensor(tensor_columns(name, shape, flat, protocol))
    return cols.table()

"""Limits that bound the work one payload can cause: fixed structural limits, and the
per-request :class:`Budget` (depth, columns, cells, time) a decode runs under.

A decode runs in a :func:`session`: the active budget and what the codecs learn on the way
(how each binary column is stored) live there, so the helpers deep in a codec can charge the
budget without every signature carrying it. Going over a budget raises
:class:`BudgetExceeded`, a :class:`~inferwatch.errors.DecodeError` that names the limit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from inferwatch.errors import DecodeError

__all__ = ["MAX_CELLS", "MAX_DEPTH", "MAX_EMPTY", "MAX_RANK", "WIDE", "Budget", "BudgetExceeded",
           "check_depth", "session"]

#: Most dimensions a tensor may have (deeper nesting is refused, not recursed into).
MAX_RANK = 32
#: Most cells one payload may decode to; larger shapes are refused before any work.
MAX_CELLS = 100_000_000
#: A zero-size tensor's shape with zeros read as ones may not exceed this (``[10**9, 0, 2]``).
MAX_EMPTY = 1_000_000
#: Deepest object nesting flattened into dotted column names, and kept in cells and metadata.
MAX_DEPTH = 64
#: A 2-D tensor wider than this stays one column of per-row lists.
WIDE = 10_000


@dataclass(frozen=True, slots=True)
class Budget:
    """What one request may cost to decode. ``None`` lifts a limit.

    ``max_depth`` bounds JSON nesting kept in cells and metadata, ``max_columns`` the columns
    (tensors, names, record keys) of one payload, ``max_cells`` rows x columns, ``max_seconds``
    the decoding time: CPU time of the decoding thread, so a busy machine does not refuse valid
    payloads (checked cooperatively, between columns and every few thousand rows).
    """

    max_depth: int = MAX_DEPTH
    max_columns: int | None = 100_000
    max_cells: int | None = MAX_CELLS
    max_seconds: float | None = None  # the collector sets one per delivery (collector.decode_seconds)


class BudgetExceeded(DecodeError):
    """A payload over its :class:`Budget`; ``limit`` names the limit, ``status`` the HTTP answer
    (413 for size and time, 400 for nesting)."""

    def __init__(self, limit: str, reason: str, *, protocol: str | None = None, status: int = 413):
        super().__init__(f"{reason} (limit {limit})", protocol=protocol)
        self.limit = limit
        self.status = status


@dataclass(slots=True)
class _Session:
    budget: Budget
    deadline: float | None
    columns: int = 0
    encodings: dict[str, str] = field(default_factory=dict)

    def check_time(self, protocol: str | None) -> None:
        if self.deadline is not None and time.thread_time() >= self.deadline:
            raise BudgetExceeded("max_seconds", f"decoding took longer than {self.budget.max_seconds} s",
                                 protocol=protocol)


_DEFAULT = Budget()
_SESSION: ContextVar[_Session | None] = ContextVar("inferwatch_codec_session", default=None)


@contextmanager
def session(budget: Budget | None) -> Iterator[_Session]:
    """Run a decode under ``budget`` (the default budget when ``None``); nested calls share the outer one."""
    outer = _SESSION.get()
    if outer is not None:
        yield outer
        return
    b = budget or _DEFAULT
    s = _Session(b, None if b.max_seconds is None else time.thread_time() + b.max_seconds)
    token = _SESSION.set(s)
    try:
        yield s
    finally:
        _SESSION.reset(token)


_OUTSIDE = _Session(_DEFAULT, None)  # read-only stand-in when no decode is running


def _current() -> _Session:
    s = _SESSION.get()
    return s if s is not None else _OUTSIDE


def charge_columns(n: int, protocol: str | None) -> None:
    """Count ``n`` more columns against the budget, and check the clock."""
    s = _SESSION.get()
    if s is None:
        return
    s.columns += n
    limit = s.budget.max_columns
    if limit is not None and s.columns > limit:
        raise BudgetExceeded("max_columns", f"payload has more than {limit} columns", protocol=protocol)
    s.check_time(protocol)


def check_time(protocol: str | None) -> None:
    """Check the clock of the active session (a no-op outside one)."""
    s = _SESSION.get()
    if s is not None:
        s.check_time(protocol)


def max_cells() -> int | None:
    return _current().budget.max_cells


def max_depth() -> int:
    return _current().budget.max_depth


def note_encoding(column: str, encoding: str) -> None:
    """Remember how a binary column's values are stored (``utf-8`` text or ``base64``)."""
    s = _SESSION.get()
    if s is not None:
        s.encodings[column] = encoding


def check_depth(value: Any, protocol: str | None, what: str, limit: int | None = None) -> None:
    """Refuse JSON nested deeper than ``limit`` (the budget's ``max_depth`` by default;
    level by level, no recursion)."""
    limit = max_depth() if limit is None else limit
    level = [value]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            raise BudgetExceeded("max_depth", f"{what} is nested deeper than {limit} levels",
                                 protocol=protocol, status=400)
        nxt: list[Any] = []
        for v in level:
            if type(v) is list:
                nxt.extend(x for x in v if type(x) is list or type(x) is dict)
            elif type(v) is dict:
                nxt.extend(x for x in v.values() if type(x) is list or type(x) is dict)
        level = nxt

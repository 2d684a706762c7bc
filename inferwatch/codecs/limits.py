"""Limits that bound the work one payload can cause, and the nesting check they rely on."""

from __future__ import annotations

from typing import Any

from inferwatch.codecs.base import fail

#: Most dimensions a tensor may have (deeper nesting is refused, not recursed into).
MAX_RANK = 32
#: Most cells one payload may decode to; larger shapes are refused before any work.
MAX_CELLS = 100_000_000
#: A zero-size tensor's shape with zeros read as ones may not exceed this (``[10**9, 0, 2]``).
MAX_EMPTY = 1_000_000
#: Deepest object nesting flattened into dotted column names.
MAX_DEPTH = 64
#: A 2-D tensor wider than this stays one column of per-row lists.
WIDE = 10_000


def check_depth(value: Any, protocol: str | None, what: str, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than ``limit`` (level by level, no recursion)."""
    level = [value]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            raise fail(protocol, f"{what} is nested deeper than {limit} levels")
        nxt: list[Any] = []
        for v in level:
            if type(v) is list:
                nxt.extend(x for x in v if type(x) is list or type(x) is dict)
            elif type(v) is dict:
                nxt.extend(x for x in v.values() if type(x) is list or type(x) is dict)
        level = nxt

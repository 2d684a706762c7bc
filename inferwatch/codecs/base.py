"""The codec plug-in point: what a codec is (:class:`Codec`), what it returns (:class:`Decoded`).

A codec turns one protocol's request or response body (parsed JSON values) into a table of
rows and back. It is registered once, in :data:`inferwatch.codecs.registry.REGISTRY`; that
registration is all :func:`inferwatch.codecs.decode`, :func:`~inferwatch.codecs.encode` and
auto-detection need. A codec reports bad input only by raising
:class:`~inferwatch.errors.DecodeError` (build it with :func:`fail`).

Column-naming rule (the same for every protocol)
------------------------------------------------
1. Explicit column names in the payload win: Seldon ``data.names``, MLflow
   ``dataframe_split.columns``, the keys of record objects.
2. A *tensor* (an OIP input/output, a named TF Serving input, a Seldon ``ndarray``...) of
   shape ``[N]`` or ``[N, 1]`` is one column, named after the tensor.
3. A tensor of shape ``[N, k]`` (``k > 1``) is ``k`` columns ``<tensor>_0 .. <tensor>_{k-1}``,
   whether or not other tensors are present: a column's name never depends on what else
   the payload holds, so it stays stable when optional inputs come and go.
4. A tensor without a name (Seldon data without ``names``, bare ``instances`` lists,
   ``predictions`` lists, a bare list as ``inputs``) uses ``f`` as its name with no
   separator: ``f0`` for one column, ``f0 .. f{k-1}`` for ``k``.
5. Rank > 2, a 2-D tensor wider than :data:`~inferwatch.codecs.limits.WIDE`, and every tensor
   of an MLServer ``pd`` payload keep one column per tensor; each row's value is that row's
   (nested) list.
6. A name already taken gets pandas' suffix: ``x``, ``x.1``, ``x.2`` ...
7. Values inside *records* (JSON objects) are cells: lists stay lists, nested objects
   flatten to dotted names (``{"a": {"b": 1}}`` -> column ``a.b``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from inferwatch.errors import DecodeError
from inferwatch.table import Table

__all__ = ["PARTS", "Codec", "Decoded", "Part", "describe", "fail"]

Part = Literal["request", "response"]
PARTS: tuple[str, ...] = ("request", "response")


@runtime_checkable
class Codec(Protocol):
    """One payload protocol. Implementations are plain classes; nothing needs subclassing.

    ``name`` is the canonical protocol name, ``aliases`` other names users may give it,
    ``expected`` a one-line description of a valid body per part (used in error messages).
    """

    @property
    def name(self) -> str: ...

    @property
    def aliases(self) -> tuple[str, ...]: ...

    @property
    def expected(self) -> Mapping[str, str]: ...

    def matches(self, obj: Any, part: str) -> bool:
        """Whether parsed JSON ``obj`` looks like this protocol's ``part`` (auto-detection)."""
        ...

    def decode(self, obj: Any, part: str) -> Decoded:
        """Parsed JSON -> table and metadata; raises :class:`DecodeError` for bad input."""
        ...

    @property
    def encode(self) -> Callable[..., Any]:
        """``encode(table, part, **options)``: a table -> JSON-serialisable body (the inverse
        of :meth:`decode`); each codec names its own keyword options."""
        ...


@dataclass(slots=True)
class Decoded:
    """The result of :func:`inferwatch.codecs.decode`.

    ``table`` holds the rows as columns; ``meta`` what the payload says about itself
    (``id``, ``model_name``, ``model_version``, ``parameters``, ``names``, ``kind`` ...).
    """

    protocol: str
    table: Table
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Number of decoded rows."""
        return len(next(iter(self.table.values()))) if self.table else 0


def fail(protocol: str | None, reason: str, expected: str | None = None) -> DecodeError:
    """A :class:`DecodeError` to ``raise`` (keeps call sites one line)."""
    return DecodeError(reason, protocol=protocol, expected=expected)


def describe(value: Any) -> str:
    """Short type description of a JSON value for error messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        keys = list(value)[:5]
        return f"an object with keys {keys}" if keys else "an empty object"
    return type(value).__name__

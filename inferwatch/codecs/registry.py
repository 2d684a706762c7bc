"""The one codec registry: names, aliases and the order auto-detection tries codecs in.

A new protocol is one module with a :class:`~inferwatch.codecs.base.Codec` and one
:meth:`Registry.register` call; :func:`inferwatch.codecs.decode`, ``encode`` and detection
then know it. Detection tries codecs in registration order, the fallback (``json``: any
object) always last.

>>> from inferwatch.codecs.base import Decoded
>>> class Csv:
...     name, aliases, expected = "csv-lines", ("csv",), {"request": "...", "response": "..."}
...     def matches(self, obj, part): return isinstance(obj, dict) and "csv" in obj
...     def decode(self, obj, part): return Decoded("csv-lines", {"line": obj["csv"].split(";")})
...     def encode(self, table, part, **options): return {"csv": ";".join(table["line"])}
>>> reg = Registry(fallback="json")
>>> for c in builtin_codecs(): _ = reg.register(c)
>>> _ = reg.register(Csv())
>>> reg.names()
('oip-v2', 'seldon-v1', 'mlflow', 'kserve-v1', 'csv-lines', 'json')
>>> reg.detect({"csv": "a;b"}, "request"), reg.get("CSV").name
('csv-lines', 'csv-lines')
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from inferwatch.codecs import _json, _kserve, _mlflow, _oip, _seldon
from inferwatch.codecs.base import PARTS, Codec, describe, fail

__all__ = ["REGISTRY", "Registry", "builtin_codecs", "check_part", "error_message"]

_ERROR_KEYS = frozenset(
    {"error", "error_code", "code", "message", "status", "details", "id", "model_name", "model_version", "stack_trace"}
)


def check_part(part: Any) -> str:
    if part not in PARTS:
        raise fail(None, f"part is {part!r}", "'request' or 'response'")
    return str(part)


def error_message(obj: Any) -> str | None:
    """The text of an error response, or ``None`` when ``obj`` is not one.

    ``{"error": "..."}`` (OIP, KServe, TF Serving), ``{"error_code", "message"}`` (MLflow),
    ``{"status": {"status": "FAILURE", ...}}`` (Seldon).
    """
    if not isinstance(obj, dict):
        return None
    if set(obj) <= _ERROR_KEYS:
        if isinstance(obj.get("error"), (str, dict)):
            return str(obj["error"])[:500]
        if isinstance(obj.get("error_code"), str) and "message" in obj:
            return f"{obj['error_code']}: {str(obj['message'])[:500]}"
    if _seldon.is_error(obj):
        status = obj["status"]
        return f"{status.get('code')} {str(status.get('info') or status.get('reason'))[:500]}"
    return None


class Registry:
    """Codecs by canonical name and alias, in detection order (``fallback`` last)."""

    def __init__(self, *, fallback: str | None = None) -> None:
        self._codecs: dict[str, Codec] = {}
        self._aliases: dict[str, str] = {}
        self.fallback = fallback

    def register(self, codec: Codec, *, replace: bool = False) -> Codec:
        """Add ``codec``; its name and aliases must be free unless ``replace``."""
        if not isinstance(codec, Codec) or not isinstance(codec.name, str) or not codec.name:
            raise TypeError(f"{codec!r} is not a Codec (name, aliases, expected, matches, decode, encode)")
        if not {"request", "response"} <= set(codec.expected):
            raise TypeError(f"codec {codec.name!r}: expected must describe 'request' and 'response'")
        keys = [codec.name.lower(), *(a.lower() for a in codec.aliases)]
        taken = [k for k in keys if k in self._codecs or k in self._aliases]
        if taken and not replace:
            raise ValueError(f"codec {codec.name!r}: {', '.join(taken)} already registered")
        self._codecs[codec.name.lower()] = codec
        for alias in keys[1:]:
            self._aliases[alias] = codec.name.lower()
        return codec

    def unregister(self, protocol: str) -> Codec:
        """Remove a codec (and its aliases); returns it."""
        name = self.canonical(protocol)
        self._aliases = {a: n for a, n in self._aliases.items() if n != name}
        return self._codecs.pop(name)

    def names(self) -> tuple[str, ...]:
        """Canonical names in detection order."""
        return tuple(n for n in self._order())

    def _order(self) -> Iterator[str]:
        yield from (n for n in self._codecs if n != self.fallback)
        if self.fallback in self._codecs:
            yield self.fallback  # type: ignore[misc]

    def canonical(self, protocol: Any) -> str:
        """The canonical name of ``protocol`` (a name or an alias, any case)."""
        name = str(protocol).strip().lower()
        name = self._aliases.get(name, name)
        if name not in self._codecs:
            raise fail(None, f"unknown protocol {protocol!r}", f"one of {', '.join(self.names())}")
        return name

    def get(self, protocol: Any) -> Codec:
        return self._codecs[self.canonical(protocol)]

    def expected(self, part: str) -> str:
        return "one of: " + "; ".join(f"{n} {self._codecs[n].expected[part]}" for n in self._order())

    def detect(self, obj: Any, part: str) -> str:
        """The protocol of parsed JSON ``obj``; raises for error responses and when nothing matches."""
        err = error_message(obj)
        if err is not None:
            raise fail(None, f"error response: {err}")
        for name in self._order():
            if self._codecs[name].matches(obj, part):
                return name
        raise fail(None, f"no protocol matches this {part} ({describe(obj)})", self.expected(part))


def builtin_codecs() -> tuple[Codec, ...]:
    """The shipped codecs, most specific first: ``instances``/``inputs``/``predictions`` bodies
    are kserve-v1 unless MLflow-only keys (``dataframe_*``, ``params``) appear."""
    return (_oip.CODEC, _seldon.CODEC, _mlflow.CODEC, _kserve.CODEC, _json.CODEC)


#: The process-wide registry every entry point uses.
REGISTRY = Registry(fallback="json")
for _codec in builtin_codecs():
    REGISTRY.register(_codec)

"""Personal data removed from records before they reach the log.

A :class:`Redactor` is built from the ``redact`` configuration section and applied by the
collector to every record and dead letter before it is appended, so the log, the audit store,
reports, dead letters and logs never hold what it removes. Two kinds of rule:

* **fields** — a name (``email``) matches a table column of that name (or whose last dotted
  segment is that name: nested JSON objects flatten to ``customer.email``), any object key of
  that name at any depth of a raw JSON body, and an Open Inference Protocol tensor
  ``{"name": "email", "data": [...]}``. A JSON path (``$.customer.email``, ``$.instances[*].ssn``,
  ``$..phone``, ``$.a.*``) matches in raw JSON bodies. Every value a field rule removes is
  also removed wherever else it appears in the same record (decoded tables, raw bodies,
  headers), which covers positional formats such as Seldon's ``names`` + ``ndarray``.
* **patterns** — ``email``; ``card`` (13 to 19 digits, optionally grouped by spaces or dashes,
  that pass the Luhn check; also integers); ``phone`` (international ``+`` numbers of 8 to 15
  digits, and North-American ``(555) 123-4567`` / ``555-123-4567`` forms; plain digit runs are
  not phone numbers, they are too often something else); ``iban`` (country code, check digits
  and BBAN with the registry length where known, mod-97 checksum), in any string value.

``mode: mask`` replaces a value by ``[REDACTED]`` (``[REDACTED:email]`` for a pattern);
``mode: hash`` by a keyed hash (HMAC-SHA256 with ``redact.key``, 16 hex digits), so the same
value always gives the same token and can still be counted and joined, but not reversed
without the key. Binary bodies (base64 on the log) are masked in place with ``*`` of the same
length, which keeps length-prefixed formats such as protobuf readable.

>>> r = Redactor(fields=["ssn"], patterns=["email", "card"])
>>> r.text("mail bob@example.com, card 4111 1111 1111 1111, order 4111 1111 1111 1112")
'mail [REDACTED:email], card [REDACTED:card], order 4111 1111 1111 1112'
>>> r.table({"ssn": ["078-05-1120"], "age": [41]})
{'ssn': ['[REDACTED]'], 'age': [41]}
>>> h = Redactor(patterns=["email"], mode="hash", key="k")
>>> h.text("a@b.io") == h.text("a@b.io") != Redactor(patterns=["email"], mode="hash", key="k2").text("a@b.io")
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson

if TYPE_CHECKING:
    from inferwatch.record import DeadLetter, InferenceRecord

__all__ = ["PATTERNS", "Redactor", "iban_valid", "luhn_valid"]

Mode = Literal["mask", "hash"]
PATTERNS = ("email", "card", "phone", "iban")

# --- checks ------------------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of digits.

    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    """
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


#: IBAN lengths by country (the SWIFT registry); a code outside it is not an IBAN: accepting any
#: two letters at 15..34 characters found one false "IBAN" in ~97 random word runs of that shape
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def iban_valid(text: str) -> bool:
    """Whether ``text`` (spaces allowed) is an IBAN: shape, registry length, mod-97 == 1.

    >>> iban_valid("GB82 WEST 1234 5698 7654 32"), iban_valid("GB82 WEST 1234 5698 7654 33")
    (True, False)
    """
    s = text.replace(" ", "").upper()
    if not (15 <= len(s) <= 34 and s[:2].isalpha() and s[2:4].isdigit() and s.isalnum() and s.isascii()):
        return False
    if IBAN_LENGTHS.get(s[:2]) != len(s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


# --- finding patterns in text ------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])")
_CARD = re.compile(r"(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d]|\.\d)")
_PHONE = re.compile(
    r"(?<![\w+])\+[1-9]\d{0,3}(?:[ .-]?\(?\d{1,4}\)?){2,6}(?![\d])"  # international
    r"|(?<![\w(])\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}(?!\d)"  # (555) 123-4567
    r"|(?<![\w.-])\d{3}[.-]\d{3}[.-]\d{4}(?![\w.-]*\d)"  # 555-123-4567
)
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?=[ ]?[A-Z0-9])")

Span = tuple[int, int, str, str]  # start, end, kind, normalised value


def _cards(text: str) -> Iterable[Span]:
    # the whole run of grouped digits is the candidate: a Luhn-valid prefix of a longer number
    # is not a card (trying prefixes would mask one in ten near-misses)
    for m in _CARD.finditer(text):
        digits = m.group().replace(" ", "").replace("-", "")
        if luhn_valid(digits):
            yield m.start(), m.end(), "card", digits


def _phones(text: str) -> Iterable[Span]:
    for m in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 8 <= len(digits) <= 15 or (m.group()[0] != "+" and len(digits) == 10):
            yield m.start(), m.end(), "phone", ("+" if m.group()[0] == "+" else "") + digits


def _ibans(text: str) -> Iterable[Span]:
    for m in _IBAN_START.finditer(text):
        start = m.start()
        # gather up to 34 characters of the IBAN alphabet, single spaces allowed between groups
        chars: list[tuple[int, str]] = []
        i = start
        while i < len(text) and len(chars) < 34:
            c = text[i]
            if c.isascii() and (c.isdigit() or c.isupper()):
                chars.append((i, c))
            elif not (c == " " and i + 1 < len(text) and text[i + 1].isascii() and text[i + 1].isalnum()):
                break
            i += 1
        n = IBAN_LENGTHS.get(text[start:start + 2], 0)
        if 0 < n <= len(chars):
            end = chars[n - 1][0] + 1
            if end < len(text) and text[end].isascii() and text[end].isalnum():
                continue  # the IBAN would end inside a word
            value = "".join(c for _, c in chars[:n])
            if iban_valid(value):
                yield start, end, "iban", value


def _emails(text: str) -> Iterable[Span]:
    for m in _EMAIL.finditer(text):
        yield m.start(), m.end(), "email", m.group().lower()


_FINDERS: dict[str, Callable[[str], Iterable[Span]]] = {
    "email": _emails, "card": _cards, "iban": _ibans, "phone": _phones,
}


# --- JSON paths ----------------------------------------------------------------------------------

_TOKEN = re.compile(r"\.\.(?P<desc>[^.\[\]]+)|\.(?P<key>[^.\[\]]+)|\[(?P<index>\*|-?\d+|'[^']*'|\"[^\"]*\")\]")


def _parse_path(path: str) -> list[tuple[str, Any]]:
    """``$.a[*].b`` -> [("key", "a"), ("any", None), ("key", "b")]; ``..x`` is ("desc", "x")."""
    if not path.startswith("$"):
        raise ValueError(f"a JSON path starts with '$': {path!r}")
    rest, pos, out = path[1:], 0, []
    while pos < len(rest):
        m = _TOKEN.match(rest, pos)
        if m is None:
            raise ValueError(f"cannot parse JSON path {path!r} at {rest[pos:]!r}")
        if m.group("desc") is not None:
            out.append(("desc", m.group("desc")))
        elif m.group("key") is not None:
            out.append(("any", None) if m.group("key") == "*" else ("key", m.group("key")))
        else:
            idx = m.group("index")
            if idx == "*":
                out.append(("any", None))
            elif idx[0] in "'\"":
                out.append(("key", idx[1:-1]))
            else:
                out.append(("index", int(idx)))
        pos = m.end()
    return out


# --- the redactor --------------------------------------------------------------------------------

_SCALARS = (str, int, float, bool)


def _value_key(v: Any) -> Any | None:
    """The form under which a removed value is looked up elsewhere in the record (None: too
    generic to chase: short strings, small numbers, floats, booleans)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, str):
        return v if len(v) >= 3 else None
    if isinstance(v, int):
        return str(v) if abs(v) >= 100_000 else None
    return None


@dataclass
class Redactor:
    """Removes configured fields and patterns from tables, JSON, text, bodies, records and dead letters."""

    fields: Sequence[str] = ()
    patterns: Sequence[str] = ()
    mode: Mode = "mask"
    key: str | None = None
    _names: frozenset[str] = field(init=False, repr=False)
    _paths: list[list[tuple[str, Any]]] = field(init=False, repr=False)
    _finders: list[Callable[[str], Iterable[Span]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.patterns) - set(PATTERNS)
        if unknown:
            raise ValueError(f"unknown redaction pattern(s) {sorted(unknown)}; choose from {', '.join(PATTERNS)}")
        if self.mode == "hash" and not self.key:
            raise ValueError("redact.mode 'hash' needs redact.key (the HMAC key)")
        if self.mode not in ("mask", "hash"):
            raise ValueError(f"redact.mode must be 'mask' or 'hash', not {self.mode!r}")
        self._names = frozenset(f for f in self.fields if not f.startswith("$"))
        self._paths = [_parse_path(f) for f in self.fields if f.startswith("$")]
        self._finders = [_FINDERS[p] for p in PATTERNS if p in self.patterns]

    @classmethod
    def from_config(cls, cfg: Any) -> Redactor | None:
        """From the ``redact`` configuration section; ``None`` when it removes nothing."""
        if not cfg.fields and not cfg.patterns:
            return None
        return cls(fields=list(cfg.fields), patterns=list(cfg.patterns), mode=cfg.mode, key=cfg.key)

    @property
    def active(self) -> bool:
        return bool(self.fields or self.patterns)

    # -- tokens ------------------------------------------------------------------------------------
    def _digest(self, value: str) -> str:
        assert self.key is not None
        return hmac.new(self.key.encode(), value.encode(), hashlib.sha256).hexdigest()[:16]

    def token(self, value: Any, kind: str | None = None) -> str:
        """What replaces ``value`` (a field value, or a ``kind`` of pattern match, normalised)."""
        if self.mode == "hash":
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            return f"[{kind or 'hmac'}:{self._digest(text)}]"
        return f"[REDACTED:{kind}]" if kind else "[REDACTED]"

    # -- text --------------------------------------------------------------------------------------
    def spans(self, text: str) -> list[Span]:
        """Non-overlapping pattern matches in ``text`` (earlier and longer first)."""
        found: list[Span] = []
        for finder in self._finders:
            found.extend(finder(text))
        found.sort(key=lambda s: (s[0], -(s[1] - s[0])))
        out: list[Span] = []
        last = -1
        for s in found:
            if s[0] >= last:
                out.append(s)
                last = s[1]
        return out

    def text(self, text: str, values: Iterable[str] = ()) -> str:
        """``text`` with pattern matches and the given removed values replaced."""
        for v in sorted(set(values), key=len, reverse=True):
            if v in text:
                text = text.replace(v, self.token(v))
        if not self._finders:
            return text
        spans = self.spans(text)
        if not spans:
            return text
        parts, pos = [], 0
        for start, end, kind, norm in spans:
            parts.append(text[pos:start])
            parts.append(self.token(norm, kind))
            pos = end
        parts.append(text[pos:])
        return "".join(parts)

    def _leaf(self, v: Any, values: set[str]) -> Any:
        if isinstance(v, str):
            if v in values:
                return self.token(v)
            return self.text(v) if self._finders else v
        if isinstance(v, int) and not isinstance(v, bool):
            s = str(v)
            if s in values:
                return self.token(v)
            if "card" in self.patterns and 13 <= len(s.lstrip("-")) <= 19 and luhn_valid(s.lstrip("-")):
                return self.token(s.lstrip("-"), "card")
        return v

    def _name_matches(self, name: str) -> bool:
        return name in self._names or name.rsplit(".", 1)[-1] in self._names

    # -- tables ------------------------------------------------------------------------------------
    def table(self, table: dict[str, list[Any]] | None, values: set[str] | None = None,
              removed: set[str] | None = None) -> Any:
        """A copy of ``table`` with named columns replaced and patterns removed from every cell.
        Removed values are added to ``removed``; cells equal to one of ``values`` are replaced."""
        if table is None:
            return None
        values = values or set()
        out: dict[str, list[Any]] = {}
        for name, col in table.items():
            if self._name_matches(name):
                out[name] = [None if v is None else self.token(v) for v in col]
                if removed is not None:
                    removed.update(k for k in map(_value_key, col) if k is not None)
            else:
                out[name] = [self._leaf(v, values) if isinstance(v, _SCALARS) else self.json(v, values)
                             for v in col]
        return out

    # -- JSON --------------------------------------------------------------------------------------
    def json(self, obj: Any, values: set[str] | None = None, removed: set[str] | None = None) -> Any:
        """A copy of a JSON value with field rules (names, paths), removed values and patterns applied."""
        values = values or set()
        for path in self._paths:
            obj = self._apply_path(obj, path, removed)
        return self._walk(obj, values, removed)

    def _replace_all(self, v: Any, removed: set[str] | None) -> Any:
        if isinstance(v, dict):
            return {k: self._replace_all(x, removed) for k, x in v.items()}
        if isinstance(v, list):
            return [self._replace_all(x, removed) for x in v]
        if v is None:
            return None
        if removed is not None and (k := _value_key(v)) is not None:
            removed.add(k)
        return v if isinstance(v, str) and v.startswith("[REDACTED") else self.token(v)

    def _walk(self, obj: Any, values: set[str], removed: set[str] | None) -> Any:
        if isinstance(obj, dict):
            named = obj.get("name")
            tensor = isinstance(named, str) and self._name_matches(named)
            out = {}
            for k, v in obj.items():
                if (isinstance(k, str) and self._name_matches(k)) or (tensor and k in ("data", "value", "values")):
                    out[k] = self._replace_all(v, removed)
                else:
                    out[k] = self._walk(v, values, removed)
            return out
        if isinstance(obj, list):
            return [self._walk(v, values, removed) for v in obj]
        return self._leaf(obj, values)

    def _apply_path(self, obj: Any, path: list[tuple[str, Any]], removed: set[str] | None) -> Any:
        if not path:
            return self._replace_all(obj, removed)
        op, arg = path[0]
        rest = path[1:]
        if op == "key" and isinstance(obj, dict) and arg in obj:
            return {**obj, arg: self._apply_path(obj[arg], rest, removed)}
        if op == "index" and isinstance(obj, list) and -len(obj) <= arg < len(obj):
            copy = list(obj)
            copy[arg] = self._apply_path(obj[arg], rest, removed)
            return copy
        if op == "any":
            if isinstance(obj, dict):
                return {k: self._apply_path(v, rest, removed) for k, v in obj.items()}
            if isinstance(obj, list):
                return [self._apply_path(v, rest, removed) for v in obj]
        if op == "desc":
            if isinstance(obj, dict):
                return {k: (self._apply_path(v, rest, removed) if k == arg else self._apply_path(v, path, removed))
                        for k, v in obj.items()}
            if isinstance(obj, list):
                return [self._apply_path(v, path, removed) for v in obj]
        return obj

    # -- raw bodies ----------------------------------------------------------------------------------
    def body(self, text: str | None, encoding: str, values: set[str] | None = None,
             removed: set[str] | None = None) -> str | None:
        """A raw body as the record keeps it (UTF-8 text or base64), redacted.

        JSON text is parsed and rewritten only if something was removed; other text gets the
        patterns and removed values; binary bodies are masked in place with ``*`` (same length)."""
        if text is None:
            return None
        values = values or set()
        if encoding == "base64":
            return self._binary(text, values)
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            return self.text(text, values)
        if isinstance(obj, str):
            new_s = self._leaf(obj, values)
            return text if new_s == obj else orjson.dumps(new_s).decode()
        new = self.json(obj, values, removed)
        return text if new == obj else orjson.dumps(new).decode()

    def _binary(self, b64: str, values: set[str]) -> str:
        raw = bytearray(base64.b64decode(b64))
        view = raw.decode("latin-1")
        hits: list[tuple[int, int]] = []
        for v in values:
            needle = v.encode("utf-8").decode("latin-1")
            start = view.find(needle)
            while start >= 0:
                hits.append((start, start + len(needle)))
                start = view.find(needle, start + 1)
        hits.extend((s, e) for s, e, _, _ in self.spans(view))
        if not hits:
            return b64
        for s, e in hits:
            raw[s:e] = b"*" * (e - s)
        return base64.b64encode(bytes(raw)).decode("ascii")

    # -- records and dead letters ---------------------------------------------------------------------
    def record(self, rec: InferenceRecord) -> InferenceRecord:
        """Redact a record in place (tables, raw bodies, header values) and return it."""
        removed: set[str] = set()
        # first pass: collect what the field rules remove anywhere in the record
        rec.inputs = self.table(rec.inputs, removed=removed)
        rec.outputs = self.table(rec.outputs, removed=removed)
        rec.truth = self.table(rec.truth, removed=removed)
        rec.request = self.body(rec.request, rec.request_encoding, removed=removed)
        rec.response = self.body(rec.response, rec.response_encoding, removed=removed)
        if removed:  # second pass: the same values wherever else they appear
            rec.inputs = self.table(rec.inputs, removed)
            rec.outputs = self.table(rec.outputs, removed)
            rec.truth = self.table(rec.truth, removed)
            rec.request = self.body(rec.request, rec.request_encoding, removed)
            rec.response = self.body(rec.response, rec.response_encoding, removed)
        rec.meta = {k: self.text(v, removed) for k, v in rec.meta.items()}
        return rec

    def deadletter(self, dl: DeadLetter) -> DeadLetter:
        """Redact a dead letter in place: its raw bytes and its reason (which may quote the payload)."""
        from inferwatch.record import encode_body

        text, enc = encode_body(dl.raw)
        removed: set[str] = set()
        redacted = self.body(text, enc, removed=removed)
        if removed:
            redacted = self.body(redacted, enc, removed)
        if redacted != text and redacted is not None:
            dl.raw = base64.b64decode(redacted) if enc == "base64" else redacted.encode("utf-8")
        dl.reason = self.text(dl.reason, removed)
        dl.meta = {k: self.text(v, removed) for k, v in dl.meta.items()}
        return dl

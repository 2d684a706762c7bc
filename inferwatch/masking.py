"""Secrets in the configuration, and keeping them out of everything the process prints.

Configuration fields that hold a credential are declared with :func:`secret_field` (a
pydantic field with ``repr=False`` and a ``secret`` marker). From a loaded configuration:

* :func:`masked_dump` is what ``inferwatch config`` prints: every secret replaced by ``****``,
  and the password of any ``scheme://user:password@host`` URL too;
* :func:`register` remembers the secret values (and the forms a client derives from them, such
  as the base64 of ``user:password`` in a Basic ``Authorization`` header) for :func:`mask`;
* :func:`install` masks every log record of every logger at creation (message, arguments,
  exception text), and uncaught exceptions in the main thread and in other threads.

>>> from pydantic import BaseModel
>>> class Section(BaseModel):
...     username: str | None = None
...     password: str | None = secret_field()
...     hosts: list[str] = []
>>> s = Section(username="bob", password="hunter2-xyz", hosts=["https://bob:pw-in-url@es:9200"])
>>> "hunter2" in repr(s)
False
>>> masked_dump(s)
{'username': 'bob', 'password': '****', 'hosts': ['https://bob:****@es:9200']}
>>> register(s)
>>> mask("login failed for bob with hunter2-xyz at https://bob:pw-in-url@es:9200")
'login failed for bob with **** at https://bob:****@es:9200'
"""

from __future__ import annotations

import base64
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["MASK", "install", "mask", "masked_dump", "register", "secret_field", "secret_values"]

MASK = "****"
#: secrets shorter than this are not masked inside other text (too many false hits); the
#: configuration dump still masks them
MIN_SECRET_LENGTH = 4
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def secret_field(default: Any = None) -> Any:
    """A configuration field that holds a credential: hidden from ``repr`` and masked when dumped."""
    return Field(default, repr=False, json_schema_extra={"secret": True})


def _is_secret(model: BaseModel, name: str) -> bool:
    extra = type(model).model_fields[name].json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("secret"))


def _walk(model: BaseModel) -> Iterator[tuple[BaseModel, str, Any]]:
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _walk(value)
        else:
            yield model, name, value


def _url_passwords(value: Any) -> Iterator[str]:
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, str):
            for m in _URL_USERINFO.finditer(v):
                yield m.group("pw")


def secret_values(model: BaseModel) -> set[str]:
    """Every secret in ``model``: the secret fields, URL passwords and the encodings clients send."""
    found: set[str] = set()
    users: dict[int, str] = {}
    passwords: dict[int, str] = {}
    for section, name, value in _walk(model):
        if isinstance(value, list) and _is_secret(section, name):
            found.update(v for v in value if isinstance(v, str) and v)
        if isinstance(value, str) and value and _is_secret(section, name):
            found.add(value)
            if "password" in name:
                passwords[id(section)] = value
        if name in ("username", "sasl_username") and isinstance(value, str):
            users[id(section)] = value
        found.update(_url_passwords(value))
    for key, password in passwords.items():  # HTTP Basic auth sends base64("user:password")
        found.add(base64.b64encode(f"{users.get(key, '')}:{password}".encode()).decode())
    return {s for s in found if s}


def masked_dump(model: BaseModel) -> dict[str, Any]:
    """``model.model_dump(mode="json")`` with every secret (and URL password) replaced by ``****``."""

    def dump(m: BaseModel) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in type(m).model_fields:
            value = getattr(m, name)
            if isinstance(value, BaseModel):
                out[name] = dump(value)
            elif _is_secret(m, name):
                out[name] = [MASK for _ in value] if isinstance(value, list) else (MASK if value else value)
            else:
                out[name] = _mask_urls(m.model_dump(mode="json", include={name})[name])
        return out

    return dump(model)


def _mask_urls(value: Any) -> Any:
    if isinstance(value, str):
        return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{MASK}@", value)
    if isinstance(value, list):
        return [_mask_urls(v) for v in value]
    if isinstance(value, dict):
        return {k: _mask_urls(v) for k, v in value.items()}
    return value


def register(source: BaseModel | Iterable[str]) -> None:
    """Remember secrets (of a configuration, or given values) so :func:`mask` removes them."""
    global _pattern
    values = secret_values(source) if isinstance(source, BaseModel) else {str(v) for v in source}
    values = {v for v in values if len(v) >= MIN_SECRET_LENGTH}
    with _lock:
        if values <= _secrets:
            return
        _secrets.update(values)
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leftovers
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def mask(text: str) -> str:
    """``text`` with every registered secret and every URL password replaced by ``****``."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if "@" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{MASK}@", text)
    return text


# --- logs and uncaught errors ---------------------------------------------------------------------

_installed = False


def _masking_factory(base: Any) -> Any:
    formatter = logging.Formatter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = base(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return record
        record.msg, record.args = mask(message), None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = mask(formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return record

    return factory


def install() -> None:
    """Mask secrets in every log record and in uncaught exceptions (idempotent, process-wide)."""
    global _installed
    if _installed:
        return
    _installed = True
    logging.setLogRecordFactory(_masking_factory(logging.getLogRecordFactory()))

    def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        sys.stderr.write(mask("".join(traceback.format_exception(kind, exc, tb))))

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
        sys.stderr.write(mask(f"Exception in thread {name}:\n{text}"))

    sys.excepthook = excepthook
    threading.excepthook = thread_hook

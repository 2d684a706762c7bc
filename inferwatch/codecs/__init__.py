"""Payload codecs: what served models send, decoded into tables.

Protocols: ``oip-v2`` (Open Inference Protocol / KServe V2 / MLServer / Triton),
``seldon-v1``, ``kserve-v1`` (and TF Serving REST), ``mlflow`` (scoring server), ``json``
(plain records). :func:`decode` turns a body into a :class:`Decoded` (protocol, table,
meta); :func:`encode` is its inverse; :func:`detect_protocol` tells protocols apart by
structure. Bad input of any kind raises :class:`~inferwatch.errors.DecodeError`, nothing else.

Column names (the same rule for every protocol):

1. explicit names in the payload win (Seldon ``data.names``, MLflow ``columns``, record keys);
2. a tensor of shape ``[N]`` or ``[N, 1]`` is one column named after the tensor;
3. ``[N, k]`` is ``k`` columns ``<tensor>_0 .. <tensor>_{k-1}``;
4. an unnamed tensor (Seldon data without names, bare ``instances``/``predictions`` lists)
   is named ``f``, without separator: ``f0`` for one column, ``f0 .. f{k-1}`` for ``k``;
5. rank > 2 (or ``[N, k]`` wider than 10,000, or an MLServer ``pd`` payload) keeps one
   column per tensor whose per-row value is that row's nested list;
6. a name already taken gets a pandas-style suffix ``.1``, ``.2``;
7. in record objects, list values are cells and nested objects flatten to ``a.b``.

Every tensor has the same batch size N (N rows); a rank-0 tensor repeats on every row.

>>> d = decode(b'{"data": {"names": ["a", "b"], "ndarray": [[1, 2.5], [3, 4.5]]}}', part="request")
>>> d.protocol, d.table
('seldon-v1', {'a': [1, 3], 'b': [2.5, 4.5]})
>>> decode(encode(d.table, "oip-v2", "response"), part="response").table == d.table
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from inferwatch.codecs._parse import dumps, parse
from inferwatch.codecs.base import Codec, Decoded, fail
from inferwatch.codecs.limits import Budget, BudgetExceeded, check_depth, session
from inferwatch.codecs.registry import REGISTRY, check_part, error_message
from inferwatch.errors import DecodeError
from inferwatch.table import Table

__all__ = ["PROTOCOLS", "REGISTRY", "Budget", "BudgetExceeded", "Codec", "Decoded", "decode", "detect_protocol", "encode"]

#: The built-in protocols in detection order (``REGISTRY.names()`` includes later registrations).
PROTOCOLS: tuple[str, ...] = REGISTRY.names()

# Non-tabular protocols, registered after the tabular built-ins (detection still tries them before
# the ``json`` fallback): OpenAI-compatible LLM endpoints.
from inferwatch.codecs.llm import CODEC as _LLM  # noqa: E402

REGISTRY.register(_LLM)

_UNEXPECTED = "unexpected payload structure"


def decode(
    body: bytes | str | Mapping[str, Any] | list[Any],
    *,
    part: Literal["request", "response"],
    protocol: str | None = None,
    content_type: str | None = None,
    budget: Budget | None = None,
) -> Decoded:
    """Decode a request or response body into a table of rows.

    ``body`` is raw JSON (bytes or str) or already-parsed objects; ``protocol`` forces a
    codec (canonical name or alias like ``"tfserving"``); without it (or with ``"auto"``)
    the protocol is detected by structure; ``content_type`` is the body's media type (charset, NDJSON, protobuf).
    ``budget`` bounds the work (:class:`~inferwatch.codecs.limits.Budget`; over it raises
    :class:`~inferwatch.codecs.limits.BudgetExceeded` naming the limit).

    ``meta["tensors"]`` lists each tensor's name, datatype and shape where the protocol says;
    ``meta["encodings"]`` says, per column that arrived as binary (base64), whether its values
    are that text (``utf-8``) or base64 (``base64``).

    >>> body = {"inputs": [
    ...     {"name": "age", "shape": [2], "datatype": "INT32", "data": [31, 45]},
    ...     {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[0.5, 1], [2, 3]]},
    ...     {"name": "city", "shape": [2], "datatype": "BYTES", "data": ["Oslo", "Lima"]}]}
    >>> d = decode(body, part="request")
    >>> d.protocol, d.table
    ('oip-v2', {'age': [31, 45], 'x_0': [0.5, 2.0], 'x_1': [1.0, 3.0], 'city': ['Oslo', 'Lima']})
    >>> decode(b'{"instances": [[1, 2], [3, 4]]}', part="request").table
    {'f0': [1, 3], 'f1': [2, 4]}
    >>> decode(b'{"predictions": [0.2, 0.9]}', part="response").table
    {'f0': [0.2, 0.9]}
    >>> decode(b'{"error": "model not ready"}', part="response")
    Traceback (most recent call last):
    ...
    inferwatch.errors.DecodeError: error response: model not ready
    >>> decode(b"\\xff", part="request")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    inferwatch.errors.DecodeError: invalid JSON: ...
    """
    check_part(part)
    proto = REGISTRY.canonical(protocol) if protocol not in (None, "", "auto") else None
    with session(budget) as s:
        decoded = _decode(body, part, proto, content_type)
        if s.encodings:
            decoded.meta["encodings"] = {k: v for k, v in s.encodings.items() if k in decoded.table}
        return decoded


def _decode(body: Any, part: str, proto: str | None, content_type: str | None) -> Decoded:
    try:
        obj = parse(body, content_type)
        if proto is None:
            proto = REGISTRY.detect(obj, part)
        elif proto != REGISTRY.fallback and (err := error_message(obj)) is not None:
            raise fail(proto, f"error response: {err}")
        codec = REGISTRY.get(proto)
        try:
            decoded: Decoded = codec.decode(obj, part)
            check_depth(decoded.meta, proto, "payload metadata")
            return decoded
        except DecodeError as exc:
            if exc.expected is None and exc.protocol == proto and not isinstance(exc, BudgetExceeded):
                raise fail(proto, exc.reason, codec.expected[part]) from exc
            raise
    except DecodeError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError) as exc:
        # A safety net: codecs validate explicitly, so reaching this is a codec bug.
        raise fail(proto, f"{_UNEXPECTED}: {type(exc).__name__}: {exc}") from exc


def encode(table: Table, protocol: str, part: Literal["request", "response"], **options: Any) -> bytes:
    """Encode a table as a ``protocol`` request or response body (the inverse of :func:`decode`).

    Options per protocol: ``oip-v2`` — ``id``, ``model_name``, ``model_version``,
    ``parameters``, ``content_type`` (request-level, default ``"pd"``; ``None`` omits it);
    ``seldon-v1`` — ``kind`` (``ndarray`` | ``tensor`` | ``jsonData``), ``meta``;
    ``kserve-v1`` — ``format`` (``rows`` | ``columns``), ``signature_name``;
    ``mlflow`` — ``format`` (``split`` | ``records`` | ``instances`` | ``inputs``), ``params``.
    Raises :class:`~inferwatch.errors.DecodeError` for a table the protocol cannot express.

    >>> encode({"a": [1, 2]}, "kserve-v1", "request")
    b'{"instances":[{"a":1},{"a":2}]}'
    >>> encode({"a": [1, 2], "b": ["x", "y"]}, "mlflow", "request")
    b'{"dataframe_split":{"columns":["a","b"],"data":[[1,"x"],[2,"y"]]}}'
    >>> t = {"a": [1, 2], "b": [0.5, 1.5], "c": ["x", "y"], "d": [True, False]}
    >>> all(decode(encode(t, p, "request"), part="request", protocol=p).table == t for p in PROTOCOLS)
    True
    """
    check_part(part)
    codec = REGISTRY.get(protocol)
    proto = codec.name
    try:
        return dumps(codec.encode(table, part, **options))
    except TypeError as exc:  # unknown option
        raise fail(proto, f"cannot encode: {exc}") from exc


def detect_protocol(obj: Any, part: str) -> str:
    """The protocol of a payload (parsed, or raw JSON bytes/str), judged by its structure.

    ``part`` matters: an OIP response has ``outputs`` and ``model_name``, a KServe v1
    response ``predictions``. Raises :class:`~inferwatch.errors.DecodeError` for error
    responses and when nothing matches, listing what each protocol expects.

    >>> detect_protocol({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}, "request")
    'oip-v2'
    >>> detect_protocol({"data": {"ndarray": [[1, 2]]}}, "request")
    'seldon-v1'
    >>> detect_protocol({"instances": [[1, 2]]}, "request"), detect_protocol({"predictions": [1]}, "response")
    ('kserve-v1', 'kserve-v1')
    >>> detect_protocol({"dataframe_split": {"columns": ["a"], "data": [[1]]}}, "request")
    'mlflow'
    >>> detect_protocol([{"a": 1}], "response")
    'json'
    >>> detect_protocol(42, "request")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    inferwatch.errors.DecodeError: no protocol matches this request (a number) (expected one of: oip-v2 ...)
    """
    check_part(part)
    if isinstance(obj, (bytes, bytearray, memoryview, str)):
        obj = parse(obj)
    return REGISTRY.detect(obj, part)

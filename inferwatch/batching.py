"""The one batching engine: bounded chunks, retry with backoff, refused requests split, durable on return.

A store (Elasticsearch, SQLite) or a remote sink (Alertmanager) maps what it is given to
:class:`WriteAction` s and encodes them; it hands the engine their sizes and a :class:`Transport`
that sends a chunk of its actions named by their positions. The engine never holds an action, a
document or an id — only positions, sizes and statuses — and decides the same way for every one:

* chunks of at most ``chunk_actions`` positions or ``chunk_bytes`` encoded bytes;
* per-item outcomes, HTTP-style: ``< 300`` written; ``429``/``5xx`` retried with jittered
  exponential backoff, and after ``max_retries`` :class:`~inferwatch.errors.BackpressureError`
  (the caller keeps its batch: its log position is not committed); any other status the
  transport reads (:meth:`Transport.settle`): done already (a ``create`` whose document is there,
  a ``delete`` of one gone: idempotent replays), replaced (a ``create`` the store turns into a
  merge: sent again at once), or refused;
* a whole request refused for what it carries (:class:`~inferwatch.errors.RequestRefused`: a
  ``400``, a ``413`` over the service's request size) is split in halves, each sent on its own,
  down to the one action the service refuses by itself, which is refused with the service's
  reason: one bad document never holds the others back nor stops the caller.

:meth:`BatchingSink.write_ahead` writes a sequence of such writes (parts), each made while the one
before it is being sent on the engine's sender thread: the caller's CPU work (building and encoding
the next part) overlaps the service's answer to the previous one. At most one part is in flight,
and a part is sent only after every part before it is durable and handed back, so a failure stops
the sequence at the failed part: nothing after it is sent, and the caller, which commits only what
came back durable, never commits past it.

:meth:`BatchingSink.write` returns an :class:`Outcome` (how many were written, which positions
were refused and why) once every position is durable or refused; the caller keeps the refused
ones as dead letters (:meth:`~inferwatch.record.DeadLetter.refused`) and commits its log
position after that — commit after flush.

>>> class Memory:                      # a transport: the actions stay with it
...     def __init__(self, docs):
...         self.docs, self.kept, self.calls = docs, {}, 0
...     def send(self, positions):
...         self.calls += 1
...         if any(self.docs[p] == "too big" for p in positions):
...             raise RequestRefused(413, "request too large")
...         self.kept.update((p, self.docs[p]) for p in positions)
...         return None                # every item written
...     def settle(self, position, status):
...         return "refused"
>>> mem = Memory(["a", "b", "too big", "c", "d"])
>>> out = BatchingSink(name="mem", chunk_actions=4).write([1] * 5, mem)
>>> out.written, out.refused, sorted(mem.kept)
(4, [(2, '413 request too large')], [0, 1, 3, 4])
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import orjson

from inferwatch.errors import AuditStoreError, BackpressureError, RequestRefused
from inferwatch.record import DeadLetter

__all__ = ["RETRYABLE", "BatchingSink", "ItemStatus", "Op", "Outcome", "Settled", "Transport", "WriteAction",
           "refused_letters"]

log = logging.getLogger("inferwatch.batching")

#: item statuses retried with backoff
RETRYABLE = frozenset({429, 500, 502, 503, 504})

Op = Literal["index", "create", "update", "delete"]
#: one item's outcome: an HTTP-style status and, when refused, the reason
ItemStatus = tuple[int, str]
#: what an item status means for one position (:meth:`Transport.settle`)
Settled = Literal["written", "again", "refused"]


@dataclass(slots=True)
class WriteAction:
    """One document write, what a store's mapping produces and its transport sends.

    ``op`` ``index`` (replace), ``create`` (only if absent), ``update`` (``doc`` is the update
    body: partial document, upsert); ``target`` the index or table; ``id`` the document id
    (deterministic: replays overwrite, never duplicate); ``origin`` what a dead letter keeps if
    the store refuses the document (bytes, or an object with ``to_json``); ``None`` means a
    refusal is an error. ``merge``: on a ``create`` whose id exists, merge into the existing
    document instead.
    """

    op: Op
    target: str
    id: str
    doc: Any = None
    origin: Any = None
    merge: bool = False


class Transport(Protocol):
    """How a store or a remote sink sends a chunk of its actions, named by their positions in
    the write (``0 .. len(sizes) - 1``); the actions themselves stay with it."""

    def send(self, positions: Sequence[int]) -> Sequence[ItemStatus] | None:
        """Send these actions as one request; per-item statuses in order, or ``None`` when every
        item was written. Raise :class:`~inferwatch.errors.BackpressureError` when the whole call
        should be retried later, :class:`~inferwatch.errors.RequestRefused` when the service refused
        the whole request for what it carries (the engine then splits it)."""
        ...

    def settle(self, position: int, status: int) -> Settled:
        """What an item's status (``>= 300``, not retryable) means: ``"written"`` (done already: a
        create whose document is there, a delete of one gone), ``"again"`` (the transport replaced
        the action, a create by its merge: send it again) or ``"refused"``."""
        ...


T = TypeVar("T", bound=Transport)


@dataclass(slots=True)
class Outcome:
    """What became of one write: ``written`` actions, and the ``refused`` positions with the reason."""

    written: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


class BatchingSink:
    """The engine (see the module docstring); one per store or sink, any number of writes."""

    def __init__(self, *, name: str, chunk_actions: int = 2000, chunk_bytes: int = 5 * 1024 * 1024,
                 max_retries: int = 10, max_backoff_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.name = name
        self.chunk_actions = chunk_actions
        self.chunk_bytes = chunk_bytes
        self.max_retries = max_retries
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep
        self._sender: ThreadPoolExecutor | None = None
        self._sender_lock = threading.Lock()

    def write_ahead(self, parts: Iterable[tuple[Sequence[int], T]]) -> Iterator[tuple[T, Outcome]]:
        """:meth:`write` each part (``sizes``, ``transport``) of ``parts`` in turn, and yield its
        transport and :class:`Outcome` once it is durable, in order. The next part is drawn from
        ``parts`` (made by the caller: documents built, encoded) while the part before it is being
        sent on the engine's sender thread.

        At most one part is in flight, and a part is sent only after the part before it was yielded:
        when a write fails (:class:`~inferwatch.errors.BackpressureError` after its retries, any
        error) the error is raised here and no later part is sent; when making a part fails, or the
        caller stops early, the part in flight is waited for first, so no write outlives this call.
        Everything yielded is durable; the caller commits its log position only after the last.

        >>> class Kept:
        ...     def __init__(self, name):
        ...         self.name = name
        ...     def send(self, positions):
        ...         return None
        ...     def settle(self, position, status):
        ...         return "refused"
        >>> engine = BatchingSink(name="kept")
        >>> [(t.name, out.written) for t, out in engine.write_ahead(([1] * n, Kept(f"p{n}")) for n in (3, 2))]
        [('p3', 3), ('p2', 2)]
        >>> engine.close()
        """
        inflight: tuple[Future[Outcome], T] | None = None
        try:
            for sizes, transport in parts:  # made while the part before it is in flight
                if inflight is not None:
                    done, inflight = inflight, None
                    yield done[1], done[0].result()
                inflight = self._sender_pool().submit(self.write, sizes, transport), transport
            if inflight is not None:
                done, inflight = inflight, None
                yield done[1], done[0].result()
        finally:
            if inflight is not None:  # stopped while a part is in flight: it ends before we do
                wait_for([inflight[0]])

    def _sender_pool(self) -> ThreadPoolExecutor:
        with self._sender_lock:
            if self._sender is None:
                self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.name}-send")
            return self._sender

    def close(self) -> None:
        """Stop the sender thread (after the part in flight, if any); a later write starts it again."""
        with self._sender_lock:
            sender, self._sender = self._sender, None
        if sender is not None:
            sender.shutdown(wait=True)

    def write(self, sizes: Sequence[int], transport: Transport) -> Outcome:
        """Send positions ``0 .. len(sizes) - 1`` (``sizes``: each action's encoded bytes) through
        ``transport``; returns once every one is durable or refused."""
        out = Outcome()
        chunk: list[int] = []
        size = 0
        for position, n in enumerate(sizes):
            if chunk and (len(chunk) >= self.chunk_actions or size + n > self.chunk_bytes):
                self._send(chunk, transport, out)
                chunk, size = [], 0
            chunk.append(position)
            size += n
        if chunk:
            self._send(chunk, transport, out)
        return out

    def _send(self, chunk: list[int], transport: Transport, out: Outcome) -> None:
        pending = chunk
        attempt = 0
        while pending:
            try:
                statuses = transport.send(pending)
            except RequestRefused as exc:
                if len(pending) == 1:
                    out.refused.append((pending[0], f"{exc.status} {exc.reason}"[:2000]))
                    return
                half = len(pending) // 2
                log.warning("%s refused a request of %d actions (%d %s); sending it in halves", self.name,
                            len(pending), exc.status, exc.reason[:200])
                self._send(pending[:half], transport, out)
                self._send(pending[half:], transport, out)
                return
            if statuses is None:
                out.written += len(pending)
                return
            retry: list[int] = []
            backoff = False
            for position, (status, reason) in zip(pending, statuses, strict=True):
                if status < 300:
                    out.written += 1
                elif status in RETRYABLE:
                    retry.append(position)
                    backoff = True
                else:
                    what = transport.settle(position, status)
                    if what == "written":
                        out.written += 1  # done already: an idempotent replay
                    elif what == "again":
                        retry.append(position)
                    else:
                        out.refused.append((position, reason[:2000]))
            pending = retry
            if pending and backoff:
                attempt += 1
                if attempt > self.max_retries:
                    raise BackpressureError(f"{len(pending)} {self.name} items still rejected (429/5xx) after "
                                            f"{attempt - 1} retries")
                delay = min(self.max_backoff_s, 0.1 * 2**attempt) * random.uniform(0.5, 1.0)
                log.warning("%d %s items rejected with 429/5xx; retry %d in %.2fs", len(pending), self.name,
                            attempt, delay)
                self.sleep(delay)


def _origin_bytes(origin: Any) -> bytes:
    if isinstance(origin, bytes):
        return origin
    if hasattr(origin, "to_json"):
        return bytes(origin.to_json())
    return orjson.dumps(origin, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def _letter_id(prefix: str, doc_id: str) -> str:
    """``<prefix>-<document id>``; for a document id too long to be an id itself (a reason it may
    have been refused) its first 100 characters and a digest of the whole: still deterministic."""
    letter_id = f"{prefix}-{doc_id}"
    if len(letter_id.encode()) <= 256:
        return letter_id
    return f"{prefix}-{doc_id[:100]}~{hashlib.blake2b(doc_id.encode(), digest_size=16).hexdigest()}"


def refused_letters(actions: Sequence[WriteAction], outcome: Outcome, *, source: str, prefix: str) -> list[DeadLetter]:
    """The dead letters of a write's refused actions: each one's ``origin`` and the service's reason,
    id ``<prefix>-<action id>`` (a digest past 256 bytes). An action without origin may not be refused: that is an
    :class:`~inferwatch.errors.AuditStoreError` (the caller keeps its batch)."""
    letters = []
    for position, reason in outcome.refused:
        a = actions[position]
        if a.origin is None:
            raise AuditStoreError(f"{source} refused {a.op} of {a.id!r}, which may not be refused: {reason}")
        letters.append(DeadLetter(raw=_origin_bytes(a.origin), source=source, stage="index", reason=reason,
                                  id=_letter_id(prefix, a.id)))
    log.error("%d documents refused by %s; sent to the dead letters", len(letters), source)
    return letters

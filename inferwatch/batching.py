"""The one batching sink: bounded chunks, retry with backoff, dead letters, durable on return.

A store (Elasticsearch, SQLite) or a remote sink (Alertmanager) only *maps* what it is given to
:class:`WriteAction` s and says how one chunk is sent (:meth:`BatchingSink.send`). This engine does
the rest, the same way for every one of them:

* chunks of at most ``chunk_actions`` actions or ``chunk_bytes`` encoded bytes;
* with ``overlap``, the next chunk is encoded while the previous one is sent (at most two in
  memory); :meth:`BatchingSink.write` returns only when every chunk is durable;
* per-item outcomes, HTTP-style: ``< 300`` written; ``409`` on a ``create`` — the document is
  there already (a replay), or, when the sink has a :meth:`~BatchingSink.on_conflict`
  replacement (merge into it), that is sent at once; ``429``/``5xx`` retried with jittered
  exponential backoff, and after ``max_retries`` :class:`~inferwatch.errors.BackpressureError`
  (the caller keeps its batch: its log position is not committed); anything else is refused:
  the action's ``origin`` becomes a :class:`~inferwatch.record.DeadLetter` with the reason (an
  action without origin may not be refused: :class:`~inferwatch.errors.AuditStoreError`).

The caller commits its log position after ``write`` returned — commit after flush.

>>> class Memory(BatchingSink):
...     def __init__(self):
...         super().__init__(name="mem", chunk_actions=2)
...         self.docs, self.calls = {}, 0
...     def send(self, chunk):
...         self.calls += 1
...         self.docs.update((a.id, a.doc) for a in chunk)
...         return None  # every item written
>>> sink = Memory()
>>> sink.write(WriteAction("index", "t", str(i), {"n": i}) for i in range(5)), sink.calls
(5, 3)
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from inferwatch.errors import AuditStoreError, BackpressureError
from inferwatch.record import DeadLetter

__all__ = ["RETRYABLE", "BatchingSink", "ItemStatus", "Op", "WriteAction"]

log = logging.getLogger("inferwatch.batching")

#: item statuses retried with backoff
RETRYABLE = frozenset({429, 500, 502, 503, 504})

Op = Literal["index", "create", "update", "delete"]
#: one item's outcome: an HTTP-style status and, when refused, the reason
ItemStatus = tuple[int, str]


@dataclass(slots=True)
class WriteAction:
    """One document write, what a store's mapping produces and the engine sends.

    ``op`` ``index`` (replace), ``create`` (only if absent), ``update`` (``doc`` is the update
    body: partial document, upsert); ``target`` the index or table; ``id`` the document id
    (deterministic: replays overwrite, never duplicate); ``origin`` what a dead letter keeps if
    the store refuses the document (bytes, or an object with ``to_json``); ``None`` means a
    refusal is an error. ``merge``: on a ``create`` whose id exists, merge into the existing
    document instead (:meth:`BatchingSink.on_conflict`). ``encoded`` is filled by
    :meth:`BatchingSink.encode`.
    """

    op: Op
    target: str
    id: str
    doc: Any = None
    origin: Any = None
    merge: bool = False
    encoded: bytes = b""


def _origin_bytes(origin: Any) -> bytes:
    if isinstance(origin, bytes):
        return origin
    if hasattr(origin, "to_json"):
        return bytes(origin.to_json())
    return orjson.dumps(origin, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class BatchingSink:
    """Subclasses implement :meth:`send` (and :meth:`encode` when the wire form matters for
    chunk sizes); see the module docstring for what the engine guarantees."""

    def __init__(self, *, name: str, letter_prefix: str | None = None, chunk_actions: int = 2000, chunk_bytes: int = 5 * 1024 * 1024,
                 max_retries: int = 10, max_backoff_s: float = 30.0, overlap: bool = False,
                 on_deadletter: Callable[[list[DeadLetter]], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.name = name
        self.letter_prefix = letter_prefix or name
        self.chunk_actions = chunk_actions
        self.chunk_bytes = chunk_bytes
        self.max_retries = max_retries
        self.max_backoff_s = max_backoff_s
        self.on_deadletter = on_deadletter
        self.sleep = sleep
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-send") if overlap else None

    # -- what a sink provides ----------------------------------------------------------------
    def encode(self, action: WriteAction) -> bytes:
        """The action's wire form (its length counts toward ``chunk_bytes``)."""
        return b""

    def send(self, chunk: Sequence[WriteAction]) -> Sequence[ItemStatus] | None:
        """Send one chunk; per-item statuses in order, or ``None`` when every item was written.
        Raise :class:`BackpressureError` when the whole call should be retried later."""
        raise NotImplementedError

    def on_conflict(self, action: WriteAction) -> WriteAction | None:
        """What to send instead of a ``create`` whose id exists (``None``: it is already there)."""
        return None

    def store_deadletters(self, letters: list[DeadLetter]) -> None:
        """Keep refused documents (the store's own dead-letter place); ``on_deadletter`` is told too."""

    # -- the engine --------------------------------------------------------------------------
    def write(self, actions: Iterable[WriteAction]) -> int:
        """Send every action; returns how many were written, once all are durable or dead letters."""
        written = 0
        letters: list[DeadLetter] = []
        inflight: deque[Future[tuple[int, list[DeadLetter]]]] = deque()

        def collect(result: tuple[int, list[DeadLetter]]) -> None:
            nonlocal written
            written += result[0]
            letters.extend(result[1])

        def submit(chunk: list[WriteAction]) -> None:
            if self._pool is None:
                collect(self._send_chunk(chunk))
                return
            while inflight:
                collect(inflight.popleft().result())
            inflight.append(self._pool.submit(self._send_chunk, chunk))

        chunk: list[WriteAction] = []
        size = 0
        try:
            for a in actions:
                a.encoded = line = self.encode(a)
                if chunk and (len(chunk) >= self.chunk_actions or size + len(line) > self.chunk_bytes):
                    submit(chunk)
                    chunk, size = [], 0
                chunk.append(a)
                size += len(line)
            if chunk:
                submit(chunk)
            while inflight:
                collect(inflight.popleft().result())
        finally:
            for fut in inflight:  # an error: let the rest finish (writes are idempotent), then raise
                fut.exception()
        if letters:
            log.error("%d documents refused by %s; sent to the dead letters", len(letters), self.name)
            self.store_deadletters(letters)
            if self.on_deadletter is not None:
                self.on_deadletter(letters)
        return written

    def _send_chunk(self, chunk: list[WriteAction]) -> tuple[int, list[DeadLetter]]:
        pending = chunk
        attempt = 0
        written = 0
        letters: list[DeadLetter] = []
        while pending:
            statuses = self.send(pending)
            if statuses is None:
                written += len(pending)
                break
            retry: list[WriteAction] = []
            backoff = False
            for a, (status, reason) in zip(pending, statuses, strict=True):
                if status < 300:
                    written += 1
                elif status in RETRYABLE:
                    retry.append(a)
                    backoff = True
                elif status == 404 and a.op == "delete":
                    written += 1  # already gone: an idempotent replay
                elif status == 409 and a.op == "create":
                    instead = self.on_conflict(a)
                    if instead is None:
                        written += 1  # already there: an idempotent replay
                    else:
                        instead.encoded = self.encode(instead)
                        retry.append(instead)
                elif a.origin is not None:
                    letters.append(DeadLetter(raw=_origin_bytes(a.origin), source=self.name, stage="index",
                                              reason=reason[:2000], id=f"{self.letter_prefix}-{a.id}"))
                else:
                    raise AuditStoreError(f"{self.name} refused {a.op} of {a.id!r}, which may not be refused: "
                                          f"{status} {reason}")
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
        return written, letters

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

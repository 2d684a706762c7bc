"""The record log: an append-only, partitioned sequence of messages with consumer groups.

Two implementations share this interface: ``inferwatch.sqlite_log.SQLiteLog`` (the embedded
default, one file, WAL mode) and ``inferwatch.kafka_log.KafkaLog`` (Apache Kafka). Everything above the
log is written once against :class:`Log` and :class:`Consumer`.

Semantics both implementations keep:

* ``append`` returns only after the messages are durable (SQLite: committed with
  ``synchronous=FULL``; Kafka: acknowledged by all in-sync replicas).
* each consumer group has its own committed position per partition; ``commit`` moves it
  to just past the given entries, and only the caller decides when (after its sink has
  durably taken the batch). A consumer that dies before committing re-reads the batch.
* ``commit(entries, states={partition: blob})`` stores an opaque state blob per partition (a
  detector's open windows over that partition's records) atomically with that partition's new
  position. A stateful consumer resumes a partition from the position stored *with its state*:
  after a restart, a rebalance that (re)assigns the partition, or :meth:`Consumer.seek_to_committed`,
  :meth:`Consumer.committed_state` gives the state and the next poll reads from the position it
  belongs to. A later position-only commit moves the group's committed position (and its lag)
  but not the state's: what came after the state is read again, never skipped, and the state
  never counts an entry twice.
* a consumer group shares a topic's partitions among its members; :attr:`Consumer.generation`
  changes whenever the log reassigned or repositioned this member's partitions, and a stateful
  caller then restores each partition's state from :meth:`Consumer.committed_state` before
  using the entries that follow (their positions match those states).

>>> import tempfile, os
>>> from inferwatch.sqlite_log import SQLiteLog
>>> log = SQLiteLog(os.path.join(tempfile.mkdtemp(), "log.db"))
>>> log.append("t", [(b"k", b"hello"), (None, b"world")])
>>> c = log.consumer("t", "g")
>>> batch = c.poll()
>>> [e.value for e in batch], c.lag()
([b'hello', b'world'], 2)
>>> c.commit(batch)
>>> c.lag()
0
"""

from __future__ import annotations

import sys
import types
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Consumer", "KeyValue", "Log", "LogEntry"]

#: a message to append: ``(key, value)``, or ``(key, value, audit)`` where ``audit`` is what the
#: audit store needs of the record, built once by the collector (see :attr:`Log.carries_audit`)
KeyValue = tuple[bytes | None, bytes] | tuple[bytes | None, bytes, bytes | None]


@dataclass(slots=True, frozen=True)
class LogEntry:
    """One message read from the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: float
    #: the audit documents the collector built with the record (a log that carries them), or None
    audit: bytes | None = None


class Consumer(ABC):
    """Reads one topic as a member of a consumer group."""

    topic: str
    group: str

    @abstractmethod
    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[LogEntry]:
        """Up to ``max_records`` entries after the current position (waits up to ``timeout`` s)."""

    #: changes whenever the log (re)assigned or repositioned this member's partitions (a
    #: rebalance, :meth:`seek_to_committed`); the entries of a poll belong to the generation the
    #: attribute has right after that poll
    generation: int = 0

    @abstractmethod
    def commit(self, entries: Sequence[LogEntry], states: Mapping[int, bytes] | None = None) -> None:
        """Durably move the group's position past ``entries``; each of ``states`` (partition ->
        blob) is stored with the new position of its partition, which must have entries here."""

    @abstractmethod
    def committed_state(self, partition: int = 0) -> bytes | None:
        """The state stored with ``partition``'s last stateful ``commit`` of this group, if any;
        for an assigned partition, the one its position was set from."""

    @abstractmethod
    def assigned(self) -> frozenset[int]:
        """The partitions this member holds (as of the last poll)."""

    @abstractmethod
    def seek_to_committed(self) -> None:
        """Forget uncommitted progress: the next poll re-reads each partition from the position
        stored with its state, or from the committed position when it has none."""

    @abstractmethod
    def lag(self) -> int:
        """Messages in the topic after the group's committed position."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Log(ABC):
    """An append-only log of topics."""

    #: whether a message's third element (``audit``: the record's audit documents, built once by the
    #: collector) is kept beside its value and given back as :attr:`LogEntry.audit` (Kafka: a
    #: header; the value stays the record's JSON). A log that does not carries the value alone:
    #: the audit role then builds the documents from the record.
    carries_audit: bool = False

    @abstractmethod
    def create_topics(self, topics: Iterable[str]) -> None:
        """Create topics that do not exist yet (idempotent)."""

    @abstractmethod
    def append(self, topic: str, items: Sequence[KeyValue]) -> None:
        """Append ``(key, value)`` or ``(key, value, audit)`` messages; returns once they are durable."""

    @abstractmethod
    def consumer(self, topic: str, group: str) -> Consumer:
        """A consumer of ``topic`` in ``group``, positioned at the group's committed offset."""

    @abstractmethod
    def size(self, topic: str) -> int:
        """Number of messages ever appended to ``topic`` (retained ones, for Kafka)."""

    @abstractmethod
    def group_lag(self, topic: str, group: str) -> int:
        """Messages after ``group``'s committed position, asked without joining the group."""

    @abstractmethod
    def reset_group(self, topic: str, group: str) -> None:
        """Move ``group`` back to the start of ``topic`` and drop its state: a full replay.
        Stop the group's consumers first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _CallableModule(types.ModuleType):
    """``inferwatch.log(request, response, model=...)`` is the SDK's :func:`inferwatch.sdk.log`;
    as a module, ``inferwatch.log`` stays the log interface."""

    def __call__(self, request: Any = None, response: Any = None, **kwargs: Any) -> str:
        from inferwatch.sdk import log as sdk_log

        return sdk_log(request, response, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

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
* ``commit(entries, state=...)`` stores an opaque state blob (a detector's open windows)
  atomically with the position, so a restart resumes both together.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Consumer", "KeyValue", "Log", "LogEntry"]

KeyValue = tuple[bytes | None, bytes]


@dataclass(slots=True, frozen=True)
class LogEntry:
    """One message read from the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: float


class Consumer(ABC):
    """Reads one topic as a member of a consumer group."""

    topic: str
    group: str

    @abstractmethod
    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[LogEntry]:
        """Up to ``max_records`` entries after the current position (waits up to ``timeout`` s)."""

    @abstractmethod
    def commit(self, entries: Sequence[LogEntry], state: bytes | None = None) -> None:
        """Durably move the group's position past ``entries`` (and store ``state`` with it)."""

    @abstractmethod
    def committed_state(self) -> bytes | None:
        """The state blob stored by the last ``commit`` of this group, if any."""

    @abstractmethod
    def seek_to_committed(self) -> None:
        """Forget uncommitted progress: the next poll re-reads from the committed position."""

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

    @abstractmethod
    def create_topics(self, topics: Iterable[str]) -> None:
        """Create topics that do not exist yet (idempotent)."""

    @abstractmethod
    def append(self, topic: str, items: Sequence[KeyValue]) -> None:
        """Append ``(key, value)`` messages; returns once they are durable."""

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

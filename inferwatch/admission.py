"""Load shedding for the collector: bounded work in flight, fast refusal, and a log breaker.

:class:`Admission` bounds the requests and the bytes a collector holds at once. A request over
either bound is refused at once (HTTP 503 with ``Retry-After``) instead of waiting in a queue:
a queue only turns overload into client timeouts, resends and memory growth. A body whose size
is not announced is charged as it is read (:meth:`Ticket.grow`).

:class:`Breaker` remembers that the log is failing. While it is open, appends are refused at
once; one probe at a time is let through every ``probe_interval_s``; the first success closes
it. Together with a deadline on each append this answers every request within a few seconds
whatever the log is doing.

>>> adm = Admission(max_requests=2, max_bytes=100, retry_after_s=1)
>>> a = adm.admit(60); b = adm.admit(30)
>>> adm.admit(20)
Traceback (most recent call last):
...
inferwatch.admission.Overloaded: 2 requests and 90 bytes in flight (limits 2, 100)
>>> a.release(); adm.admit(20).release(); adm.requests, adm.bytes
(1, 30)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

__all__ = ["Admission", "Breaker", "Overloaded", "Ticket"]


class Overloaded(Exception):
    """Refused to protect the process; the client should retry after ``retry_after`` seconds."""

    def __init__(self, reason: str, retry_after: float):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Ticket:
    """One admitted request's share of the bounds; :meth:`release` (or ``with``) gives it back."""

    def __init__(self, owner: Admission, nbytes: int):
        self.owner = owner
        self.nbytes = nbytes
        self._released = False

    def grow(self, nbytes: int) -> None:
        """Charge ``nbytes`` more (a body read without Content-Length); raises :class:`Overloaded`."""
        self.owner._grow(self, nbytes)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.owner._release(self)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


class Admission:
    """At most ``max_requests`` requests and ``max_bytes`` body bytes in flight (thread-safe)."""

    def __init__(self, max_requests: int, max_bytes: int, retry_after_s: float = 1.0):
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.retry_after_s = retry_after_s
        self.requests = 0
        self.bytes = 0
        self.refused = 0
        self._lock = threading.Lock()

    def _refuse(self) -> Overloaded:
        self.refused += 1
        return Overloaded(f"{self.requests} requests and {self.bytes} bytes in flight "
                          f"(limits {self.max_requests}, {self.max_bytes})", self.retry_after_s)

    def admit(self, nbytes: int = 0) -> Ticket:
        """Admit a request announcing ``nbytes`` of body, or raise :class:`Overloaded` at once.

        A single request larger than ``max_bytes`` is still admitted when nothing else is in
        flight (the body-size limit, not this one, decides whether it is too large)."""
        with self._lock:
            over_bytes = self.bytes + nbytes > self.max_bytes and self.requests > 0
            if self.requests >= self.max_requests or over_bytes:
                raise self._refuse()
            self.requests += 1
            self.bytes += nbytes
            return Ticket(self, nbytes)

    def _grow(self, ticket: Ticket, nbytes: int) -> None:
        with self._lock:
            if self.bytes + nbytes > self.max_bytes and self.requests > 1:
                raise self._refuse()
            self.bytes += nbytes
            ticket.nbytes += nbytes

    def _release(self, ticket: Ticket) -> None:
        with self._lock:
            self.requests -= 1
            self.bytes -= ticket.nbytes


class Breaker:
    """Open after a failure; lets one probe through every ``probe_interval_s``; closed by a success."""

    def __init__(self, probe_interval_s: float = 1.0, clock: Callable[[], float] | None = None):
        self.probe_interval_s = probe_interval_s
        self._clock = clock or time.monotonic
        self._open_since: float | None = None
        self._last_probe = float("-inf")
        self._probing = False
        self.last_error: str | None = None
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return self._open_since is not None

    @property
    def down_for_s(self) -> float:
        return 0.0 if self._open_since is None else self._clock() - self._open_since

    def allow(self) -> bool:
        """Whether a call may go ahead now (always when closed; one probe at a time when open)."""
        with self._lock:
            if self._open_since is None:
                return True
            now = self._clock()
            if not self._probing and now - self._last_probe >= self.probe_interval_s:
                self._probing = True
                self._last_probe = now
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._open_since = None
            self._probing = False
            self.last_error = None

    def failure(self, error: BaseException | str) -> None:
        with self._lock:
            if self._open_since is None:
                self._open_since = self._clock()
                self._last_probe = self._open_since
            self._probing = False
            self.last_error = str(error)

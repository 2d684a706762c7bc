"""Counting a record once: a bounded horizon of the record keys already seen.

A client that times out and resends, or a collector killed after the log took a request but
before it answered, puts the same record on the log twice. Audit documents have deterministic
ids, so the audit trail is unaffected; the detectors would count the row twice. A consumer
keeps a :class:`SeenKeys` horizon and lets only the first copy of a key through. The horizon is
bounded by count (``max_keys``) and by age (``max_age_s``, measured in log time, so a replay
decides exactly as the live run did), and its :meth:`snapshot` is checkpointed with the
consumer's position, so a restarted consumer still recognises copies of what it counted before.

A key is a record's :meth:`~inferwatch.record.InferenceRecord.identity` (64 bits) or any text.

>>> seen = SeenKeys(max_keys=3)
>>> [seen.first(k, now=t) for t, k in enumerate(["a", "b", "a", "c", "d", "a"])]
[True, True, False, True, True, True]
>>> restored = SeenKeys(max_keys=3)
>>> restored.restore(seen.snapshot())
>>> restored.first("d", now=10), restored.first("b", now=10)
(False, True)
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections import OrderedDict

__all__ = ["SeenKeys"]

_MAGIC = b"IWSK1"


def _digest(key: str | int) -> int:
    if isinstance(key, int):  # a record's identity: 64 bits already
        return key
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


class SeenKeys:
    """The keys seen within the horizon (64-bit hashes: a false "seen" needs a 2^-64 collision)."""

    def __init__(self, max_keys: int = 50_000, max_age_s: float = 900.0):
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self.max_age_s = max_age_s
        self._seen: OrderedDict[int, float] = OrderedDict()
        self._newest = float("-inf")
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._seen)

    def first(self, key: str | int, now: float) -> bool:
        """True the first time ``key`` is seen within the horizon (and remember it); False for a copy.

        ``now`` is the entry's log time (seconds)."""
        h = _digest(key)
        if now > self._newest:
            self._newest = now
        self._evict()
        if h in self._seen:
            self.duplicates += 1
            return False
        self._seen[h] = now
        if len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return True

    def seen(self, key: str | int, now: float) -> bool:
        """Whether ``key`` is within the horizon (without remembering it)."""
        self._newest = max(self._newest, now)
        self._evict()
        return _digest(key) in self._seen

    def add(self, key: str | int, now: float) -> None:
        """Remember ``key`` (e.g. once the work it stands for is durable)."""
        h = _digest(key)
        self._newest = max(self._newest, now)
        if h in self._seen:
            return
        self._seen[h] = now
        if len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)

    def _evict(self) -> None:
        horizon = self._newest - self.max_age_s
        while self._seen:
            h, t = next(iter(self._seen.items()))
            if t >= horizon:
                break
            del self._seen[h]

    def snapshot(self) -> bytes:
        """The horizon as bytes (16 bytes a key), oldest first."""
        keys = array("Q", self._seen.keys())
        times = array("d", self._seen.values())
        return _MAGIC + struct.pack("<Iq", len(keys), self.duplicates) + keys.tobytes() + times.tobytes()

    def restore(self, state: bytes) -> None:
        """Load a :meth:`snapshot` (the bounds of this instance apply from now on)."""
        if not state.startswith(_MAGIC):
            raise ValueError("not a SeenKeys snapshot")
        n, dups = struct.unpack_from("<Iq", state, len(_MAGIC))
        off = len(_MAGIC) + struct.calcsize("<Iq")
        keys = array("Q")
        keys.frombytes(state[off:off + 8 * n])
        times = array("d")
        times.frombytes(state[off + 8 * n:off + 16 * n])
        if len(keys) != n or len(times) != n:
            raise ValueError("truncated SeenKeys snapshot")
        self._seen = OrderedDict(zip(keys, times, strict=True))
        self.duplicates = dups
        self._newest = max(times) if n else float("-inf")
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)

"""The in-process cache backend: bounded in bytes, in total and per user, swept on a timer.

Why bytes and not entries: a learner can make every entry as large as a NATS
message (1 MiB), so an entry count alone lets one flood hold gigabytes. Here:

- keys are kept as SHA-256 digests (a message used as a key costs 32 bytes, not itself);
- each entry counts its value's bytes plus a fixed overhead (`ENTRY_OVERHEAD`);
- a user holding more than `max_user_bytes` loses their own least recently used
  entries first; when the whole cache holds more than `max_bytes`, the user holding
  the most loses theirs (so a flood evicts the flooder, not the others);
- expired entries are dropped by a sweep every `sweep_interval` seconds (not only
  when touched), and the freed memory is handed back to the operating system.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import hashlib
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from labkit.server.cache import Cache

Clock = Callable[[], float]
# What an entry costs besides its value: the digest, the tuple, two dict slots.
ENTRY_OVERHEAD = 256
DEFAULT_MAX_BYTES = 64 * 1024**2
DEFAULT_MAX_USER_BYTES = 8 * 1024**2
# Freed memory is returned to the OS (malloc_trim) once this much was dropped at once.
_TRIM_AFTER_BYTES = 1024**2


@dataclass
class _Entry:
    owner: str
    stored_at: float
    value: bytes

    @property
    def cost(self) -> int:
        return len(self.value) + ENTRY_OVERHEAD


class MemoryCache(Cache):
    """An in-process cache of at most `max_bytes` (and `max_user_bytes` per owner)."""

    def __init__(
        self,
        ttl: float,
        max_entries: int = 10_000,
        clock: Clock = time.time,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_user_bytes: int = DEFAULT_MAX_USER_BYTES,
        sweep_interval: float | None = None,
    ) -> None:
        super().__init__(ttl, clock)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_user_bytes = min(max_user_bytes, max_bytes)
        # Often enough that memory comes back within one TTL, never busier than 20 a second.
        self.sweep_interval = sweep_interval or max(0.05, min(1.0, ttl / 4))
        # digest -> entry, per owner in least-recently-used order (eviction)...
        self._by_owner: dict[str, OrderedDict[bytes, _Entry]] = {}
        # ...and every digest in the order it was set, i.e. oldest `stored_at` first (sweep).
        self._by_age: OrderedDict[bytes, _Entry] = OrderedDict()
        self._owner_bytes: dict[str, int] = {}
        self.bytes = 0
        self._sweeper: asyncio.Task[None] | None = None

    async def get(self, key: str) -> bytes | None:
        digest = _digest(key)
        entry = self._by_age.get(digest)
        if entry is None:
            return None
        if self._expired(entry, self._clock()):
            self._drop(digest)
            return None
        self._by_owner[entry.owner].move_to_end(digest)
        return entry.value

    async def set(self, key: str, value: bytes, owner: str = "") -> None:
        self._ensure_sweeping()
        digest = _digest(key)
        if digest in self._by_age:
            self._drop(digest)
        entry = _Entry(owner, self._clock(), bytes(value))
        if entry.cost > self.max_user_bytes:
            return  # larger than anyone's share: not worth evicting everything for
        self._by_age[digest] = entry
        self._by_owner.setdefault(owner, OrderedDict())[digest] = entry
        self._owner_bytes[owner] = self._owner_bytes.get(owner, 0) + entry.cost
        self.bytes += entry.cost
        while self._owner_bytes[owner] > self.max_user_bytes:
            self._evict_from(owner)
        while self.bytes > self.max_bytes or len(self._by_age) > self.max_entries:
            self._evict_from(max(self._owner_bytes, key=self._owner_bytes.__getitem__))

    def bytes_of(self, owner: str) -> int:
        """The bytes `owner`'s entries count for now."""
        return self._owner_bytes.get(owner, 0)

    def sweep(self) -> int:
        """Drop every expired entry now; the bytes freed."""
        now, before = self._clock(), self.bytes
        while self._by_age:
            digest, oldest = next(iter(self._by_age.items()))
            if not self._expired(oldest, now):
                break  # the rest were set later
            self._drop(digest)
        freed = before - self.bytes
        if freed >= _TRIM_AFTER_BYTES:
            release_free_memory()
        return freed

    def close(self) -> None:
        """Stop the sweep (it also stops with the event loop it runs on)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def __len__(self) -> int:
        return len(self._by_age)

    def _expired(self, entry: _Entry, now: float) -> bool:
        return now - entry.stored_at >= self.ttl

    def _evict_from(self, owner: str) -> None:
        digest = next(iter(self._by_owner[owner]))  # that owner's least recently used
        self._drop(digest)

    def _drop(self, digest: bytes) -> None:
        entry = self._by_age.pop(digest)
        entries = self._by_owner[entry.owner]
        del entries[digest]
        self._owner_bytes[entry.owner] -= entry.cost
        self.bytes -= entry.cost
        if not entries:
            del self._by_owner[entry.owner], self._owner_bytes[entry.owner]

    def _ensure_sweeping(self) -> None:
        # Started by the first `set`, on the loop that serves it (a cache may outlive
        # one `asyncio.run`, as in the exercises): a stopped loop's sweep is restarted.
        if self._sweeper is not None and not self._sweeper.done():
            return
        self._sweeper = asyncio.get_running_loop().create_task(
            _sweep_while_alive(weakref.ref(self), self.sweep_interval),
            name="labkit-cache-sweep",
        )


async def _sweep_while_alive(cache_ref: weakref.ref[MemoryCache], interval: float) -> None:
    # A weak reference: a cache nobody uses any more is collected and its sweep ends.
    while True:
        await asyncio.sleep(interval)
        cache = cache_ref()
        if cache is None:
            return
        cache.sweep()
        del cache


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def release_free_memory() -> None:
    """Hand memory Python freed back to the OS (glibc keeps freed heap pages otherwise)."""
    with contextlib.suppress(OSError, AttributeError):
        _libc().malloc_trim(0)


_LIBC: list[ctypes.CDLL] = []


def _libc() -> ctypes.CDLL:
    if not _LIBC:
        _LIBC.append(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"))
    return _LIBC[0]

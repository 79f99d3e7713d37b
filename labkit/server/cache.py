"""The cache handlers get by asking for `Cache`: one interface, two backends.

- `memory`: in this process, bounded in bytes in total and per user, swept on a
  timer (`labkit.server.memory_cache`).
- `kv`: a JetStream key-value bucket, so every replica shares one cache; the bucket
  is bounded in bytes (`max_bytes`) and the NATS server drops expired entries.

Entries expire `ttl` seconds after they were set, exactly: each stored value
carries its own time, so a bucket's coarser expiry never serves a stale entry.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, KeyNotFoundError, ServiceUnavailableError

from labkit.server.injection import register_dependency
from labkit.server.jetstream import when_available
from labkit.settings import ServerSettings

Clock = Callable[[], float]
_STAMP = struct.Struct("!d")
_STREAM_CONFIG_DIFFERS = 10058  # JetStream: "stream name already in use with a different ..."
log = logging.getLogger("labkit.server.cache")


class Cache(ABC):
    """Bytes by key, each entry for `ttl` seconds."""

    def __init__(self, ttl: float, clock: Clock = time.time) -> None:
        self.ttl = ttl
        self._clock = clock

    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value set less than `ttl` seconds ago, else None."""

    @abstractmethod
    async def set(self, key: str, value: bytes, owner: str = "") -> None:
        """Store `value` under `key` from now on; `owner` is whose share it counts against."""


class KeyValueCache(Cache):
    """A cache in a JetStream key-value bucket (created with a TTL), shared by replicas."""

    def __init__(self, kv: Any, ttl: float, clock: Clock = time.time) -> None:
        super().__init__(ttl, clock)
        self._kv = kv

    @classmethod
    async def open(
        cls,
        nc: Client,
        bucket: str,
        ttl: float,
        *,
        replicas: int = 1,
        max_bytes: int = -1,
        max_value_bytes: int = -1,
    ) -> KeyValueCache:
        """Create the bucket if needed (idempotent) and return a cache on it.

        `max_bytes` bounds the bucket (its memory on the NATS server): when it is full
        a new entry is not cached (JetStream refuses it), which a cache may well do.
        """
        js = nc.jetstream()
        config = KeyValueConfig(
            bucket=bucket,
            ttl=ttl,
            history=1,
            storage=StorageType.MEMORY,
            replicas=replicas,
            max_bytes=max_bytes,
            max_value_size=max_value_bytes,
        )
        try:
            kv = await when_available(
                lambda: js.create_key_value(config), f"creating KV bucket {bucket}"
            )
        except BadRequestError as exc:
            if exc.err_code != _STREAM_CONFIG_DIFFERS:
                raise
            # Made by an older labkit or other settings: bring its bounds to these.
            kv = await _rebound(js, config)
        return cls(kv, ttl)

    async def get(self, key: str) -> bytes | None:
        try:
            entry = await self._kv.get(_kv_key(key))
        except KeyNotFoundError:
            return None
        raw = entry.value or b""
        if len(raw) < _STAMP.size:
            return None
        (stored_at,) = _STAMP.unpack_from(raw)
        if self._clock() - stored_at >= self.ttl:
            return None
        return bytes(raw[_STAMP.size :])

    async def set(self, key: str, value: bytes, owner: str = "") -> None:
        # A bucket has one bound for everybody (JetStream has no per-user share): a full
        # bucket or a value over its size refuses the put, and the reply is simply not cached.
        try:
            await self._kv.put(_kv_key(key), _STAMP.pack(self._clock()) + value)
        except (BadRequestError, ServiceUnavailableError) as exc:
            log.info("cache bucket refused an entry (%s): not cached", exc)


async def _rebound(js: JetStreamContext, config: KeyValueConfig) -> Any:
    """Update an existing bucket's TTL and byte bounds to `config`'s; the bucket."""
    stream = f"KV_{config.bucket}"
    current = (await js.stream_info(stream)).config
    current.max_age = config.ttl
    current.max_bytes = config.max_bytes
    current.max_msg_size = config.max_value_size
    await js.update_stream(current)
    log.info("cache bucket %s: bounds updated to %s bytes", config.bucket, config.max_bytes)
    return await js.key_value(config.bucket)


def _kv_key(key: str) -> str:
    # KV keys allow few characters; a digest keeps any message usable as a key.
    return hashlib.sha256(key.encode()).hexdigest()


# (connection, settings, JetStream replicas) -> cache
CacheFactory = Callable[[Client, ServerSettings, int], Awaitable[Cache]]


async def _memory(_nc: Client, settings: ServerSettings, _replicas: int) -> Cache:
    return MemoryCache(
        settings.cache_ttl.total_seconds(),
        settings.cache_max_entries,
        max_bytes=settings.cache_max_bytes,
        max_user_bytes=settings.cache_max_user_bytes,
    )


async def _kv(nc: Client, settings: ServerSettings, replicas: int) -> Cache:
    return await KeyValueCache.open(
        nc,
        settings.cache_bucket,
        settings.cache_ttl.total_seconds(),
        replicas=replicas,
        max_bytes=settings.cache_max_bytes,
        max_value_bytes=settings.cache_max_user_bytes,
    )


CACHE_BACKENDS: dict[str, CacheFactory] = {"memory": _memory, "kv": _kv}


async def open_cache(nc: Client, settings: ServerSettings, *, replicas: int = 1) -> Cache:
    """The cache backend the settings name (LABKIT_SERVER_CACHE_BACKEND).

    `replicas`: of the KV bucket, 3 on a NATS cluster (see discovery.jetstream_replicas).
    """
    try:
        factory = CACHE_BACKENDS[settings.cache_backend]
    except KeyError:
        known = ", ".join(CACHE_BACKENDS)
        raise ValueError(
            f"unknown cache backend {settings.cache_backend!r}; choose one of: {known}"
        ) from None
    return await factory(nc, settings, replicas)


register_dependency(Cache)

# After Cache: the memory backend builds on it.
from labkit.server.memory_cache import MemoryCache  # noqa: E402

__all__ = ["CACHE_BACKENDS", "Cache", "KeyValueCache", "MemoryCache", "open_cache"]

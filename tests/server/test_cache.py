"""Caches: the memory backend's expiry and bound, and the JetStream KV backend replicas share."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

import pytest
from nats.aio.client import Client

from labkit.client import connect_as
from labkit.nsc.claims import permissions_from_templates
from labkit.nsc.wrapper import Nsc
from labkit.server import KeyValueCache, MemoryCache
from labkit.server.cache import CACHE_BACKENDS, open_cache
from labkit.settings import ServerSettings
from labkit.stack import Stack


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_memory_cache_hits_before_ttl_and_misses_from_ttl_on() -> None:
    clock = FakeClock()
    cache = MemoryCache(ttl=5, clock=clock)

    async def scenario() -> list[bytes | None]:
        await cache.set("k", b"v")
        seen = [await cache.get("k")]
        clock.now += 4.999
        seen.append(await cache.get("k"))
        clock.now += 0.001  # exactly ttl after it was set
        seen.append(await cache.get("k"))
        return seen

    assert asyncio.run(scenario()) == [b"v", b"v", None]
    assert len(cache) == 0  # the expired entry was dropped, not kept


def test_memory_cache_set_again_restarts_the_ttl() -> None:
    clock = FakeClock()
    cache = MemoryCache(ttl=5, clock=clock)

    async def scenario() -> list[bytes | None]:
        await cache.set("k", b"old")
        clock.now += 4
        await cache.set("k", b"new")
        clock.now += 4
        seen = [await cache.get("k")]
        clock.now += 2
        seen.append(await cache.get("k"))
        return seen

    assert asyncio.run(scenario()) == [b"new", None]


def test_memory_cache_unknown_key_misses() -> None:
    assert asyncio.run(MemoryCache(ttl=5).get("nothing")) is None


def test_memory_cache_drops_the_least_recently_used_entry() -> None:
    cache = MemoryCache(ttl=60, max_entries=2, clock=FakeClock())

    async def scenario() -> dict[str, bytes | None]:
        await cache.set("a", b"1")
        await cache.set("b", b"2")
        await cache.get("a")  # `a` is now the most recently used
        await cache.set("c", b"3")  # over the bound: `b` goes
        return {key: await cache.get(key) for key in "abc"}

    assert asyncio.run(scenario()) == {"a": b"1", "b": None, "c": b"3"}
    assert len(cache) == 2


def test_memory_cache_overwriting_does_not_grow_it() -> None:
    cache = MemoryCache(ttl=60, max_entries=2, clock=FakeClock())

    async def scenario() -> None:
        for value in range(10):
            await cache.set("same", str(value).encode())

    asyncio.run(scenario())
    assert len(cache) == 1


def test_open_cache_with_an_unknown_backend_lists_the_backends() -> None:
    settings = ServerSettings(cache_backend="redis")
    with pytest.raises(ValueError, match="'redis'") as raised:
        asyncio.run(open_cache(None, settings))  # type: ignore[arg-type]  # never reached
    for backend in CACHE_BACKENDS:
        assert backend in str(raised.value)


def test_open_cache_memory_backend_follows_settings() -> None:
    settings = ServerSettings(cache_ttl=timedelta(seconds=7), cache_max_entries=3)
    cache = asyncio.run(open_cache(None, settings))  # type: ignore[arg-type]  # memory needs no NATS
    assert isinstance(cache, MemoryCache)
    assert (cache.ttl, cache.max_entries) == (7, 3)


# The KV backend, against the real server. Each test makes a bucket of its own, which the
# application server's credentials may not (they name the labs' buckets only): a user
# of the same account allowed everything stands in for it.


async def server_connection(stack: Stack) -> Client:
    permissions = permissions_from_templates("cache-tests", [">"], [">"])
    creds = Nsc.from_settings(stack.settings).create_user("cache-tests", permissions=permissions)
    return await connect_as(creds.creds, settings=stack.settings)


def test_kv_caches_on_one_bucket_share_entries_across_connections(running_stack: Stack) -> None:
    bucket = f"test-cache-{secrets.token_hex(4)}"

    async def scenario() -> list[bytes | None]:
        replica_a = await server_connection(running_stack)
        replica_b = await server_connection(running_stack)
        try:
            cache_a = await KeyValueCache.open(replica_a, bucket, ttl=30)
            cache_b = await KeyValueCache.open(replica_b, bucket, ttl=30)  # idempotent
            await cache_a.set("alice\x00hello", b"from a")
            seen = [await cache_b.get("alice\x00hello"), await cache_b.get("bob\x00hello")]
            await cache_b.set("alice\x00hello", b"from b")
            seen.append(await cache_a.get("alice\x00hello"))
            return seen
        finally:
            await replica_a.jetstream().delete_key_value(bucket)
            await replica_a.close()
            await replica_b.close()

    assert asyncio.run(scenario()) == [b"from a", None, b"from b"]


def test_kv_cache_entries_expire_after_ttl(running_stack: Stack) -> None:
    bucket = f"test-cache-ttl-{secrets.token_hex(4)}"
    clock = FakeClock()

    async def scenario() -> list[bytes | None]:
        nc = await server_connection(running_stack)
        try:
            await KeyValueCache.open(nc, bucket, ttl=1)
            # Rebuild on the same bucket with a clock the test controls.
            cache = KeyValueCache(await nc.jetstream().key_value(bucket), ttl=1, clock=clock)
            await cache.set("key", b"value")
            seen = [await cache.get("key")]
            clock.now += 0.999
            seen.append(await cache.get("key"))
            clock.now += 0.001
            seen.append(await cache.get("key"))
            # A fresh set on the real clock is served, then the bucket itself expires it.
            real = KeyValueCache(await nc.jetstream().key_value(bucket), ttl=1)
            await real.set("real", b"value")
            seen.append(await real.get("real"))
            await asyncio.sleep(1.1)
            seen.append(await real.get("real"))
            return seen
        finally:
            await nc.jetstream().delete_key_value(bucket)
            await nc.close()

    assert asyncio.run(scenario()) == [b"value", b"value", None, b"value", None]


def test_kv_cache_bucket_is_bounded_in_bytes_and_refusals_are_not_errors(
    running_stack: Stack,
) -> None:
    bucket = f"test-cache-bytes-{secrets.token_hex(4)}"

    async def scenario() -> dict[str, object]:
        nc = await server_connection(running_stack)
        try:
            older = await KeyValueCache.open(nc, bucket, ttl=30)  # as labkit made it before
            await older.set("kept", b"k")
            cache = await KeyValueCache.open(
                nc, bucket, ttl=30, max_bytes=64 * 1024, max_value_bytes=16 * 1024
            )
            status = await nc.jetstream().stream_info(f"KV_{bucket}")
            await cache.set("too large", b"x" * 20_000)  # over the largest entry: not cached
            for number in range(20):  # 200 kB into a 64 KiB bucket: the rest is refused
                await cache.set(f"fill {number}", b"f" * 10_000)
            filled = await nc.jetstream().stream_info(f"KV_{bucket}")
            return {
                "max_bytes": status.config.max_bytes,
                "too_large": await cache.get("too large"),
                "kept": await cache.get("kept"),
                "held": filled.state.bytes,
                "first": await cache.get("fill 0"),
            }
        finally:
            await nc.jetstream().delete_key_value(bucket)
            await nc.close()

    seen = asyncio.run(scenario())
    assert seen["max_bytes"] == 64 * 1024
    assert seen["too_large"] is None and seen["kept"] == b"k"
    assert int(seen["held"]) <= 64 * 1024  # type: ignore[call-overload]
    assert seen["first"] == b"f" * 10_000


def test_memory_cache_counts_bytes_and_a_user_past_their_share_evicts_their_own() -> None:
    cache = MemoryCache(ttl=60, clock=FakeClock(), max_bytes=10_000, max_user_bytes=4_000)

    async def scenario() -> None:
        await cache.set("bob\x00hi", b"b" * 1_000, owner="bob")
        for number in range(20):  # alice: 20 kB, five times her share
            await cache.set(f"alice\x00{number}" + "x" * 100_000, b"a" * 1_000, owner="alice")
        assert await cache.get("bob\x00hi") == b"b" * 1_000
        assert await cache.get("alice\x0019" + "x" * 100_000) == b"a" * 1_000  # her newest stay

    asyncio.run(scenario())
    assert cache.bytes_of("alice") <= 4_000 and cache.bytes <= 10_000
    # the long keys are held as digests: each entry counts its value and a fixed overhead
    assert cache.bytes == cache.bytes_of("bob") + cache.bytes_of("alice") == 4 * (1_000 + 256)


def test_memory_cache_over_its_total_evicts_the_heaviest_user_first() -> None:
    cache = MemoryCache(ttl=60, clock=FakeClock(), max_bytes=6_000, max_user_bytes=4_000)

    async def scenario() -> None:
        await cache.set("carol", b"c" * 1_000, owner="carol")
        for number in range(3):
            await cache.set(f"alice{number}", b"a" * 1_000, owner="alice")
        await cache.set("bob", b"b" * 1_500, owner="bob")  # over 6,000: alice holds the most

    asyncio.run(scenario())
    assert cache.bytes_of("carol") == 1_256 and cache.bytes_of("bob") == 1_756
    assert cache.bytes_of("alice") == 2 * 1_256 and cache.bytes <= 6_000


def test_memory_cache_sweep_drops_expired_entries_untouched() -> None:
    clock = FakeClock()
    cache = MemoryCache(ttl=5, clock=clock)

    async def scenario() -> None:
        await cache.set("old", b"1" * 2_000_000, owner="alice")
        clock.now += 3
        await cache.set("new", b"2", owner="bob")
        clock.now += 2.5  # `old` is 5.5 s old, `new` 2.5 s

    asyncio.run(scenario())
    assert cache.sweep() == 2_000_000 + 256
    assert len(cache) == 1 and cache.bytes_of("alice") == 0 and cache.bytes == 1 + 256
    cache.close()


def test_memory_cache_skips_a_value_larger_than_a_share() -> None:
    cache = MemoryCache(ttl=5, max_bytes=100_000, max_user_bytes=10_000)
    asyncio.run(cache.set("huge", b"x" * 20_000, owner="alice"))
    assert len(cache) == 0 and cache.bytes == 0

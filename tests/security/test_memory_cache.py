"""The caching echo flooded with large distinct messages, on the real server.

The cache is bounded in bytes (in total and per user) and swept on a timer:
a flood by alice stays within her share, evicts only her own entries, and is
gone after the TTL without anybody touching it.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta

from labkit.client import connect_as
from labkit.labs import lab_server
from labkit.labs.caching import send_cached_echo
from labkit.nsc.wrapper import Nsc
from labkit.server import Cache, MemoryCache
from labkit.settings import Settings
from labkit.stack import Stack

ALICE = "memory-alice"
BOB = "memory-bob"
MAX_BYTES = 4 * 1024**2
MAX_USER_BYTES = 2 * 1024**2
TTL = 1.5
MESSAGE_BYTES = 500 * 1024
FLOOD = 300  # 150 MB of distinct messages: ~300 MB held before the cache was bounded in bytes


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _bounded(settings: Settings) -> Settings:
    server = settings.server.model_copy(
        update={
            "cache_ttl": timedelta(seconds=TTL),
            "cache_max_bytes": MAX_BYTES,
            "cache_max_user_bytes": MAX_USER_BYTES,
        }
    )
    return settings.model_copy(update={"server": server})


def test_a_flood_of_large_messages_stays_in_its_share_and_is_swept(running_stack: Stack) -> None:
    settings = _bounded(running_stack.settings)
    nsc = Nsc.from_settings(settings)

    async def scenario() -> dict[str, object]:
        server = lab_server(settings)
        await server.start()
        # Off this loop, so the lab server in it answers the announcements.
        alice_issued = await nsc.create_user_in_thread(ALICE)
        bob_issued = await nsc.create_user_in_thread(BOB)
        alice = await connect_as(alice_issued.creds, settings=settings)
        bob = await connect_as(bob_issued.creds, settings=settings)
        try:
            cache = server.resources[Cache]
            assert isinstance(cache, MemoryCache)
            await send_cached_echo(bob, BOB, "my small question")
            bob_cached_at = time.time()
            bobs_bytes = cache.bytes_of(BOB)
            evicted_bob = False
            rss_before = _rss_bytes()
            peak_bytes = peak_alice = peak_rss = 0
            for number in range(FLOOD):
                text = f"{number:06d}" + "x" * MESSAGE_BYTES
                await send_cached_echo(alice, ALICE, text, timeout=10)
                peak_bytes = max(peak_bytes, cache.bytes)
                peak_alice = max(peak_alice, cache.bytes_of(ALICE))
                # bob's entry stays until it expires: alice evicts her own entries, not his
                expired = time.time() - bob_cached_at >= cache.ttl
                evicted_bob |= cache.bytes_of(BOB) != bobs_bytes and not expired
                if number % 25 == 0:
                    peak_rss = max(peak_rss, _rss_bytes())
            held_after_flood = cache.bytes_of(ALICE)
            # Nobody touches the cache now: only the sweep can empty it.
            async with asyncio.timeout(30):  # a bound for a broken sweep, not a speed check
                while cache.bytes:
                    await asyncio.sleep(TTL / 4)
            return {
                "evicted_bob": evicted_bob,
                "peak_bytes": peak_bytes,
                "peak_alice": peak_alice,
                "held_after_flood": held_after_flood,
                "rss_growth": peak_rss - rss_before,
                "left": len(cache),
            }
        finally:
            await alice.close()
            await bob.close()
            await server.stop()

    seen = asyncio.run(scenario())
    assert not seen["evicted_bob"], "alice's flood evicted bob's entry"
    assert 0 < int(seen["peak_alice"]) <= MAX_USER_BYTES  # type: ignore[call-overload]
    assert int(seen["peak_bytes"]) <= MAX_BYTES  # type: ignore[call-overload]
    assert int(seen["held_after_flood"]) > MAX_USER_BYTES // 2  # type: ignore[call-overload]
    assert seen["left"] == 0
    # The process holds server and clients (their buffers and the allocator's free arenas
    # grow too: 80 to 140 MB measured); unbounded, the cache alone kept ~300 MB more.
    assert int(seen["rss_growth"]) < 220 * 1024**2, seen  # type: ignore[call-overload]

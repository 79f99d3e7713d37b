"""The caching echo: one entry per user and message, for the cache TTL."""

from __future__ import annotations

import asyncio

from tests.labs.harness import ALICE, BOB, CACHE_TTL, Lab, LabHarness

# Long enough that a freshly made reply carries a different time (millisecond precision).
APART = 0.02


def test_same_message_within_ttl_gets_the_identical_reply(lab: Lab) -> None:
    async def scenario(h: LabHarness) -> list[str]:
        first = await h.cached(ALICE, "weather?")
        await asyncio.sleep(APART)
        return [first, await h.cached(ALICE, "weather?")]

    first, second = lab.run(scenario)
    assert first.startswith("echo weather? (made at ")
    assert second == first


def test_after_the_ttl_a_new_reply_is_made(lab: Lab) -> None:
    async def scenario(h: LabHarness) -> list[str]:
        first = await h.cached(ALICE, "news?")
        await asyncio.sleep(CACHE_TTL + 0.05)
        return [first, await h.cached(ALICE, "news?")]

    first, second = lab.run(scenario)
    assert second.startswith("echo news? (made at ")
    assert second != first


def test_different_messages_and_users_do_not_share_entries(lab: Lab) -> None:
    async def scenario(h: LabHarness) -> dict[str, str]:
        replies = {"alice": await h.cached(ALICE, "same")}
        await asyncio.sleep(APART)
        replies["bob"] = await h.cached(BOB, "same")
        replies["alice other"] = await h.cached(ALICE, "other")
        replies["alice again"] = await h.cached(ALICE, "same")
        return replies

    replies = lab.run(scenario)
    assert replies["bob"] != replies["alice"]  # bob's entry is his own, made later
    assert replies["alice other"].startswith("echo other ")
    assert replies["alice again"] == replies["alice"]  # alice's entry is still there

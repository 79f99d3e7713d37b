"""Exercises of notebook 04 (caching echo): a cache with your TTL, a cache key of your own.

Both checks serve the caching echo through `MemoryBus`, which runs the very
dispatch the server runs, and tell hits from misses by watching the cache.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from labkit.exercises.base import AsyncExercise, NotYet, call_learner, kind_of
from labkit.labs import caching
from labkit.labs.caching import cached_echo_reply
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import Cache, CurrentUser, MemoryBus, MemoryCache, RemoteError, Router
from labkit.subjects import ECHO_CACHED, any_user, user_subject

FRESH_TTL = 1.0  # seconds the first exercise's cache keeps a reply
FRESH_ENTRIES = 100  # replies it keeps at most
# When the first check asks again, on the cache's own clock: inside the TTL, and after it.
STILL_FRESH_AT = 0.95
EXPIRED_AT = 1.05


class CheckClock:
    """A clock the check moves by hand: the cache's time, without waiting or timing luck."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class WatchedCache(Cache):
    """A cache that remembers whether its last lookup was a hit."""

    def __init__(self, inner: Cache) -> None:
        super().__init__(inner.ttl)
        self.inner = inner
        self.last_was_hit = False

    async def get(self, key: str) -> bytes | None:
        value = await self.inner.get(key)
        self.last_was_hit = value is not None
        return value

    async def set(self, key: str, value: bytes, owner: str = "") -> None:
        await self.inner.set(key, value, owner)


class CachedEcho:
    """A router served in memory with a watched cache: ask as a user, learn hit or miss."""

    def __init__(self, router: Router, cache: Cache) -> None:
        self.cache = WatchedCache(cache)
        self.bus = MemoryBus(router, resources={Cache: self.cache})

    async def hit(self, user: str, text: str) -> bool:
        """Ask for `text` as `user`; True when the reply came from the cache."""
        subject = user_subject(user, ECHO_CACHED)
        try:
            await self.bus.request(subject, EchoRequest(message=text), EchoResponse)
        except RemoteError as exc:
            raise NotYet(f"the cached echo failed with your cache: {exc.message}") from None
        return self.cache.last_was_hit


class FreshCache(AsyncExercise):
    sandbox_needs = ("server",)
    number = 1
    title = "A fresher cache"
    answer_name = "fresh_cache"
    prompt = (
        "The lab server keeps each reply 5 s. Make `fresh_cache`, a cache for the caching "
        f"echo that keeps each reply {FRESH_TTL:g} second and at most {FRESH_ENTRIES} "
        "replies (the least recently used go first): a `MemoryCache` with the parameters "
        f"`ttl` (seconds, here {FRESH_TTL:g}) and `max_entries` (here {FRESH_ENTRIES}). "
        "The check serves the lab's own cached echo with your cache (in memory, through "
        "the server's dispatch) and asks again just before and at the end of the TTL, on "
        "the cache's own clock, which it moves itself: no waiting."
    )
    placeholder_code = (
        "from labkit.server import MemoryCache\n"
        "\n"
        "fresh_cache = ____  # a cache for the caching echo"
    )
    hint_text = (
        "`MemoryCache` (from `labkit.server`) takes the TTL in seconds and a `max_entries` bound."
    )
    solution_code = f"""\
from labkit.server import MemoryCache

fresh_cache = MemoryCache(ttl={FRESH_TTL}, max_entries={FRESH_ENTRIES})
"""

    async def verify(self, answer: object) -> str:
        if not isinstance(answer, Cache):
            raise NotYet(f"fresh_cache is {kind_of(answer)}; make it a `MemoryCache(...)`")
        clock = CheckClock()
        answer._clock, kept_clock = clock, answer._clock
        try:
            return await self._verify_with(answer, clock)
        finally:
            answer._clock = kept_clock

    async def _verify_with(self, answer: Cache, clock: CheckClock) -> str:
        echo = CachedEcho(caching.router, answer)
        user, text = "alice", f"fresh {secrets.token_hex(4)}"  # new to this cache
        stored_at = clock.now
        if await echo.hit(user, text):
            raise NotYet("a message never asked before came from the cache")
        if not await echo.hit(user, text):
            raise NotYet("asked twice in a row, the second reply was not cached")
        clock.now = stored_at + STILL_FRESH_AT
        if not await echo.hit(user, text):
            raise NotYet(
                f"{STILL_FRESH_AT:g} s after the reply was cached it was gone; keep replies "
                f"{FRESH_TTL:g} s (ttl={FRESH_TTL:g})"
            )
        clock.now = stored_at + EXPIRED_AT
        if await echo.hit(user, text):
            raise NotYet(
                f"{EXPIRED_AT:g} s after the reply was cached it still came from the cache; "
                f"replies must expire after {FRESH_TTL:g} s (ttl={FRESH_TTL:g})"
            )
        # The miss just now cached the reply again: it is the newest entry.
        for index in range(FRESH_ENTRIES - 1):
            await echo.hit(user, f"other {index}")
        if not await echo.hit(user, text):
            raise NotYet(
                f"after {FRESH_ENTRIES - 1} other replies the first was no longer cached; "
                f"keep {FRESH_ENTRIES}"
            )
        for index in range(FRESH_ENTRIES):
            await echo.hit(user, f"more {index}")
        if await echo.hit(user, text):
            raise NotYet(
                f"after {FRESH_ENTRIES} newer replies the first was still cached; keep at "
                f"most {FRESH_ENTRIES}"
            )
        return (
            f"the caching echo served from your cache {STILL_FRESH_AT:g} s after the reply "
            f"was made and made a new one at {EXPIRED_AT:g} s, and the cache held "
            f"{FRESH_ENTRIES} replies"
        )


def keyed_echo_router(key_of: Callable[[str, str], str]) -> Router:
    """The caching echo with the cache key made by `key_of(user, message)`."""
    router = Router("caching echo, your keys")

    @router.subscribe(any_user(ECHO_CACHED))
    async def keyed_echo(request: EchoRequest, user: CurrentUser, cache: Cache) -> EchoResponse:
        return await cached_echo_reply(cache, key_of(user, request.message), request.message)

    return router


# (user, message) pairs the second check asks for, in order, and whether each must be a
# hit, with why when the cache disagrees.
KEY_CASES: tuple[tuple[str, str, bool, str], ...] = (
    ("alice", "hi", False, "a message never asked before came from the cache"),
    (
        "alice",
        "hi",
        True,
        "alice asking 'hi' twice got two replies: the same user and message must give the same key",
    ),
    ("bob", "hi", False, "bob got the reply cached for alice: put the user in the key"),
    (
        "alice",
        "hello",
        False,
        "alice asking 'hello' got her reply to 'hi': put the message in the key",
    ),
    ("ab", "c", False, "a message never asked before came from the cache"),
    (
        "a",
        "bc",
        False,
        "user 'a' asking 'bc' got the reply cached for user 'ab' asking 'c': "
        "join the two so that no two pairs give one key (a user name never contains a dot)",
    ),
)


class CacheKey(AsyncExercise):
    sandbox_needs = ("server",)
    number = 2
    title = "Whose reply is it?"
    answer_name = "cache_key"
    prompt = (
        "The caching echo stores each reply under a key made from the user and the "
        "message. Write `cache_key(user, message)`, a string that is the same for the same "
        "user and message, and different for any other pair: bob must never get alice's "
        "reply. The check serves the caching echo with your keys and asks as several users."
    )
    placeholder_code = (
        "def cache_key(user: str, message: str) -> str:\n"
        "    return ____  # one key per (user, message) pair"
    )
    hint_text = (
        "Put both in the key, with a separator that cannot appear in a user name, so that "
        "('ab', 'c') and ('a', 'bc') stay apart. User names are single subject tokens."
    )
    solution_code = """\
def cache_key(user: str, message: str) -> str:
    return f"{user}.{message}"  # a user name is one subject token: it never contains a dot
"""

    async def verify(self, answer: object) -> str:
        def learner_key(user: str, message: str) -> str:
            key = call_learner(answer, user, message, what=f"cache_key({user!r}, {message!r})")
            if not isinstance(key, str):
                raise NotYet(
                    f"cache_key({user!r}, {message!r}) returned {kind_of(key)}; return a str"
                )
            return key

        for user, message, _hit, _why in KEY_CASES:  # before serving: blanks show at once
            learner_key(user, message)
        echo = CachedEcho(keyed_echo_router(learner_key), MemoryCache(ttl=60))
        for user, message, must_hit, why in KEY_CASES:
            if await echo.hit(user, message) != must_hit:
                raise NotYet(why)
        return "with your keys every user got their own replies, and only their own"


ex1 = FreshCache()
ex2 = CacheKey()
EXERCISES = (ex1, ex2)

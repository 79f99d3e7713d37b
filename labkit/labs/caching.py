"""Caching echo: `<user>.echo.cached` answers the same message identically for a while.

The reply says when it was made; asked again within the cache TTL (5 s by
default, LABKIT_SERVER_CACHE_TTL) the server returns the cached reply, after it a
fresh one. The cache is bounded in bytes, in total and per user
(LABKIT_SERVER_CACHE_MAX_BYTES, LABKIT_SERVER_CACHE_MAX_USER_BYTES): a learner who
floods it with large messages evicts their own entries, never another's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from nats.aio.client import Client

from labkit.client import request
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server.cache import Cache
from labkit.server.injection import CurrentUser
from labkit.server.router import Router
from labkit.subjects import ECHO_CACHED, any_user, user_subject

router = Router("caching")


def cache_key(user: str, message: str) -> str:
    """One cache entry per user and message (a user name never contains NUL)."""
    return f"{user}\x00{message}"


async def cached_echo_reply(cache: Cache, key: str, message: str, owner: str = "") -> EchoResponse:
    """The reply cached under `key`, else a new one, made now and cached as `owner`'s."""
    cached = await cache.get(key)
    if cached is not None:
        return EchoResponse.FromString(cached)
    made_at = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    response = EchoResponse(message=f"echo {message} (made at {made_at})")
    await cache.set(key, response.SerializeToString(), owner)
    return response


@router.subscribe(any_user(ECHO_CACHED))
async def cached_echo(request: EchoRequest, user: CurrentUser, cache: Cache) -> EchoResponse:
    return await cached_echo_reply(
        cache, cache_key(user, request.message), request.message, owner=user
    )


async def send_cached_echo(nc: Client, user: str, text: str, timeout: float = 2.0) -> str:
    answer = await request(
        nc, user_subject(user, ECHO_CACHED), EchoRequest(message=text), EchoResponse, timeout
    )
    return answer.message

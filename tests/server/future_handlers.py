"""Handlers written with `from __future__ import annotations` (every hint is a string).

The injection must resolve these hints with `typing.get_type_hints`, not read
`inspect.signature` annotations, or it would see `"EchoRequest"` instead of the class.
"""

from __future__ import annotations

from labkit.labs.directory import UserDirectory
from labkit.protocol import EchoRequest, EchoResponse, PingRequest
from labkit.server import Cache, CurrentUser, Publish, Reply, Router

router = Router("future")
published: list[str] = []


@router.subscribe("*.future.echo")
async def future_echo(request: EchoRequest, user: CurrentUser) -> EchoResponse:
    return EchoResponse(message=f"{request.message} from {user}")


@router.subscribe("*.future.reply")
async def future_reply(request: EchoRequest, reply: Reply | None) -> None:
    if reply is None:
        published.append(request.message)  # nobody is waiting: note it instead
        return
    await reply(EchoResponse(message=f"replied {request.message}"))


@router.subscribe("*.future.relay")
async def future_relay(
    request: PingRequest, user: CurrentUser, publish: Publish, users: UserDirectory
) -> PingRequest:
    relayed = PingRequest(origin=user, destination=request.destination, message=request.message)
    if users.knows(request.destination):
        await publish(f"{request.destination}.future.inbox", relayed)
    return relayed


@router.subscribe("*.future.count")
async def future_count(request: EchoRequest, cache: Cache) -> EchoResponse:
    seen = await cache.get(request.message)
    count = int(seen or b"0") + 1
    await cache.set(request.message, str(count).encode())
    return EchoResponse(message=str(count))

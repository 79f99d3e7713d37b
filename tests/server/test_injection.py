"""Dependency injection: each parameter kind, string annotations, and declarations that fail early.

This module deliberately does not use `from __future__ import annotations`, so its
handlers carry real classes; `tests.server.future_handlers` covers string hints.
"""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from labkit.labs.directory import StaticDirectory, UserDirectory
from labkit.protocol import EchoRequest, EchoResponse, PingRequest
from labkit.server import (
    Cache,
    CurrentUser,
    InvalidHandler,
    MemoryBus,
    MemoryCache,
    Publish,
    RemoteError,
    Reply,
    Router,
)
from tests.server import future_handlers


def run(scenario: Callable[[], Any]) -> Any:
    return asyncio.run(scenario())


def test_a_message_parameter_gets_the_parsed_payload() -> None:
    router = Router()
    seen: list[EchoRequest] = []

    @router.subscribe("*.echo")
    async def echo(request: EchoRequest) -> EchoResponse:
        seen.append(request)
        return EchoResponse(message=request.message.upper())

    async def scenario() -> EchoResponse:
        return await MemoryBus(router).request(
            "alice.echo", EchoRequest(message="hi"), EchoResponse
        )

    assert run(scenario).message == "HI"
    assert seen == [EchoRequest(message="hi")]


def test_a_handler_without_a_message_parameter_ignores_the_payload() -> None:
    router = Router()

    @router.subscribe("*.hello")
    async def hello(user: CurrentUser) -> EchoResponse:
        return EchoResponse(message=f"hello {user}")

    async def scenario() -> EchoResponse:
        return await MemoryBus(router).request("bob.hello", b"\xff not protobuf", EchoResponse)

    assert run(scenario).message == "hello bob"


def test_reply_answers_the_requester_from_inside_the_handler() -> None:
    router = Router()
    replies: list[Reply] = []

    @router.subscribe("*.echo")
    async def echo(request: EchoRequest, reply: Reply) -> None:
        replies.append(reply)
        await reply(EchoResponse(message=f"manual {request.message}"))

    async def scenario() -> EchoResponse:
        return await MemoryBus(router).request("alice.echo", EchoRequest(message="x"), EchoResponse)

    assert run(scenario).message == "manual x"
    assert replies[0].sent
    assert replies[0].subject.startswith("_INBOX.")


def test_optional_reply_is_none_when_nobody_waits() -> None:
    router = Router()
    got: list[Reply | None] = []

    @router.subscribe("*.note")
    async def note(request: EchoRequest, reply: Reply | None) -> None:
        got.append(reply)
        if reply is not None:
            await reply(EchoResponse(message="noted"))

    async def scenario() -> EchoResponse:
        bus = MemoryBus(router)
        await bus.publish("alice.note", EchoRequest(message="fire and forget").SerializeToString())
        return await bus.request("alice.note", EchoRequest(message="ask"), EchoResponse)

    assert run(scenario).message == "noted"
    assert got[0] is None
    assert isinstance(got[1], Reply)


def test_publish_sends_other_messages() -> None:
    router = Router()

    @router.subscribe("*.shout")
    async def shout(request: EchoRequest, publish: Publish) -> None:
        await publish("everyone.news", EchoResponse(message=request.message))
        await publish("everyone.raw", b"raw bytes", {"Kind": "raw"})

    async def scenario() -> tuple[Any, Any]:
        bus = MemoryBus(router)
        news, raw = bus.subscribe("everyone.news"), bus.subscribe("everyone.raw")
        await bus.publish("alice.shout", EchoRequest(message="hey").SerializeToString())
        return news.get_nowait(), raw.get_nowait()

    news, raw = run(scenario)
    assert EchoResponse.FromString(news.data).message == "hey"
    assert (raw.data, raw.headers) == (b"raw bytes", {"Kind": "raw"})


def test_current_user_is_the_first_subject_token() -> None:
    router = Router()

    @router.subscribe("*.whoami.>")
    async def whoami(user: CurrentUser) -> EchoResponse:
        assert isinstance(user, CurrentUser)
        return EchoResponse(message=user)

    async def scenario() -> EchoResponse:
        return await MemoryBus(router).request("carol.whoami.deep.down", b"", EchoResponse)

    assert run(scenario).message == "carol"


def test_cache_comes_from_the_resources() -> None:
    router = Router()

    @router.subscribe("*.count")
    async def count(request: EchoRequest, cache: Cache) -> EchoResponse:
        value = int(await cache.get(request.message) or b"0") + 1
        await cache.set(request.message, str(value).encode())
        return EchoResponse(message=str(value))

    async def scenario() -> list[str]:
        bus = MemoryBus(router, resources={Cache: MemoryCache(60)})
        ask = EchoRequest(message="k")
        return [(await bus.request("a.count", ask, EchoResponse)).message for _ in range(3)]

    assert run(scenario) == ["1", "2", "3"]


def test_user_directory_comes_from_the_resources() -> None:
    router = Router()

    @router.subscribe("*.exists")
    async def exists(request: EchoRequest, users: UserDirectory) -> EchoResponse:
        return EchoResponse(message=str(users.knows(request.message)))

    async def scenario() -> list[str]:
        bus = MemoryBus(router, resources={UserDirectory: StaticDirectory("alice")})
        return [
            (await bus.request("x.exists", EchoRequest(message=name), EchoResponse)).message
            for name in ("alice", "mallory")
        ]

    assert run(scenario) == ["True", "False"]


def test_handlers_written_with_future_annotations_are_served() -> None:
    future_handlers.published.clear()
    resources = {Cache: MemoryCache(60), UserDirectory: StaticDirectory("bob")}

    async def scenario() -> dict[str, Any]:
        bus = MemoryBus(future_handlers.router, resources=resources)
        inbox = bus.subscribe("bob.future.inbox")
        ask = EchoRequest(message="hi")
        results: dict[str, Any] = {
            "echo": await bus.request("alice.future.echo", ask, EchoResponse),
            "reply": await bus.request("alice.future.reply", ask, EchoResponse),
            "relay": await bus.request(
                "alice.future.relay", PingRequest(destination="bob", message="yo"), PingRequest
            ),
            "counts": [
                (await bus.request("alice.future.count", ask, EchoResponse)).message
                for _ in range(2)
            ],
        }
        await bus.publish(
            "alice.future.reply", EchoRequest(message="unanswered").SerializeToString()
        )
        results["inbox"] = PingRequest.FromString(inbox.get_nowait().data)
        results["outcomes"] = bus.outcomes
        return results

    results = run(scenario)
    assert results["echo"].message == "hi from alice"
    assert results["reply"].message == "replied hi"
    assert results["relay"] == PingRequest(origin="alice", destination="bob", message="yo")
    assert results["inbox"] == PingRequest(origin="alice", destination="bob", message="yo")
    assert results["counts"] == ["1", "2"]
    assert future_handlers.published == ["unanswered"]
    assert all(outcome.ok for outcome in results["outcomes"])


# Declarations labkit cannot serve; each must fail when decorated, naming what is wrong.


async def unknown_type(request: EchoRequest, count: int) -> None: ...


async def unannotated(request: EchoRequest, thing) -> None:  # type: ignore[no-untyped-def]
    ...


async def two_messages(first: EchoRequest, second: PingRequest) -> None: ...


def sync_handler(request: EchoRequest) -> None: ...


async def star_args(request: EchoRequest, *extras: Publish) -> None: ...


async def star_kwargs(request: EchoRequest, **options: Publish) -> None: ...


@pytest.mark.parametrize(
    ("handler", "fragments"),
    [
        (unknown_type, ["unknown_type", "'count'", "cannot inject", "CurrentUser"]),
        (unannotated, ["unannotated", "'thing'", "no type hint"]),
        (two_messages, ["two_messages", "'first'", "'second'"]),
        (sync_handler, ["sync_handler", "async def"]),
        (star_args, ["star_args", "*extras"]),
        (star_kwargs, ["star_kwargs", "**options"]),
    ],
    ids=["unknown_type", "unannotated", "two_messages", "sync_def", "star_args", "star_kwargs"],
)
def test_bad_declarations_fail_at_decoration(
    handler: Callable[..., Any], fragments: list[str]
) -> None:
    router = Router()
    with pytest.raises(InvalidHandler) as raised:
        router.subscribe("*.bad")(handler)
    for fragment in fragments:
        assert fragment in str(raised.value)
    assert router.routes == []


def test_a_missing_resource_becomes_an_error_reply() -> None:
    router = Router()

    @router.subscribe("*.cached")
    async def needs_cache(request: EchoRequest, cache: Cache) -> EchoResponse:
        return EchoResponse(message="unreachable")

    @router.subscribe("*.echo")
    async def echo(request: EchoRequest) -> EchoResponse:
        return EchoResponse(message=request.message)

    async def scenario() -> tuple[RemoteError, EchoResponse]:
        bus = MemoryBus(router)  # no resources at all
        with pytest.raises(RemoteError) as raised:
            await bus.request("alice.cached", EchoRequest(message="x"), EchoResponse)
        still = await bus.request("alice.echo", EchoRequest(message="alive"), EchoResponse)
        return raised.value, still

    error, still = run(scenario)
    assert error.code == "internal_error"
    assert "no Cache" in error.message
    assert error.subject == "alice.cached"
    assert still.message == "alive"

"""Routers: composing with include_router, unique route names, patterns checked early."""

from __future__ import annotations

import asyncio

import pytest

from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import MemoryBus, RemoteError, Router
from labkit.subjects import InvalidSubject


def echo_router(name: str = "echo") -> Router:
    router = Router(name)

    @router.subscribe("*.echo")
    async def echo(request: EchoRequest) -> EchoResponse:
        return EchoResponse(message=f"echo {request.message}")

    return router


def shout_router() -> Router:
    router = Router("shout")

    @router.subscribe("*.shout")
    async def shout(request: EchoRequest) -> EchoResponse:
        return EchoResponse(message=request.message.upper())

    return router


def test_include_router_without_prefix_keeps_patterns() -> None:
    app = Router("app")
    app.include_router(echo_router())
    app.include_router(shout_router())
    assert [(r.name, r.pattern) for r in app.routes] == [("echo", "*.echo"), ("shout", "*.shout")]

    async def scenario() -> list[str]:
        bus = MemoryBus(app)
        ask = EchoRequest(message="hi")
        return [
            (await bus.request("alice.echo", ask, EchoResponse)).message,
            (await bus.request("alice.shout", ask, EchoResponse)).message,
        ]

    assert asyncio.run(scenario()) == ["echo hi", "HI"]


def test_include_router_with_prefix_moves_patterns() -> None:
    app = Router("app")
    app.include_router(echo_router(), prefix="v2")
    assert [r.pattern for r in app.routes] == ["v2.*.echo"]

    async def scenario() -> str:
        bus = MemoryBus(app)
        with pytest.raises(TimeoutError):  # nothing serves the old subject any more
            await bus.request("alice.echo", EchoRequest(message="hi"), EchoResponse, timeout=0.05)
        return (await bus.request("v2.alice.echo", EchoRequest(message="hi"), EchoResponse)).message

    assert asyncio.run(scenario()) == "echo hi"


def test_routers_nest() -> None:
    inner = Router("inner")
    inner.include_router(echo_router(), prefix="b")
    outer = Router("outer")
    outer.include_router(inner, prefix="a")
    assert [r.pattern for r in outer.routes] == ["a.b.*.echo"]


def test_include_router_copies_routes() -> None:
    lab = echo_router()
    app = Router("app")
    app.include_router(lab, prefix="v1")
    assert [r.pattern for r in lab.routes] == ["*.echo"]  # the included router is unchanged


def test_duplicate_route_names_are_rejected_in_one_router() -> None:
    router = echo_router()

    async def echo(request: EchoRequest) -> EchoResponse:
        return EchoResponse()

    with pytest.raises(ValueError, match="'echo' already exists"):
        router.subscribe("*.echo.again")(echo)
    router.subscribe("*.echo.again", name="echo_again")(echo)  # an explicit name is fine
    assert [r.name for r in router.routes] == ["echo", "echo_again"]


def test_duplicate_route_names_are_rejected_when_including() -> None:
    app = Router("app")
    app.include_router(echo_router())
    app_routes = app.routes
    combined = echo_router("other")
    combined.include_router(shout_router())
    with pytest.raises(ValueError, match="'echo' already exists in router 'app'"):
        app.include_router(combined, prefix="v2")
    assert app.routes == app_routes  # nothing of `combined` was added


@pytest.mark.parametrize("pattern", ["", "a..b", "a.>.b", "a*", "*.echo x"])
def test_invalid_patterns_are_rejected_at_decoration(pattern: str) -> None:
    router = Router()
    with pytest.raises(InvalidSubject):
        router.subscribe(pattern)
    assert router.routes == []


@pytest.mark.parametrize("prefix", ["a..b", "a b", "v*"])
def test_invalid_prefixes_are_rejected(prefix: str) -> None:
    app = Router("app")
    with pytest.raises(InvalidSubject):
        app.include_router(echo_router(), prefix=prefix)
    assert app.routes == []


def test_a_subject_no_route_matches_gets_no_answer() -> None:
    async def scenario() -> None:
        bus = MemoryBus(echo_router())
        with pytest.raises(TimeoutError):
            await bus.request("alice.unknown", EchoRequest(), EchoResponse, timeout=0.05)
        with pytest.raises(RemoteError):  # while a bad payload on a served subject does
            await bus.request("alice.echo", b"\xff", EchoResponse)

    asyncio.run(scenario())
